"""Command line of the foreign target: ``python -m foreign_retail <command>``.

* ``seed --database-url URL --scale N --exports-dir DIR``: fill an empty database at head
  (the smoke account from FOREIGN_SMOKE_USER / FOREIGN_SMOKE_PASSWORD).
* ``widen-version-table --database-url URL``: create or widen ``alembic_version.version_num``
  before the first upgrade (the workaround for the VARCHAR(32) defect).
* ``serve --database-url URL [--host H] [--port P] [--exports-dir DIR]``: run the service.
* ``revert --to RELEASE``: the rollback's "revert the app to the last stable release". This test
  target has nothing to redeploy: it prints what it would do and exits 0, or 1 when
  ``FOREIGN_REVERT_FAIL=1`` (so a rollback whose revert fails can be tested).

Exit codes: 0 done, 1 the command failed (one ``FAILED:`` line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from foreign_retail.db import ConfigurationError, create_engine, database_url, widen_version_table
from foreign_retail.seed import EXPORTS_DIR_ENV, SeedError, seed_database, smoke_credentials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m foreign_retail", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="fill an empty database at head with deterministic data")
    seed.add_argument("--database-url", help="default: FOREIGN_DATABASE_URL")
    seed.add_argument("--scale", type=int, default=40, help="inventory units per outlet (default 40)")
    seed.add_argument(
        "--exports-dir", type=Path, help=f"where export files go (default: {EXPORTS_DIR_ENV} or ./exports)"
    )
    widen = commands.add_parser("widen-version-table", help="create or widen alembic_version.version_num")
    widen.add_argument("--database-url", help="default: FOREIGN_DATABASE_URL")
    serve = commands.add_parser("serve", help="run the HTTP service with uvicorn")
    serve.add_argument("--database-url", help="default: FOREIGN_DATABASE_URL")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8077)
    serve.add_argument("--exports-dir", type=Path, help=f"default: {EXPORTS_DIR_ENV}")
    revert = commands.add_parser("revert", help="revert the app to a release (a test stand-in)")
    revert.add_argument("--to", required=True, metavar="RELEASE")
    args = parser.parse_args(argv)
    if args.command == "revert":
        if os.environ.get("FOREIGN_REVERT_FAIL", "").lower() in ("1", "true", "yes"):
            print(f"FAILED: revert to {args.to}: FOREIGN_REVERT_FAIL is set", file=sys.stderr)
            return 1
        print(f"reverted foreign_retail to release {args.to} (test target: nothing to redeploy)")
        return 0
    try:
        url = database_url(args.database_url)
        if args.command == "seed":
            exports_dir = args.exports_dir or Path(os.environ.get(EXPORTS_DIR_ENV, "exports"))
            user, password = smoke_credentials()
            counts = seed_database(url, args.scale, exports_dir, user, password)
            print("seeded: " + ", ".join(f"{table}={n}" for table, n in counts.items()))
            print(f"exports written under {exports_dir.resolve()}")
        elif args.command == "widen-version-table":
            engine = create_engine(url)
            try:
                with engine.begin() as conn:
                    print(widen_version_table(conn))
            finally:
                engine.dispose()
        else:
            import uvicorn

            from foreign_retail.app import create_app

            uvicorn.run(create_app(url, args.exports_dir), host=args.host, port=args.port, log_level="warning")
    except (ConfigurationError, SeedError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database error: one line, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, SQLAlchemyError):
            raise
        print(f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
