"""The playbook's `python scripts/ops/backup_restore_verify.py` line: `aris3nb backup restore-verify` under its old name."""

import sys

from aris3nb.cli import main

if __name__ == "__main__":
    main(["backup", "restore-verify", *sys.argv[1:]])
