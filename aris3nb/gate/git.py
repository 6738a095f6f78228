"""The working branch and whether the tree is clean, read with ``git`` as a subprocess
(with a timeout, and ``--no-optional-locks`` so that looking never takes the index lock
from someone committing at the same time).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, failed, passed, warned
from aris3nb.core.words import count

GIT_TIMEOUT_SEC = 15.0


@dataclass(frozen=True)
class GitState:
    repository: Path
    branch: str | None  # None when HEAD is detached
    commit: str
    changes: list[str] = field(default_factory=list)  # `git status --porcelain` lines

    @property
    def clean(self) -> bool:
        return not self.changes


class NotACheckout(Exception):
    """``repository`` is not inside a git work tree, or git is not installed."""


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(repository), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SEC,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise NotACheckout("git is not installed") from exc


def read_git_state(repository: Path) -> GitState:
    """Branch, commit and uncommitted changes of the checkout at ``repository``."""
    inside = _git(repository, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise NotACheckout(f"{repository} is not a git checkout")
    top = _git(repository, "rev-parse", "--show-toplevel").stdout.strip()
    commit = _git(repository, "rev-parse", "--verify", "--quiet", "HEAD").stdout.strip() or "(no commit yet)"
    branch = _git(repository, "symbolic-ref", "--quiet", "--short", "HEAD")
    status = _git(repository, "status", "--porcelain=v1", "--untracked-files=normal")
    if status.returncode != 0:
        raise RuntimeError(f"git status failed in {repository}: {status.stderr.strip()[:200]}")
    return GitState(
        repository=Path(top or repository),
        branch=branch.stdout.strip() if branch.returncode == 0 else None,
        commit=commit,
        changes=[line for line in status.stdout.splitlines() if line.strip()],
    )


def judge_git(repository: Path, *, strict: bool) -> Outcome:
    """The release is built from a known branch and commit, and from nothing else: a dirty
    tree means the tested code is not the committed code (WARN; FAIL under ``--strict``)."""
    try:
        state = read_git_state(repository)
    except NotACheckout as exc:
        return warned(f"not a git checkout: {exc}", repository=str(repository))
    where = f"branch {state.branch}" if state.branch else "detached HEAD"
    evidence = {
        "repository": str(state.repository),
        "branch": state.branch,
        "commit": state.commit,
        "changed_paths": len(state.changes),
        "changes_sample": state.changes[: SAMPLE_LIMIT * 2],
    }
    if state.clean:
        return passed(f"{where} at {state.commit[:12]}, clean tree", **evidence)
    detail = (
        f"{where} at {state.commit[:12]}, dirty tree: {count(len(state.changes), 'uncommitted path')}, e.g. "
        f"{', '.join(line[3:] for line in state.changes[:3])}"
    )
    return failed(detail, **evidence) if strict else warned(detail, **evidence)
