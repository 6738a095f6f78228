"""`aris3nb backup forget` on real backups: the policy, and what it never removes.

Five backups of one SQLite database, made for real and dated over five days (the manifest's
``created_at`` rewritten and the manifest resealed), the newest of them corrupted, the
oldest drilled by a GO run: ``--keep-last 1`` keeps the newest (the policy), the newest
*valid* one and the drilled one, and removes the other two, each decision with its reason.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import clifork
import pytest

from aris3nb import migrate
from aris3nb.backup.create import create_backup
from aris3nb.backup.manifest import manifest_digest
from aris3nb.backup.retention import Policy, forget
from aris3nb.core.errors import UsageError
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]


@pytest.fixture(scope="module")
def one_backup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("forget-source")
    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=200, exports_dir=folder / "exports")
    made = create_backup(
        url, "seed", settings=load_settings(artifacts={"dir": folder / "made"}), exports_dir=folder / "exports"
    )
    return made.path, url


@pytest.fixture
def artifacts(tmp_path: Path, one_backup: tuple[Path, str]) -> Path:
    """Five dated copies of the backup; the newest corrupted; a GO run that drilled the oldest."""
    made, _url = one_backup
    for day in DAYS:
        target = tmp_path / "backups" / f"pre_deploy_{day.replace('-', '')}_0800"
        shutil.copytree(made, target)
        manifest = target / "manifest.json"
        document = json.loads(manifest.read_text())
        document["name"], document["created_at"] = target.name, f"{day}T08:00:00.000Z"
        document["manifest_digest"] = manifest_digest(document)
        manifest.write_text(json.dumps(document))
    newest = tmp_path / "backups" / "pre_deploy_20260305_0800" / "database" / "aris3.sqlite3"
    data = bytearray(newest.read_bytes())
    data[5000] ^= 0xFF
    newest.write_bytes(bytes(data))
    run = tmp_path / "runs" / "20260301T090000Z-abc123"
    run.mkdir(parents=True)
    drilled = tmp_path / "backups" / "pre_deploy_20260301_0800" / "manifest.json"
    (run / "evidence.json").write_text(
        json.dumps(
            {
                "decision": "GO",
                "started_at": "2026-03-01T09:00:00Z",
                "phases": [{"phase": "drill", "parameters": {"manifest": str(drilled)}}],
            }
        )
    )
    return tmp_path


def forget_cli(artifacts: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return clifork.run(
        ["backup", "forget", *args], timeout=120, env={**os.environ, "OPS_ARTIFACTS_DIR": str(artifacts)}
    )


def names(artifacts: Path) -> list[str]:
    return sorted(p.name for p in (artifacts / "backups").iterdir())


def test_keep_last_one_keeps_the_newest_the_newest_valid_and_the_drilled(artifacts: Path) -> None:
    done = forget_cli(artifacts, "--keep-last", "1", "--json")
    assert done.returncode == 0, done.stderr
    decisions = {b["backup"]: b for b in json.loads(done.stdout)["backups"]}
    corrupt = decisions["pre_deploy_20260305_0800"]["reasons"]  # corrupt, but the policy keeps it
    assert corrupt[0] == "last backup" and corrupt[1].startswith("INVALID: 1 problem: "), corrupt
    assert decisions["pre_deploy_20260304_0800"]["reasons"] == ["the newest valid backup of its target"]
    assert decisions["pre_deploy_20260301_0800"]["reasons"] == [
        "drilled by run 20260301T090000Z-abc123, the last GO run"
    ]
    assert not decisions["pre_deploy_20260303_0800"]["keep"] and not decisions["pre_deploy_20260302_0800"]["keep"]
    assert names(artifacts) == ["pre_deploy_20260301_0800", "pre_deploy_20260304_0800", "pre_deploy_20260305_0800"]
    assert not list((artifacts / "backups").glob(".forgotten-*"))


def test_a_go_run_that_picked_its_backup_itself_protects_the_one_its_drill_report_names(artifacts: Path) -> None:
    """`aris3nb run drill` is given no manifest: the drill report in the run's folder names the
    backup it drilled, and forget keeps it."""
    run = artifacts / "runs" / "20260301T090000Z-abc123"
    document = json.loads((run / "evidence.json").read_text())
    document["phases"][0]["parameters"]["manifest"] = None
    (run / "evidence.json").write_text(json.dumps(document))
    (run / "drill").mkdir()
    (run / "drill" / "drill_report_20260301T090500000000Z.json").write_text(
        json.dumps({"backup": "pre_deploy_20260302_0800", "status": "PASS"})
    )
    done = forget_cli(artifacts, "--keep-last", "1", "--json")
    assert done.returncode == 0, done.stderr
    decisions = {b["backup"]: b for b in json.loads(done.stdout)["backups"]}
    assert decisions["pre_deploy_20260302_0800"]["reasons"] == [
        "drilled by run 20260301T090000Z-abc123, the last GO run"
    ]
    assert not decisions["pre_deploy_20260301_0800"]["keep"], "no longer named by any GO run"

    (run / "drill" / "drill_report_20260301T090600000000Z.json").write_text("{not json")
    before = names(artifacts)
    refused = forget_cli(artifacts, "--keep-last", "1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "cannot tell which backup the last GO run 20260301T090000Z-abc123 drilled" in refused.stderr
    assert "nothing was removed" in refused.stderr and names(artifacts) == before


def test_a_dry_run_removes_nothing_and_says_what_it_would(artifacts: Path) -> None:
    before = names(artifacts)
    done = forget_cli(artifacts, "--keep-daily", "2", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert names(artifacts) == before
    assert "would remove" in done.stdout and "pre_deploy_20260302_0800" in done.stdout
    assert "2 would be removed" in done.stdout.splitlines()[-1]


def test_no_policy_is_exit_2_and_removes_nothing(artifacts: Path) -> None:
    before = names(artifacts)
    done = forget_cli(artifacts)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("FAILED: no policy given") and "Traceback" not in done.stderr
    assert names(artifacts) == before
    assert forget_cli(artifacts, "--keep-last", "-3").returncode == 2


def test_a_removal_killed_midway_is_finished_by_the_next_forget(artifacts: Path) -> None:
    parked = artifacts / "backups" / ".forgotten-pre_deploy_20260302_0800-pid1"
    (artifacts / "backups" / "pre_deploy_20260302_0800").rename(parked)
    result = forget(load_settings(artifacts={"dir": artifacts}), Policy(last=-1))
    assert not parked.exists() and result.removed == []
    assert "pre_deploy_20260302_0800" not in names(artifacts)


def test_an_unreadable_manifest_is_left_for_a_person(artifacts: Path) -> None:
    (artifacts / "backups" / "pre_deploy_20260302_0800" / "manifest.json").write_text("{not json")
    result = forget(load_settings(artifacts={"dir": artifacts}), Policy(last=1))
    [entry] = [e for e in result.entries if e.name == "pre_deploy_20260302_0800"]
    assert entry.keep and "unreadable" in entry.reasons[0]
    assert (artifacts / "backups" / "pre_deploy_20260302_0800").is_dir()


def test_the_library_refuses_an_empty_policy(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        forget(load_settings(artifacts={"dir": tmp_path}), Policy())


def test_the_embedded_default_keeps_its_newest_backups_and_never_touches_a_real_targets(
    tmp_path: Path, one_backup: tuple[Path, str]
) -> None:
    """After an embedded run: its disposable databases' backups (each run's its own database)
    are judged as one group, the newest OPS_EMBEDDED_KEEP_LAST kept; a real target's stay."""
    from aris3nb.evidence.seal import _forget_embedded_backups

    made, _url = one_backup
    for number, day in enumerate(DAYS):
        target = tmp_path / "backups" / f"pre_deploy_{day.replace('-', '')}_0800"
        shutil.copytree(made, target)
        manifest = target / "manifest.json"
        document = json.loads(manifest.read_text())
        document["name"], document["created_at"] = target.name, f"{day}T08:00:00.000Z"
        if number < 4:  # four embedded runs' databases; the fifth backup is of a real target
            document["source"]["path"] = f"/tmp/aris3nb-run-embedded-pid{100 + number}-x/aris3.db"
        document["manifest_digest"] = manifest_digest(document)
        manifest.write_text(json.dumps(document))
    settings = load_settings(artifacts={"dir": tmp_path, "embedded_keep_last": 2})
    removed, problem = _forget_embedded_backups(settings, tmp_path / "runs")
    assert sorted(removed) == ["pre_deploy_20260301_0800", "pre_deploy_20260302_0800"] and problem is None
    assert names(tmp_path) == ["pre_deploy_20260303_0800", "pre_deploy_20260304_0800", "pre_deploy_20260305_0800"]
    none = load_settings(artifacts={"dir": tmp_path, "embedded_keep_last": 0})
    assert _forget_embedded_backups(none, tmp_path / "runs") == ([], None)


def test_the_embedded_defaults_retention_failing_is_said_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aris3nb.backup import retention
    from aris3nb.evidence.seal import _forget_embedded_backups

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "backups"))

    monkeypatch.setattr(retention, "forget", denied)
    removed, problem = _forget_embedded_backups(load_settings(artifacts={"dir": tmp_path}), tmp_path / "runs")
    assert removed == [] and problem == (
        "the embedded default's older backups were not removed (OPS_EMBEDDED_KEEP_LAST): Permission denied"
    )
