"""Where a phase notebook writes its evidence: the run's folder under `aris3nb run`, a scratch run
by hand — and never into a run folder by hand: a notebook re-run where it lies (JupyterLab starts
its kernel in the notebook's folder) would add files to sealed evidence and act on the target again."""

from __future__ import annotations

from pathlib import Path

import pytest

from aris3nb.core.errors import UsageError
from aris3nb.evidence.display import RUN_DIR_ENV, start_phase

RUN_ID = "20261203T073131Z-0a1488"


@pytest.fixture
def by_hand(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A sealed run under tmp_path/artifacts, and the environment of a kernel started by hand."""
    run = tmp_path / "artifacts" / "runs" / RUN_ID
    run.mkdir(parents=True)
    (run / "04-drill.ipynb").write_text("{}")
    (run / "evidence.json").write_text("{}")
    for name in (RUN_DIR_ENV, "OPS_ARTIFACTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return run


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*"))


def test_by_hand_a_phase_runs_in_a_scratch_run_of_the_artifacts_folder(
    by_hand: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(tmp_path / "elsewhere"))
    phase = start_phase("drill")
    assert phase.folder.parent.parent == tmp_path / "elsewhere" / "scratch" and phase.folder.is_dir()


def test_by_hand_inside_a_run_folder_nothing_is_written_and_it_says_where_to_run(
    by_hand: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = files_under(tmp_path)
    monkeypatch.chdir(by_hand)  # the notebook opened where it lies; OPS_ARTIFACTS_DIR unset: ./artifacts
    with pytest.raises(UsageError, match=f"inside the run folder {by_hand}: .* OPS_ARTIFACTS_DIR to an absolute"):
        start_phase("drill")
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(tmp_path / "elsewhere"))  # even with the artifacts elsewhere
    with pytest.raises(UsageError, match="inside the run folder"):
        start_phase("rollback")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(by_hand / "artifacts"))  # or the artifacts inside the run
    with pytest.raises(UsageError, match="inside the run folder"):
        start_phase("drill")
    assert files_under(tmp_path) == before


def test_a_run_folder_named_as_sealed_is_never_written_into(by_hand: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(by_hand))
    with pytest.raises(UsageError, match="a sealed run"):
        start_phase("drill")
    assert not (by_hand / "drill").exists()


def test_a_relative_run_folder_or_a_linked_runs_folder_is_still_a_run(
    by_hand: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ARIS3NB_RUN_DIR relative to a kernel started inside a sealed run resolves inside it; a
    runs folder reached through a link under another name still holds runs."""
    monkeypatch.chdir(by_hand)
    monkeypatch.setenv(RUN_DIR_ENV, f"artifacts/runs/{RUN_ID}")
    with pytest.raises(UsageError, match="a folder inside a run"):
        start_phase("drill")
    assert not (by_hand / "artifacts").exists()
    monkeypatch.delenv(RUN_DIR_ENV)
    store = tmp_path / "worm-store"
    store.mkdir()
    (store / RUN_ID).mkdir()
    (store / RUN_ID / "evidence.json").write_text("{}")
    (tmp_path / "linked").symlink_to(store)
    monkeypatch.chdir(tmp_path / "linked" / RUN_ID)
    with pytest.raises(UsageError, match="inside the run folder"):
        start_phase("drill")
    assert sorted(p.name for p in (store / RUN_ID).iterdir()) == ["evidence.json"]
