"""What a phase notebook is given, turned into what it uses: the smoke target (its default
the playbook's own suite, by absolute path) and URLs whose password the runner masked."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from aris3nb.core.errors import UsageError
from aris3nb.core.redact import MASK, redact_text, redact_url

#: Set by the runner in the kernel's environment: the file (owner-only, outside the bundle)
#: holding the real URLs the run's masked URL parameters stand for, as a JSON list.
URLS_FILE_ENV = "ARIS3NB_URLS_FILE"
#: The playbook's smoke suite in this checkout: what a phase notebook runs when it is given none.
DEFAULT_SMOKE_TARGET = Path(__file__).resolve().parents[2] / "tests" / "smoke" / "test_post_merge_readiness.py"


def smoke_target(given: str | None) -> str:
    """The smoke target a phase notebook runs: the one given, else the playbook's own suite
    (an absolute path, so the notebook runs the same from any folder)."""
    return given or str(DEFAULT_SMOKE_TARGET)


def resolve_url(url: str | None) -> str | None:
    """The real URL behind ``url`` when its password was masked (``***``).

    Candidates are the URLs the runner handed the kernel (``ARIS3NB_URLS_FILE``) and, when a
    notebook is re-run by hand, ``DATABASE_URL`` and ``ARIS3_BASE_URL``; the one whose
    redacted form equals ``url`` is it. ``UsageError`` when none does.
    """
    if url is None or f":{MASK}@" not in url:
        return url
    candidates: list[str] = []
    if os.environ.get(URLS_FILE_ENV):
        with contextlib.suppress(OSError, ValueError):
            candidates += json.loads(Path(os.environ[URLS_FILE_ENV]).read_text(encoding="utf-8"))
    candidates += [os.environ[name] for name in ("DATABASE_URL", "ARIS3_BASE_URL") if os.environ.get(name)]
    for candidate in candidates:
        if url in (redact_url(candidate), redact_text(candidate)):
            return candidate
    raise UsageError(f"{url} has its password masked: set DATABASE_URL (or ARIS3_BASE_URL) to the real URL "
                     "to run this notebook again")
