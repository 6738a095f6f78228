"""Run ``aris3nb`` and SIGKILL it (its whole process group) at a chosen point.

Used by the fault tests as ``python kill_at.py POINT MARKER -- <aris3nb arguments>``. It
changes nothing in aris3nb: it installs a CPython audit hook (PEP 578), which sees the
process's own ``open``, ``os.rename``, ``sqlite3.connect`` and ``subprocess.Popen`` calls,
and kills the process group when the run reaches POINT. Before dying it writes MARKER (a
JSON line saying where it stopped and what it saw), so a test can tell a kill at the
intended point from one that came too early or too late.

Points:
  copy     the SQLite online-backup copy is being written (killed once it holds data, before it is complete)
  dump     pg_dump is writing the dump (killed once a table's data file exists, pg_dump still running)
  digest   the sqlite3 shells are digesting the copy's tables (killed once one is running)
  seal     the first file of the backup is being hashed (SHA-256) for the manifest
  rename   the manifest is complete; the temporary folder is about to be renamed
  restore  the rollback restore is writing into the target (SQLite: after the first step of the
           backup API's copy, pages written and more to come, in 4-page steps here;
           PostgreSQL: killed once pg_restore runs statements on the target)
  pause-rename  not a kill: wait at the rename until the file MARKER + ".go" exists (two
           runs racing for one name meet there)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

POINT, MARKER = sys.argv[1], Path(sys.argv[2])
ARGS = sys.argv[sys.argv.index("--") + 1 :]
_busy = threading.local()
_fired = threading.Event()


def _die(**seen: object) -> None:
    _fired.set()
    MARKER.write_text(json.dumps({"point": POINT, "pid": os.getpid(), **seen}) + "\n")
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _children(name: str) -> list[int]:
    """This process's live children whose command is ``name``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if (
            fields.get("PPid", "").strip() == str(os.getpid())
            and fields.get("Name", "").strip() == name
            and fields.get("State", "").strip()[:1] != "Z"
        ):
            found.append(int(entry))
    return found


def _watch(condition, **seen: object) -> None:  # type: ignore[no-untyped-def]
    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = condition()
            if result:
                _die(**seen, **result)
            time.sleep(0.0005)

    threading.Thread(target=run, daemon=True).start()


def _in_temporary(path: object) -> bool:
    return "/backups/.tmp-" in str(path)


def _hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if _fired.is_set() or getattr(_busy, "on", False):
        return
    _busy.on = True
    try:
        _dispatch(event, args)
    finally:
        _busy.on = False


def _dispatch(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if POINT == "copy" and event == "sqlite3.connect" and _in_temporary(args[0]):
        copy = Path(str(args[0]))
        source_size = int(os.environ["FAULT_SOURCE_SIZE"])

        def partly_written() -> dict[str, object] | None:
            size = copy.stat().st_size if copy.exists() else 0
            return {"copy_bytes": size, "source_bytes": source_size} if 0 < size < source_size else None

        _watch(partly_written)
    elif (
        POINT == "dump" and event == "subprocess.Popen" and "pg_dump" in str(args[1][0]) and "--version" not in args[1]
    ):
        target = Path(next(a for a in args[1] if a.startswith("--file=")).removeprefix("--file="))

        def writing() -> dict[str, object] | None:
            data = [p.name for p in target.glob("*.dat.gz")] if target.is_dir() else []
            return {"data_files": len(data), "pg_dump_running": True} if data and _children("pg_dump") else None

        _watch(writing)
    elif POINT == "digest" and event == "subprocess.Popen" and "-readonly" in args[1] and _in_temporary(args[1][-1]):
        _watch(lambda: {"sqlite3_shells": len(shells)} if (shells := _children("sqlite3")) else None)
    elif POINT == "seal" and event == "open" and _in_temporary(args[0]) and args[1] == "r":
        _die(hashing=str(args[0]))
    elif POINT in ("rename", "pause-rename") and event == "os.rename" and _in_temporary(args[0]):
        manifest = Path(str(args[0])) / "manifest.json"
        if POINT == "rename":
            _die(folder=str(args[0]), manifest_written=manifest.is_file())
        MARKER.write_text(json.dumps({"point": POINT, "pid": os.getpid(), "folder": str(args[0])}) + "\n")
        go = Path(f"{MARKER}.go")
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    elif POINT == "restore" and event == "aris3nb.sqlite.restore_step" and 0 < args[1] < args[2]:
        _die(target=str(args[0]), pages_left=args[1], pages=args[2])
    elif (
        POINT == "restore"
        and event == "subprocess.Popen"
        and "pg_restore" in str(args[1][0])
        and "--version" not in args[1]
    ):
        target = next(a for a in args[1] if a.startswith("--dbname=")).removeprefix("--dbname=")
        _watch(lambda: {"pg_restore": len(r)} if (r := _children("pg_restore")) and _restoring(target) else None)


def _restoring(target: str) -> bool:
    """Whether pg_restore has begun writing to ``target`` (asked of the server with psql)."""
    import subprocess

    done = subprocess.run(
        [
            "psql",
            "-d",
            target,
            "-Atc",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'aris3nb-pg\\_restore-%' AND query NOT LIKE 'SET %'",
        ],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() not in ("", "0")


sys.addaudithook(_hook)

from aris3nb.cli import main  # noqa: E402 - aris3nb is loaded only once the audit hook is installed

if POINT == "restore":  # small steps, so that a small database is copied in several
    from aris3nb.backup import sqlite as _sqlite  # noqa: E402

    _sqlite.RESTORE_STEP_PAGES = 4

main(ARGS)
