"""The playbook's `python scripts/ops/backup_create.py` line: `aris3nb backup create` under its old name."""

import sys

from aris3nb.cli import main

if __name__ == "__main__":
    main(["backup", "create", *sys.argv[1:]])
