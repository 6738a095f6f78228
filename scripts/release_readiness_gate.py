"""The playbook's release readiness gate, verbatim from the repository root:

    python scripts/release_readiness_gate.py --pytest-target tests/smoke/test_post_merge_readiness.py

The same command as ``aris3nb gate`` (same options, output and exit codes).
"""

import sys

from aris3nb.cli import main

if __name__ == "__main__":
    main(["gate", *sys.argv[1:]])
