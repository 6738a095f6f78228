"""Backup create and drill against the raw tools doing the same job, side by side in one run.

    .venv/bin/python bench/backup_vs_raw.py --scale 2000000 [--postgres-url postgresql://postgres@127.0.0.1/postgres]

For each engine, on a database seeded at --scale:

* create:  aris3nb ``create_backup``  vs  SQLite: ``sqlite3 .backup`` + ``sqlite3 .sha3sum`` of the copy;
                                          PostgreSQL: a bare ``pg_dump -Fc``.
* drill:   aris3nb ``restore_verify`` vs  SQLite: a file copy + ``.sha3sum`` of the copy;
                                          PostgreSQL: ``pg_restore`` of the -Fc dump into a new
                                          database + a streamed COPY of every table hashed.

aris3nb runs in a child process each time, which reports its own peak RSS (``VmHWM``). The
PostgreSQL source and scratch databases are created and dropped by the script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

CHILD = r"""
import json, sys, time
from pathlib import Path
from aris3nb.core.settings import load_settings
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
action, url, artifacts = sys.argv[1], sys.argv[2], Path(sys.argv[3])
settings = load_settings(ops_artifacts_dir=artifacts, ops_enable_backup_drill=True, ops_drill_timeout_sec=3600)
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
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mib": peak_kib / 1024,
                  "peak_anon_mib": anon_peak[0] / 1024}))
"""


def timed(args: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def ours(action: str, url: str, artifacts: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, action, url, str(artifacts)], capture_output=True, text=True)
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


def bench_sqlite(scale: int, folder: Path) -> dict[str, object]:
    source = folder / "source.db"
    url = f"sqlite:///{source}"
    seed(url, scale, folder)
    ref_copy = folder / "ref.db"
    raw_create = timed(["sqlite3", str(source), f".backup '{ref_copy}'"]) + timed(
        ["sqlite3", str(ref_copy), ".sha3sum"]
    )
    mine_create = ours("create", url, folder / "artifacts")
    restored = folder / "restored.db"
    started = time.perf_counter()
    shutil.copyfile(ref_copy, restored)
    raw_drill = time.perf_counter() - started + timed(["sqlite3", str(restored), ".sha3sum"])
    mine_drill = ours("drill", url, folder / "artifacts")
    return _result(raw_create, mine_create, raw_drill, mine_drill, os.path.getsize(source))


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
            "peak_rss_mib": round(mine_drill["peak_rss_mib"], 1),
            "peak_anon_mib": round(mine_drill["peak_anon_mib"], 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2_000_000)
    parser.add_argument("--postgres-url", help="a PostgreSQL server to measure on too")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, object] = {"scale": args.scale}
    if args.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
            results["sqlite"] = bench_sqlite(args.scale, Path(tmp))
    if args.engine in ("postgresql", "both") and args.postgres_url:
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
            results["postgresql"] = bench_postgres(args.scale, Path(tmp), args.postgres_url)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
