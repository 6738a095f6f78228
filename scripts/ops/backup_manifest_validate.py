"""The playbook's `python scripts/ops/backup_manifest_validate.py` line: `aris3nb backup validate` under its old name."""

import sys

from aris3nb.cli import main

if __name__ == "__main__":
    main(["backup", "validate", *sys.argv[1:]])
