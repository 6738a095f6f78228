"""No secret is a notebook parameter: a URL with a password is None among a phase's
parameters and reaches the kernel through its environment only; a re-run needs the same
target given again."""

from __future__ import annotations

import datetime as dt

import pytest

from aris3nb.core.errors import UsageError
from aris3nb.core.settings import load_settings
from aris3nb.evidence.runner import RunOptions, _backup_name, _given_again, _kernel_env, _public, lock_target

REAL = "postgresql://app:S3cret-pw@db.internal:5432/aris3"
MASKED = "postgresql://app:***@db.internal:5432/aris3"


def test_a_url_with_a_password_is_never_a_parameter() -> None:
    assert _public(REAL) is None
    assert _public("http://svc:Other-pw@10.0.0.1:8000") is None
    assert _public("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert _public("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert _public(None) is None


def test_the_operators_urls_reach_the_kernel_by_its_environment(tmp_path) -> None:
    class FakeRun:
        run_dir = tmp_path / "run"
        options = RunOptions(database_url=REAL, base_url="https://aris3.internal")

        settings = load_settings(artifacts={"dir": tmp_path})

    env = _kernel_env(FakeRun())  # type: ignore[arg-type]
    assert env["DATABASE_URL"] == REAL and env["ARIS3_BASE_URL"] == "https://aris3.internal"
    assert "OPS_ENABLE_BACKUP_DRILL" not in env or env["OPS_ENABLE_BACKUP_DRILL"] == __import__("os").environ.get(
        "OPS_ENABLE_BACKUP_DRILL"
    ), "drills are enabled only for the embedded default"
    assert "OPS_ARTIFACTS_SHOWN_AS" not in env or env["OPS_ARTIFACTS_SHOWN_AS"] == __import__("os").environ.get(
        "OPS_ARTIFACTS_SHOWN_AS"
    )
    FakeRun.settings = load_settings(artifacts={"dir": tmp_path, "shown_as": "s3://bucket/aris"})
    assert _kernel_env(FakeRun())["OPS_ARTIFACTS_SHOWN_AS"] == "s3://bucket/aris"  # type: ignore[arg-type]
    # The memory folder the runner's embedded target may be in, as the runner's settings say it.
    FakeRun.settings = FakeRun.settings.updated(artifacts={"memory_dir": tmp_path / "memory"})
    assert _kernel_env(FakeRun())["OPS_MEMORY_DIR"] == str(tmp_path / "memory")  # type: ignore[arg-type]
    FakeRun.settings = FakeRun.settings.updated(artifacts={"memory_dir": None})
    assert _kernel_env(FakeRun())["OPS_MEMORY_DIR"] == ""  # type: ignore[arg-type]  # read back as None


def test_a_rerun_takes_the_same_target_given_again() -> None:
    assert _given_again(REAL, MASKED, "--database-url") == REAL
    assert _given_again(None, None, "--database-url") is None
    with pytest.raises(UsageError, match="give --database-url again"):
        _given_again(None, MASKED, "--database-url")
    with pytest.raises(UsageError, match="a re-run judges the same target"):
        _given_again("postgresql://app:x@other:5432/aris3", MASKED, "--database-url")
    spelled_otherwise = REAL.replace("postgresql://", "postgresql+psycopg://").replace(":5432", "")
    assert spelled_otherwise != REAL and _given_again(spelled_otherwise, MASKED, "--database-url") == spelled_otherwise
    with pytest.raises(UsageError, match="a re-run judges the same target"):
        _given_again("http://db.example", "http://other.example", "--base-url")


def test_the_deploy_backup_never_takes_a_name_taken_locally_or_on_the_runs_bucket(tmp_path) -> None:
    settings = load_settings(artifacts={"dir": tmp_path})
    started = dt.datetime(2026, 11, 30, 7, 5, tzinfo=dt.UTC)
    assert _backup_name(settings, started, "20261130T070500Z-ab12cd", frozenset()) == "pre_deploy_20261130_0705"
    taken = frozenset({"pre_deploy_20261130_0705"})  # on the bucket a staged run pushes to
    assert _backup_name(settings, started, "20261130T070500Z-ab12cd", taken) == "pre_deploy_20261130_0705_ab12cd"
    (tmp_path / "backups" / "pre_deploy_20261130_0705").mkdir(parents=True)
    assert _backup_name(settings, started, "20261130T070500Z-ab12cd", frozenset()) == "pre_deploy_20261130_0705_ab12cd"


def test_a_runs_lock_is_named_after_its_database_without_the_password() -> None:
    """The lock's name is written into its file and into the waiting message."""
    named = lock_target(RunOptions(database_url=REAL))
    assert "S3cret-pw" not in named and named == "postgresql db.internal:5432/aris3"


@pytest.mark.parametrize(
    "spelled",
    [
        "postgresql://app:S3cret-pw@localhost/aris3",
        "postgresql+psycopg://ops@127.0.0.1:5432/aris3",
        "postgresql://other-role:pw@LOCALHOST:5432/aris3",
    ],
)
def test_one_database_under_another_spelling_is_one_lock(spelled: str) -> None:
    """Two runs against one database must wait for each other however their URLs name it."""
    first = lock_target(RunOptions(database_url="postgresql+psycopg://app:S3cret-pw@127.0.0.1/aris3"))
    assert lock_target(RunOptions(database_url=spelled)) == first
    assert lock_target(RunOptions(database_url="postgresql://app@127.0.0.1:5433/aris3")) != first


def test_a_sqlite_targets_lock_follows_the_file_not_its_spelling(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    first = lock_target(RunOptions(database_url=f"sqlite:///{tmp_path}/data/aris3.db"))
    assert lock_target(RunOptions(database_url=f"sqlite+pysqlite:///{tmp_path}/link/../data/aris3.db")) == first
    assert lock_target(RunOptions(database_url=f"sqlite:///{tmp_path}/link/aris3.db")) == first
    assert lock_target(RunOptions(database_url=f"sqlite:///{tmp_path}/data/other.db")) != first


def test_a_phase_names_its_reports_after_its_run_only_when_its_folder_is_a_run(tmp_path) -> None:
    from aris3nb.evidence.display import PhaseEvidence

    assert PhaseEvidence("pre_deploy", tmp_path / "20261130T070500Z-ab12cd" / "pre_deploy").run_id == (
        "20261130T070500Z-ab12cd"
    )
    assert PhaseEvidence("pre_deploy", tmp_path / "run" / "pre_deploy").run_id is None  # the gate takes its own id


def test_the_index_library_loads_only_once_no_phase_left_measures_latency() -> None:
    """The runner loads the index page's library beside the last phases, never while a phase
    that measures latency may still run (pre- and post-deploy)."""
    from aris3nb.evidence.runner import no_latency_measured_from
    from aris3nb.phases import PHASES

    planned = [phase for phase in PHASES if phase.name in ("pre_deploy", "deploy", "post_deploy", "drill")]
    assert [no_latency_measured_from(planned, i) for i in range(len(planned))] == [False, False, False, True]
    assert [phase.name for phase in planned if phase.quiet] == ["pre_deploy", "post_deploy"]
    only_deploy = [phase for phase in PHASES if phase.name == "deploy"]
    assert no_latency_measured_from(only_deploy, 0)
