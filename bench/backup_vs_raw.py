"""Backup create and drill against the raw tools doing the same job, side by side in one run.

    .venv/bin/python bench/backup_vs_raw.py --scale 2000000 [--postgres-url postgresql://postgres@127.0.0.1/postgres]
    .venv/bin/python bench/backup_vs_raw.py --engine sqlite --scale 2000000 --rounds 3 --sqlite-dir /tmp/bench2m

For each engine, on a database seeded at --scale:

* create:  aris3nb ``create_backup``  vs  SQLite: ``sqlite3 .backup`` + ``sqlite3 .sha3sum`` of the copy;
                                          PostgreSQL: a bare ``pg_dump -Fc``.
* drill:   aris3nb ``restore_verify`` vs  SQLite: a file copy + ``.sha3sum`` of the copy;
                                          PostgreSQL: ``pg_restore`` of the -Fc dump into a new
                                          database + a streamed COPY of every table hashed.

aris3nb runs in a child process each time, which reports its own peak RSS (``VmHWM``). The
PostgreSQL source and scratch databases are created and dropped by the script.

SQLite, ``--rounds N``: the drill pair (raw, then aris3nb; the order alternates each round) runs
N times on the same backup; each round's figures are listed and the medians reported, with the
load average before each round. Every step starts from the same state: no dirty pages (``sync``,
untimed) and no copy left by the step before (the raw drill removes its copy after it is timed,
as the drill removes its scratch copy). With the raw copy left in place, the next drill's copy
of the backup cost 1.6–4.3 s of kernel CPU instead of 0.4 s on this machine (measured alone:
a 1.3 GB ``shutil.copyfile`` after the raw step, against after another drill's copy), which
charged the drill for the raw step's leftovers whenever it ran second. ``--compare-with DIR``
runs a third drill in each round with the ``aris3nb`` package found in DIR (say, the previous
commit's, built), for a before/after side by side. ``--sqlite-dir DIR`` keeps the seeded database (``source.db``) and
its backup in DIR and reuses them when there (seeding 2,000,000 rows takes about 45 s); the
create figures are then those of the run that made the backup, or of this run if it made it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

CHILD = r"""
import json, sys, time
from pathlib import Path
from aris3nb.core.settings import load_settings
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
action, url, artifacts = sys.argv[1], sys.argv[2], Path(sys.argv[3])
settings = load_settings(artifacts={"dir": artifacts}, backup={"drill_enabled": True, "drill_timeout_sec": 3600})
# Anonymous memory, sampled: VmHWM also counts the pages of files mapped for reading (the
# drill's checks read the scratch copy through mmap), which are page cache, not allocations.
import threading
anon_peak = [0]
def sample():
    while True:
        kib = int(next(l for l in open("/proc/self/status") if l.startswith("RssAnon:")).split()[1])
        anon_peak[0] = max(anon_peak[0], kib)
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
if action == "create":
    create_backup(url, "bench", settings=settings, exports_dir=artifacts / "no-exports")
else:
    restore_verify(artifacts / "backups" / "bench" / "manifest.json", settings=settings, server_url=url)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (the seeding).
peak_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
import resource
cpu = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for field in ("ru_utime", "ru_stime"))
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mib": peak_kib / 1024,
                  "peak_anon_mib": anon_peak[0] / 1024, "cpu_sec": cpu}))
"""


def timed(args: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def ours(action: str, url: str, artifacts: Path, tree: Path | None = None) -> dict[str, float]:
    """aris3nb's ``action`` in a child process; ``tree``: a folder holding another copy of the
    ``aris3nb`` package (built), imported instead of this one (a before/after comparison)."""
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else None
    # In the tree's own folder: ``python -c`` puts its working folder first on the path, so run
    # from this checkout it would import this checkout's package whatever PYTHONPATH says.
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, url, str(artifacts)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"aris3nb {action} failed: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def seed(url: str, scale: int, folder: Path) -> None:
    from aris3nb import migrate
    from aris3nb.reference.seed import seed_database

    migrate.upgrade(url)
    seed_database(url, scale=scale, exports_dir=folder / "seed-exports")


def bench_sqlite(scale: int, folder: Path, rounds: int = 1, other: Path | None = None) -> dict[str, object]:
    source = folder / "source.db"
    url = f"sqlite:///{source}"
    ref_copy = folder / "ref.db"
    created = folder / "create.json"
    if not (source.is_file() and ref_copy.is_file() and created.is_file()):
        if not source.is_file():
            seed(url, scale, folder)
        raw_create = timed(["sqlite3", str(source), f".backup '{ref_copy}'"]) + timed(
            ["sqlite3", str(ref_copy), ".sha3sum"]
        )
        shutil.rmtree(folder / "artifacts", ignore_errors=True)
        mine_create = ours("create", url, folder / "artifacts")
        created.write_text(json.dumps({"raw": raw_create, "mine": mine_create}))
    made = json.loads(created.read_text())
    restored = folder / "restored.db"

    def raw_drill() -> float:
        started = time.perf_counter()
        shutil.copyfile(ref_copy, restored)
        seconds = time.perf_counter() - started + timed(["sqlite3", str(restored), ".sha3sum"])
        # Removed afterwards (untimed), as the drill removes its scratch copy: each step starts
        # from the same page cache, not with the step before's 1.3 GB copy still held.
        restored.unlink()
        return seconds

    runs: list[tuple[float, dict[str, float], float]] = []
    others: list[dict[str, float]] = []
    for number in range(rounds):
        load = os.getloadavg()[0]
        steps = ["raw", "mine", "other"] if other is not None else ["raw", "mine"]
        shift = number % len(steps)  # each round starts with the next one
        timings: dict[str, Any] = {}
        for step in steps[shift:] + steps[:shift]:
            # Each step starts with no dirty pages left by the step before it (the raw copy's
            # 1.3 GB, written back while the next step runs, would be charged to that step).
            os.sync()
            if step == "raw":
                timings[step] = raw_drill()
            else:
                timings[step] = ours("drill", url, folder / "artifacts", other if step == "other" else None)
        raw, mine = timings["raw"], timings["mine"]
        runs.append((raw, mine, load))
        line = (
            f"round {number + 1}: raw {raw:.2f} s, aris3nb {mine['seconds']:.2f} s, ratio {mine['seconds'] / raw:.2f}"
        )
        if other is not None:
            others.append(timings["other"])
            line += f"; {other}: {timings['other']['seconds']:.2f} s, ratio {timings['other']['seconds'] / raw:.2f}"
        print(f"{line} (load {load:.2f})", file=sys.stderr)
    restored.unlink(missing_ok=True)
    middle = {
        key: statistics.median(run[1].get(key, 0.0) for run in runs)
        for key in ("seconds", "cpu_sec", "peak_rss_mib", "peak_anon_mib")
    }
    result = _result(made["raw"], made["mine"], statistics.median(r[0] for r in runs), middle, os.path.getsize(source))
    if rounds > 1:
        result["drill_rounds"] = [
            {
                "raw_sec": round(raw, 2),
                "aris3nb_sec": round(mine["seconds"], 2),
                "aris3nb_cpu_sec": round(mine.get("cpu_sec", 0.0), 2),
                "ratio": round(mine["seconds"] / raw, 2),
                "load_1min": round(load, 2),
            }
            for raw, mine, load in runs
        ]
        for row, found in zip(result["drill_rounds"], others, strict=False):  # type: ignore[call-overload]
            row["other_sec"] = round(found["seconds"], 2)
            row["other_cpu_sec"] = round(found.get("cpu_sec", 0.0), 2)
            row["other_ratio"] = round(found["seconds"] / row["raw_sec"], 2)
        result["drill"]["median_ratio"] = round(  # type: ignore[index]
            statistics.median(mine["seconds"] / raw for raw, mine, _ in runs), 2
        )
        if others:
            result["drill"]["other_median_sec"] = round(statistics.median(o["seconds"] for o in others), 2)  # type: ignore[index]
            result["drill"]["other_median_ratio"] = round(  # type: ignore[index]
                statistics.median(o["seconds"] / r[0] for o, r in zip(others, runs, strict=True)), 2
            )
    return result


def bench_postgres(scale: int, folder: Path, server: str) -> dict[str, object]:
    admin = sa.create_engine(
        make_url(server).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    names = ("aris3nb_bench_source", "aris3nb_bench_rawrestore")
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = make_url(server).set(drivername="postgresql")
    url = base.set(database=names[0]).render_as_string(hide_password=False)
    raw_url = base.set(database=names[1]).render_as_string(hide_password=False)
    try:
        seed(url, scale, folder)
        dump = folder / "ref.dump"
        raw_create = timed(["pg_dump", "-Fc", "-f", str(dump), f"--dbname={url}"])
        mine_create = ours("create", url, folder / "artifacts")
        raw_drill = timed(["pg_restore", "--no-owner", f"--dbname={raw_url}", str(dump)])
        started = time.perf_counter()
        _hash_all_tables(raw_url)
        raw_drill += time.perf_counter() - started
        mine_drill = ours("drill", url, folder / "artifacts")
        with admin.connect() as conn:
            size = conn.exec_driver_sql(f"SELECT pg_database_size('{names[0]}')").scalar_one()
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return _result(raw_create, mine_create, raw_drill, mine_drill, size)


def _hash_all_tables(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        tables = [r[0] for r in cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            digest = hashlib.sha256()
            with cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                for block in copy:
                    digest.update(block)


def _result(
    raw_create: float, mine_create: dict[str, float], raw_drill: float, mine_drill: dict[str, float], size: int
) -> dict[str, object]:
    return {
        "database_bytes": size,
        "create": {
            "raw_sec": round(raw_create, 2),
            "aris3nb_sec": round(mine_create["seconds"], 2),
            "ratio": round(mine_create["seconds"] / raw_create, 2),
            "peak_rss_mib": round(mine_create["peak_rss_mib"], 1),
            "peak_anon_mib": round(mine_create["peak_anon_mib"], 1),
        },
        "drill": {
            "raw_sec": round(raw_drill, 2),
            "aris3nb_sec": round(mine_drill["seconds"], 2),
            "ratio": round(mine_drill["seconds"] / raw_drill, 2),
            "cpu_sec": round(mine_drill.get("cpu_sec", 0.0), 2),
            "peak_rss_mib": round(mine_drill["peak_rss_mib"], 1),
            "peak_anon_mib": round(mine_drill["peak_anon_mib"], 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2_000_000)
    parser.add_argument("--postgres-url", help="a PostgreSQL server to measure on too")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=1, help="SQLite: drill pairs, alternating order (medians)")
    parser.add_argument("--sqlite-dir", type=Path, help="SQLite: keep (and reuse) the seeded database and backup here")
    parser.add_argument(
        "--compare-with",
        type=Path,
        help="SQLite: a folder holding another built copy of the aris3nb package; its drill runs in each round too",
    )
    args = parser.parse_args()
    results: dict[str, object] = {"scale": args.scale}
    if args.engine in ("sqlite", "both"):
        if args.sqlite_dir is not None:
            args.sqlite_dir.mkdir(parents=True, exist_ok=True)
            results["sqlite"] = bench_sqlite(args.scale, args.sqlite_dir, args.rounds, args.compare_with)
        else:
            with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
                results["sqlite"] = bench_sqlite(args.scale, Path(tmp), args.rounds, args.compare_with)
    if args.engine in ("postgresql", "both") and args.postgres_url:
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
            results["postgresql"] = bench_postgres(args.scale, Path(tmp), args.postgres_url)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
