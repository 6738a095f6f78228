"""The target's code revision, as every report names it: the git commit of the target's root
(and whether its tree was clean) and the Alembic head of its migrations."""

from __future__ import annotations

import subprocess
from typing import Any

from aris3nb.core.errors import Aris3nbError
from aris3nb.targets.profile import LoadedProfile

GIT_TIMEOUT_SEC = 10.0


def git_commit(root: Any) -> dict[str, Any]:
    """``{"git_commit", "git_dirty"}`` of the checkout at ``root`` (None where it is no checkout)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_SEC, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    # Dirty as the gate's git check says it (untracked files count: a new migration or module
    # not yet committed is code that runs), so the evidence and the gate never disagree.
    status = git("status", "--porcelain=v1", "--untracked-files=normal") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def target_code_revision(loaded: LoadedProfile) -> dict[str, Any]:
    """The target's code revision; the reference's is aris3nb's own (its migrations' head)."""
    from aris3nb.targets.code import head_revision

    revision: dict[str, Any] = git_commit(loaded.root) if loaded.profile.target.code_revision == "git" else {}
    try:
        revision["alembic_head"] = head_revision(None if loaded.is_reference else loaded)
    except Aris3nbError as exc:
        revision.update(alembic_head=None, alembic_head_error=str(exc))
    return revision


_CACHE: dict[tuple[str | None, str | None], dict[str, Any]] = {}


def cached_code_revision(loaded: LoadedProfile) -> dict[str, Any]:
    """``target_code_revision``, once per profile file in a process (a run marks five notebooks)."""
    key = (str(loaded.path) if loaded.path else None, loaded.sha256)
    if key not in _CACHE:
        _CACHE[key] = target_code_revision(loaded)
    return dict(_CACHE[key])
