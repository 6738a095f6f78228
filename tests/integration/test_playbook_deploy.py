"""The deploy phase's checks fail, with their cause, when there is nothing to back up or probe,
or when the backup cannot be taken; a failing check never raises."""

from __future__ import annotations

from pathlib import Path

from aris3nb import migrate
from aris3nb.core.checks import Status, Verdict
from aris3nb.core.settings import load_settings
from aris3nb.phases.deploy import DeployOptions, deploy


def statuses(report) -> dict[str, tuple[Status, str]]:
    return {result.name: (result.status, result.detail) for result in report.results}


def test_nothing_to_back_up_or_probe_fails_every_check(tmp_path: Path, monkeypatch) -> None:
    for name in ("DATABASE_URL", "ARIS3_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    report = deploy(DeployOptions(database_url=None, base_url=None), load_settings(artifacts={"dir": tmp_path}))
    found = statuses(report)
    assert report.verdict is Verdict.FAIL and report.backup is None
    assert found["backup.create"][0] is Status.FAIL and "no database URL" in found["backup.create"][1]
    assert found["backup.manifest"] == (Status.FAIL, "no backup to validate (backup.create failed)")
    assert found["http.health"][0] is found["http.ready"][0] is Status.FAIL


def test_a_backup_name_taken_leaves_the_old_one_and_takes_another_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    (tmp_path / "exports").mkdir()
    options = DeployOptions(
        database_url=url,
        base_url="http://127.0.0.1:9",
        backup_name="pre_deploy_20261128_0800",
        exports_dir=tmp_path / "exports",
    )
    first = deploy(options, settings)
    assert statuses(first)["backup.create"][0] is Status.PASS and statuses(first)["backup.manifest"][0] is Status.PASS
    assert statuses(first)["http.health"][0] is Status.FAIL, "nothing listens on port 9"
    manifest = first.backup.manifest_path.read_bytes()
    again = deploy(options, settings)
    assert statuses(again)["backup.create"][0] is Status.PASS
    assert again.backup.path != first.backup.path and again.backup.path.name.startswith("pre_deploy_20261128_0800_")
    assert first.backup.manifest_path.read_bytes() == manifest


def test_a_backup_name_taken_by_another_run_gets_a_suffix_not_a_failure(tmp_path: Path) -> None:
    """Two runs in the same minute: the second one's pre_deploy_YYYYMMDD_HHMM is taken. That is
    a name, not an unsafe release: the deploy phase takes a suffixed name and passes."""
    from aris3nb.backup.create import create_backup

    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    settings.resolved_exports_dir().mkdir(parents=True)  # the service's export files (none yet)
    create_backup(url, "pre_deploy_20261129_1000", settings=settings)
    report = deploy(DeployOptions(database_url=url, base_url=None, backup_name="pre_deploy_20261129_1000"), settings)
    created = next(r for r in report.results if r.name == "backup.create")
    assert created.status.value == "PASS", created.detail
    assert report.backup is not None and report.backup.path.name.startswith("pre_deploy_20261129_1000_")


def test_a_missing_exports_folder_is_a_warning_never_a_silent_zero(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    report = deploy(
        DeployOptions(
            database_url=url,
            base_url=None,
            backup_name="pre_deploy_20261129_1100",
            exports_dir=tmp_path / "no-exports-here",
        ),
        settings,
    )
    created = next(r for r in report.results if r.name == "backup.create")
    assert (
        created.status is Status.WARN
        and f"exports folder {tmp_path / 'no-exports-here'} does not exist: 0 files copied" in created.detail
    ), created.detail
