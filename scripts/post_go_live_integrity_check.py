"""The playbook's post-go-live integrity check, verbatim from the repository root:

    python scripts/post_go_live_integrity_check.py --strict

The same command as ``aris3nb integrity`` (same options, output and exit codes).
"""

import sys

from aris3nb.cli import main

if __name__ == "__main__":
    main(["integrity", *sys.argv[1:]])
