"""The gate's git check on real repositories made in a temporary folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aris3nb.core.checks import Status
from aris3nb.gate.git import judge_git
from aris3nb.targets.revision import git_commit


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "release")
    (repo / "app.py").write_text("print('v1')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def test_clean_tree_passes_naming_branch_and_commit(repo: Path) -> None:
    outcome = judge_git(repo, strict=True)
    assert outcome.status is Status.PASS
    assert outcome.detail.startswith("branch release at ") and outcome.detail.endswith("clean tree")
    assert outcome.evidence["branch"] == "release" and len(outcome.evidence["commit"]) == 40


def test_dirty_tree_warns_and_fails_under_strict(repo: Path) -> None:
    (repo / "app.py").write_text("print('v2, untested')\n")
    (repo / "new.py").write_text("")
    outcome = judge_git(repo, strict=False)
    assert outcome.status is Status.WARN
    assert "dirty tree: 2 uncommitted paths" in outcome.detail and "app.py" in outcome.detail
    assert judge_git(repo, strict=True).status is Status.FAIL


def test_detached_head_is_named(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    assert judge_git(repo, strict=False).detail.startswith("detached HEAD at ")


def test_not_a_checkout_warns_naming_the_folder(tmp_path: Path) -> None:
    outcome = judge_git(tmp_path, strict=False)
    assert outcome.status is Status.WARN
    assert outcome.detail == f"not a git checkout: {tmp_path} is not a git checkout"


@pytest.mark.parametrize("change", ["untracked", "modified", "ignored"])
def test_the_evidence_calls_a_tree_dirty_exactly_when_the_gate_does(repo: Path, change: str) -> None:
    """``git_dirty`` in every report's code revision and the gate's git check agree: an untracked
    file is uncommitted code for both; a file .gitignore excludes is for neither."""
    assert git_commit(repo)["git_dirty"] is False
    if change == "untracked":
        (repo / "0099_new_migration.py").write_text("")
    elif change == "modified":
        (repo / "app.py").write_text("print('v2')\n")
    else:
        (repo / ".gitignore").write_text("*.log\n")
        git(repo, "add", ".gitignore")
        git(repo, "commit", "-q", "-m", "ignore logs")
        (repo / "server.log").write_text("")
    gate_dirty = judge_git(repo, strict=False).status is Status.WARN
    assert gate_dirty is (change != "ignored")
    assert git_commit(repo)["git_dirty"] is gate_dirty
