"""What the row index costs ``backup create``: time and size, with and without it, side by side.

    .venv/bin/python bench/row_index_cost.py --scale 2000000 --rounds 3
    .venv/bin/python bench/row_index_cost.py --engine postgresql --scale 200000 \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

For each engine, on one database seeded at --scale, every round runs ``create_backup`` twice,
in alternating order: with the row index (what ``backup create`` does) and without it
(``digest.WRITE_ROW_INDEX = False``: the chunk digests alone, as backups were made before
the index). Each create runs in a child process and reports its wall time, the manifest's
``durations_sec``, its CPU time (its own and its children's: the sqlite3 shells, pg_dump; not
the PostgreSQL server's) and the backup's bytes; the backup is then removed (a 2,000,000-row SQLite
backup is 1.3 GB). The budget (issue 11): the index adds at most 10 % to the create time and
at most 5 % to the backup's size. The medians of the rounds are compared; every round is
printed too, because the machine is shared and a single pair can mislead.

``--drill`` also drills each backup before removing it (``restore_verify``), and reports the
drill's time: a drill of a backup with an index verifies it by its row digests.

``--sqlite-db`` reuses an already seeded SQLite file (seeding 2,000,000 rows takes a minute
or more); the PostgreSQL source database is created and dropped by the script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

CHILD = r"""
import json, sys, time
from pathlib import Path
from aris3nb.backup import digest
from aris3nb.backup.create import create_backup
from aris3nb.core.settings import load_settings
url, artifacts, name, with_index = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
digest.WRITE_ROW_INDEX = with_index
settings = load_settings(artifacts={"dir": artifacts}, backup={"timeout_sec": 3600})
import os, resource
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
load = os.getloadavg()[0]
started, cpu_started = time.perf_counter(), cpu()
result = create_backup(url, name, settings=settings, exports_dir=artifacts / "no-exports")
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
files = result.manifest["files"]
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "load": load,
                  "durations": result.manifest["durations_sec"],
                  "bytes": sum(f["size"] for f in files),
                  "index_bytes": sum(f["size"] for f in files if f.get("role") == "index"),
                  "rows": sum(t["rows"] for t in result.manifest["tables"])}))
"""


DRILL = r"""
import json, sys, time
from pathlib import Path
from aris3nb.backup.drill import restore_verify
from aris3nb.core.settings import load_settings
url, artifacts, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
settings = load_settings(artifacts={"dir": artifacts}, backup={"drill_enabled": True, "drill_timeout_sec": 3600})
started = time.perf_counter()
report, _ = restore_verify(artifacts / "backups" / name / "manifest.json", settings=settings, server_url=url)
print(json.dumps({"seconds": time.perf_counter() - started, "status": report.status, "rto_sec": report.rto_sec}))
"""


def create_once(url: str, folder: Path, name: str, with_index: bool, drill: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(folder), name, "1" if with_index else "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"create failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if drill:  # the drill of that backup: a backup with an index is verified by its row digests
        drilled = subprocess.run(
            [sys.executable, "-c", DRILL, url, str(folder), name], capture_output=True, text=True, check=False
        )
        if drilled.returncode != 0:
            raise SystemExit(
                f"drill failed: {drilled.stderr.strip().splitlines()[-1] if drilled.stderr.strip() else ''}"
            )
        result["drill"] = json.loads(drilled.stdout.strip().splitlines()[-1])
    shutil.rmtree(folder / "backups" / name, ignore_errors=True)
    return result


def seed(url: str, scale: int, folder: Path) -> None:
    from aris3nb import migrate
    from aris3nb.reference.seed import seed_database

    migrate.upgrade(url)
    seed_database(url, scale=scale, exports_dir=folder / "seed-exports")


def compare(url: str, folder: Path, rounds: int, drill: bool = False) -> dict[str, object]:
    runs: dict[str, list[dict[str, object]]] = {"with": [], "without": []}
    for number in range(rounds):
        order = ("with", "without") if number % 2 == 0 else ("without", "with")
        for kind in order:
            result = create_once(url, folder, f"bench_{kind}_{number}", kind == "with", drill)
            runs[kind].append(result)
            drilled = f"; drill {result['drill']['seconds']:.2f} s {result['drill']['rto_sec']}" if drill else ""
            print(
                f"round {number + 1} {kind:>7} index: {result['seconds']:.2f} s, CPU {result['cpu_seconds']:.2f} s "
                f"(load {result['load']:.1f}) {result['durations']}, {result['bytes']:,} bytes{drilled}",
                file=sys.stderr,
            )
    time_with = statistics.median(float(r["seconds"]) for r in runs["with"])
    time_without = statistics.median(float(r["seconds"]) for r in runs["without"])
    cpu_with = statistics.median(float(r["cpu_seconds"]) for r in runs["with"])
    cpu_without = statistics.median(float(r["cpu_seconds"]) for r in runs["without"])
    size_without = int(runs["without"][0]["bytes"])
    index_bytes = int(runs["with"][0]["index_bytes"])
    rows = int(runs["with"][0]["rows"])
    drills = {kind: [round(float(r["drill"]["seconds"]), 2) for r in runs[kind]] for kind in runs} if drill else {}
    return {
        **({"drill_sec_without_index": drills["without"], "drill_sec_with_index": drills["with"]} if drill else {}),
        "rows_in_all_tables": rows,
        "create_sec_without_index": [round(float(r["seconds"]), 2) for r in runs["without"]],
        "create_sec_with_index": [round(float(r["seconds"]), 2) for r in runs["with"]],
        "median_without": round(time_without, 2),
        "median_with": round(time_with, 2),
        "time_added": f"{(time_with / time_without - 1) * 100:+.1f} %",
        "cpu_sec_without_index": [round(float(r["cpu_seconds"]), 2) for r in runs["without"]],
        "cpu_sec_with_index": [round(float(r["cpu_seconds"]), 2) for r in runs["with"]],
        "cpu_added": f"{(cpu_with / cpu_without - 1) * 100:+.1f} %",
        "load_average": [round(float(r["load"]), 1) for kind in runs for r in runs[kind]],
        "backup_bytes_without_index": size_without,
        "index_bytes": index_bytes,
        "index_bytes_per_row": round(index_bytes / max(rows, 1), 2),
        "size_added": f"{(int(runs['with'][0]['bytes']) / size_without - 1) * 100:+.1f} %",
    }


def bench_sqlite(scale: int, folder: Path, rounds: int, database: Path | None, drill: bool) -> dict[str, object]:
    if database is None:
        database = folder / "source.db"
        seed(f"sqlite:///{database}", scale, folder)
    return compare(f"sqlite:///{database}", folder / "artifacts", rounds, drill)


def bench_postgres(scale: int, folder: Path, rounds: int, server: str, drill: bool) -> dict[str, object]:
    admin = sa.create_engine(
        make_url(server).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    name = "aris3nb_bench_row_index"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    try:
        seed(url, scale, folder)
        return compare(url, folder / "artifacts", rounds, drill)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to measure on")
    parser.add_argument("--sqlite-db", type=Path, help="an already seeded SQLite file to back up (not changed)")
    parser.add_argument("--drill", action="store_true", help="also drill each backup (restore_verify) and time it")
    args = parser.parse_args()
    results: dict[str, object] = {"scale": args.scale, "rounds": args.rounds}
    if args.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
            results["sqlite"] = bench_sqlite(args.scale, Path(tmp), args.rounds, args.sqlite_db, args.drill)
    if args.engine in ("postgresql", "both"):
        if not args.postgres_url:
            raise SystemExit("--postgres-url is needed to measure PostgreSQL")
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-") as tmp:
            results["postgresql"] = bench_postgres(args.scale, Path(tmp), args.rounds, args.postgres_url, args.drill)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
