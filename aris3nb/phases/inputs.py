"""What a phase notebook is given, turned into what it uses: the smoke target (its default
the playbook's own suite, by absolute path)."""

from __future__ import annotations

from aris3nb.resources import SMOKE_SUITE

#: The playbook's smoke suite — the package's copy when installed, the checkout's otherwise:
#: what a phase notebook runs when it is given none.
DEFAULT_SMOKE_TARGET = SMOKE_SUITE


def smoke_target(given: str | None) -> str:
    """The smoke target a phase notebook runs: the one given, else the playbook's own suite
    (an absolute path, so the notebook runs the same from any folder)."""
    return given or str(DEFAULT_SMOKE_TARGET)
