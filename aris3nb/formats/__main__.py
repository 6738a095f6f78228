"""``python -m aris3nb.formats [FOLDER] [--check]``: write the formats' JSON Schemas into FOLDER
(default ``docs/schemas``, from the checkout's root); with ``--check``, write nothing and exit 1
naming each schema that is not what its model generates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aris3nb.formats import REGENERATE, stale_schemas, write_schemas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aris3nb.formats", description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("docs/schemas"))
    parser.add_argument("--check", action="store_true", help="exit 1 when a schema is stale; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_schemas(args.folder)
        for problem in problems:
            print(f"FAILED: {problem}; regenerate with `{REGENERATE}`", file=sys.stderr)
        return 1 if problems else 0
    for path in write_schemas(args.folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
