"""Seed time and peak memory at a given scale, on SQLite (and PostgreSQL when given).

    .venv/bin/python bench/seed_scale.py --scale 2000000
    .venv/bin/python bench/seed_scale.py --scale 200000 --database-url postgresql://postgres@127.0.0.1/aris3nb_bench

Each measurement runs in its own process so that peak RSS belongs to that run alone. A
PostgreSQL database named in --database-url is dropped and created anew.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from aris3nb import migrate
from aris3nb.reference.seed import seed_database
url, scale, exports = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
migrate.upgrade(url)
summary = seed_database(url, scale=scale, exports_dir=exports)
print(json.dumps({"seconds": round(summary.duration_sec, 2), "rows": sum(summary.rows.values()),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def recreate_postgres_database(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = sa.create_engine(
        target.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()


def measure(url: str, scale: int, exports: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(scale), str(exports)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2_000_000)
    parser.add_argument("--database-url", help="a PostgreSQL URL to measure too (the database is recreated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"sqlite": measure(f"sqlite:///{tmp}/bench.db", args.scale, Path(tmp) / "exports-sqlite")}
        if args.database_url:
            recreate_postgres_database(args.database_url)
            results["postgresql"] = measure(args.database_url, args.scale, Path(tmp) / "exports-pg")
    print(json.dumps({"scale": args.scale, **results}, indent=2))


if __name__ == "__main__":
    main()
