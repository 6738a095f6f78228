"""The freshness judgement of the gate: the newest *valid* backup of the target against the
RPO budget, the last *passing* drill of one of its backups against the max age, and the rule
for a gate without a real target (SKIP only there; never a PASS for work not done)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from aris3nb import migrate
from aris3nb.backup import source
from aris3nb.backup.catalog import Candidate
from aris3nb.backup.create import create_backup
from aris3nb.core.checks import Status
from aris3nb.core.errors import InvalidSettings
from aris3nb.core.ids import utc_text
from aris3nb.core.settings import Settings, load_settings
from aris3nb.gate import freshness
from aris3nb.gate.runner import GATE_CHECKS

T0 = dt.datetime(2026, 11, 28, 6, 0, 0, tzinfo=dt.UTC)
DOCUMENTED_REPORT = next(
    document
    for block in re.findall(
        r"```json\n(.*?)```", (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text(), flags=re.S
    )
    if block.lstrip().startswith("{") and (document := json.loads(block)).get("format") == "aris3nb.drill.report"
)
DAY = 86400.0


def candidate(name: str, at: dt.datetime | str, rejected: str | None = None) -> Candidate:
    return Candidate(
        name, Path(f"/a/backups/{name}/manifest.json"), at if isinstance(at, str) else utc_text(at), rejected
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(artifacts={"dir": tmp_path / "artifacts"})


@pytest.fixture
def target(tmp_path: Path) -> str:
    """A target SQLite database (never opened: its identity is its resolved path)."""
    return f"sqlite:///{tmp_path / 'target.db'}"


# ---------------------------------------------------------------------------- the figures


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.864, "0.9 s"),
        (1, "1 s"),
        (119.9, "119.9 s"),
        (120, "2 min"),
        (754, "12.6 min"),
        (7200, "2 h"),
        (11520, "3.2 h"),
        (86400, "24 h"),
        (172800, "2 days"),
        (604800, "7 days"),
    ],
)
def test_ages_and_budgets_read_as_people_say_them(seconds: float, text: str) -> None:
    assert freshness.age_text(seconds) == text


# ---------------------------------------------------------------------------- backups


def test_a_backup_exactly_at_the_budget_passes_and_one_millisecond_older_fails() -> None:
    chosen = candidate("pre_deploy_a", T0)
    at_budget = freshness.judge_backup_age(chosen, [], budget_sec=DAY, now=T0 + dt.timedelta(seconds=DAY))
    assert at_budget.status is Status.PASS
    assert at_budget.detail == "newest valid backup pre_deploy_a is 24 h old, budget 24 h"
    assert at_budget.evidence["age_sec"] == DAY and at_budget.evidence["rpo_budget_sec"] == DAY
    over = freshness.judge_backup_age(chosen, [], budget_sec=DAY, now=T0 + dt.timedelta(seconds=DAY, milliseconds=1))
    assert over.status is Status.FAIL
    assert over.detail.startswith(
        "newest valid backup pre_deploy_a is 24 h old, budget 24 h: older than the RPO budget "
        "(OPS_RPO_BUDGET_SEC=86400)"
    )


def test_a_backup_from_the_future_is_not_judged_fresh_beyond_clock_skew() -> None:
    chosen = candidate("pre_deploy_a", T0 + dt.timedelta(seconds=30))
    assert freshness.judge_backup_age(chosen, [], budget_sec=1, now=T0).status is Status.PASS  # skew: age 0
    far = freshness.judge_backup_age(candidate("b", T0 + dt.timedelta(hours=2)), [], budget_sec=DAY, now=T0)
    assert far.status is Status.FAIL and "2 h in the future" in far.detail
    unreadable = freshness.judge_backup_age(candidate("c", "?"), [], budget_sec=DAY, now=T0)
    assert unreadable.status is Status.FAIL and "no readable created_at" in unreadable.detail


def test_no_backup_of_the_target_fails_listing_what_was_found_and_why(
    settings: Settings, target: str, tmp_path: Path
) -> None:
    none = freshness.judge_backup_freshness(settings, target, budget_sec=DAY)
    assert none.status is Status.FAIL
    assert none.detail.startswith(f"no valid backup of sqlite {tmp_path / 'target.db'} under ")
    assert "backups found: none" in none.detail and none.evidence["newest_valid_backup"] is None

    other = f"sqlite:///{tmp_path / 'other.db'}"
    migrate.upgrade(other)
    create_backup(other, "of_another_database", settings=settings)
    found = freshness.judge_backup_freshness(settings, target, budget_sec=DAY)
    assert found.status is Status.FAIL
    assert "of_another_database (" in found.detail and "not of the target" in found.detail


def test_a_newer_backup_of_another_database_leaves_the_targets_pass(settings: Settings, tmp_path: Path) -> None:
    """Many targets may share one artifacts folder: another's newer backup is not a backup of
    this target passed over (that would WARN), only a name in the list."""
    url, other = f"sqlite:///{tmp_path / 'target.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    migrate.upgrade(url)
    migrate.upgrade(other)
    ours = create_backup(url, "a_ours", settings=settings)
    time.sleep(0.01)
    theirs = create_backup(other, "b_theirs", settings=settings)
    now = freshness.parse_utc(theirs.manifest["created_at"])
    assert now is not None and now > freshness.parse_utc(ours.manifest["created_at"])
    fresh = freshness.judge_backup_freshness(settings, url, budget_sec=DAY, now=now)
    assert fresh.status is Status.PASS, fresh.detail


def test_the_newest_valid_backup_counts_an_invalid_newer_one_is_passed_over_and_named(
    settings: Settings, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    migrate.upgrade(url)
    older = create_backup(url, "a_older", settings=settings)
    time.sleep(0.01)
    newer = create_backup(url, "b_newer", settings=settings)
    data = next(p for p in newer.path.rglob("*") if p.is_file() and p.name != "manifest.json")
    data.write_bytes(data.read_bytes() + b"corrupt")  # the newest backup no longer validates
    older_at = freshness.parse_utc(older.manifest["created_at"])
    newer_at = freshness.parse_utc(newer.manifest["created_at"])
    assert older_at is not None and newer_at is not None and newer_at > older_at

    fresh = freshness.judge_backup_freshness(settings, url, budget_sec=DAY, now=newer_at)
    # In time, but the target's newest backup could not be used: said as a WARN, never a plain PASS.
    assert fresh.status is Status.WARN, fresh.detail
    assert fresh.detail.startswith("newest valid backup a_older is ")
    assert fresh.detail.endswith("; newer backups passed over: b_newer")
    [passed_over] = fresh.evidence["newer_passed_over"]
    assert passed_over["backup"] == "b_newer" and passed_over["why"].startswith("invalid, ")

    # Judged by the invalid newer one, this would pass; by the older valid one, it is stale.
    half = (newer_at - older_at).total_seconds() / 2
    stale = freshness.judge_backup_freshness(settings, url, budget_sec=half, now=newer_at)
    assert stale.status is Status.FAIL and stale.detail.startswith("newest valid backup a_older is ")
    assert stale.evidence["newest_valid_backup"] == "a_older"


# ---------------------------------------------------------------------------- drills


def fake_backup(settings: Settings, name: str, of_url: str) -> Path:
    """A manifest recording ``of_url`` as its source: all the drill judgement reads of it."""
    folder = settings.artifacts.dir / "backups" / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": name, "source": source.describe(of_url)}))
    return folder / "manifest.json"


def drill_report(
    settings: Settings,
    backup: str,
    manifest: Path | str,
    status: str,
    finished: dt.datetime | None,
    *,
    started: dt.datetime | None = None,
    **extra: object,
) -> Path:
    """A drill report as the drill writes it (named by its write time), with ``extra`` fields."""
    moment = finished or started or T0
    folder = settings.artifacts.dir / "drills" / backup
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"drill_report_{moment:%Y%m%dT%H%M%S%f}Z.json"
    # The documented example (docs/FORMAT.md §5.2), a report every reader takes, made this one's.
    document = {
        **DOCUMENTED_REPORT,
        "backup": backup,
        "manifest": str(manifest),
        "started_at": utc_text(started or moment),
        "status": status,
        "reason": None if status == "PASS" else "restored rows differ",
        "finished_at": utc_text(finished) if finished else None,
        **extra,
    }
    path.write_text(json.dumps(document))
    return path


def judge(settings: Settings, target: str, *, days: float = 7.0, now: dt.datetime) -> object:
    return freshness.judge_drill_freshness(settings, target, max_age_days=days, now=now)


def test_no_drill_at_all_fails(settings: Settings, target: str) -> None:
    outcome = judge(settings, target, now=T0)
    assert outcome.status is Status.FAIL
    assert "no passing drill of a backup of sqlite " in outcome.detail and "drill reports found: none" in outcome.detail
    assert outcome.evidence["last_passing_drill"] is None and outcome.evidence["reports_found"] == 0


def test_a_drill_exactly_at_the_max_age_passes_and_one_millisecond_older_fails(settings: Settings, target: str) -> None:
    manifest = fake_backup(settings, "pre_deploy_a", target)
    drill_report(settings, "pre_deploy_a", manifest, "PASS", T0, rows_diff_index={"new": "field"})  # extra: tolerated
    at_limit = judge(settings, target, now=T0 + dt.timedelta(days=7))
    assert at_limit.status is Status.PASS, at_limit.detail
    assert at_limit.detail == "last passing drill, of backup pre_deploy_a, is 7 days old, max age 7 days"
    assert (
        at_limit.evidence["age_sec"] == 7 * DAY and at_limit.evidence["last_passing_drill"]["backup"] == "pre_deploy_a"
    )
    over = judge(settings, target, now=T0 + dt.timedelta(days=7, milliseconds=1))
    assert over.status is Status.FAIL and "older than OPS_DRILL_MAX_AGE_DAYS=7" in over.detail
    tiny = judge(settings, target, days=0.00001, now=T0 + dt.timedelta(seconds=1))  # 0.864 s
    assert tiny.status is Status.FAIL and tiny.detail.startswith(
        "last passing drill, of backup pre_deploy_a, is 1 s old, max age 0.9 s: older than OPS_DRILL_MAX_AGE_DAYS=1e-05"
    )


def test_drills_of_other_sources_failed_drills_and_unreadable_reports_do_not_count(
    settings: Settings, target: str, tmp_path: Path
) -> None:
    ours = fake_backup(settings, "ours", target)
    theirs = fake_backup(settings, "theirs", f"sqlite:///{tmp_path / 'other.db'}")
    drill_report(settings, "theirs", theirs, "PASS", T0 + dt.timedelta(hours=3))
    drill_report(settings, "ours", ours, "FAIL", T0 + dt.timedelta(hours=2))
    drill_report(
        settings,
        "gone",
        settings.artifacts.dir / "backups" / "gone" / "manifest.json",
        "PASS",
        T0 + dt.timedelta(hours=1),
    )
    broken = settings.artifacts.dir / "drills" / "ours" / "drill_report_20261128T053000000000Z.json"
    broken.write_text("{not json")
    outcome = judge(settings, target, now=T0 + dt.timedelta(hours=4))
    assert outcome.status is Status.FAIL, outcome.detail
    assert outcome.evidence["reports_found"] == 4
    why = {r["backup"]: r["why_not"] for r in outcome.evidence["reports_read"]}
    assert why["theirs"].startswith("not of the target: it is of the SQLite file ")
    assert why["ours"] == "the drill failed"
    assert why["gone"].startswith("the manifest it names is gone")
    assert why[None].startswith("unreadable: ")
    assert "theirs): not of the target" in outcome.detail and "ours): the drill failed" in outcome.detail

    drill_report(settings, "ours", ours, "PASS", T0)  # older than all of those: the one that counts
    older_pass = judge(settings, target, now=T0 + dt.timedelta(hours=4))
    assert older_pass.evidence["last_passing_drill"]["backup"] == "ours"
    assert older_pass.status is Status.WARN, "a newer drill of the target's backup failed: a person should read it"
    assert older_pass.detail.startswith(
        "last passing drill, of backup ours, is 4 h old, max age 7 days, but a newer drill failed: ours/drill_report_"
    )


def test_a_relative_manifest_path_is_found_by_backup_name(settings: Settings, target: str) -> None:
    fake_backup(settings, "pre_deploy_a", target)
    drill_report(settings, "pre_deploy_a", "elsewhere/backups/pre_deploy_a/manifest.json", "PASS", T0)
    outcome = judge(settings, target, now=T0 + dt.timedelta(hours=1))
    assert outcome.status is Status.PASS, outcome.detail
    assert outcome.evidence["last_passing_drill"]["finished_at"] == utc_text(T0)


# ---------------------------------------------------------------------------- no real target


def test_without_a_real_target_the_checks_skip_and_only_there(settings: Settings, tmp_path: Path) -> None:
    own = freshness.judge_backup_freshness(settings, None, budget_sec=DAY)
    assert own.status is Status.SKIP and own.detail.startswith(
        "no real target: the gate judges its own embedded service"
    )
    assert freshness.judge_drill_freshness(settings, None, max_age_days=7).status is Status.SKIP

    live_only = freshness.judge_drill_freshness(settings, None, base_url="https://aris3.example", max_age_days=7)
    assert live_only.status is Status.FAIL and "database is not named" in live_only.detail

    with tempfile.TemporaryDirectory(prefix=f"aris3nb-run-embedded-pid{os.getpid()}-") as folder:
        throwaway = f"sqlite:///{Path(folder) / 'aris3.db'}"
        outcome = freshness.judge_backup_freshness(settings, throwaway, base_url="http://127.0.0.1:1", budget_sec=DAY)
        assert outcome.status is Status.SKIP and "throwaway database of an embedded target" in outcome.detail
    look_alike = tmp_path / f"aris3nb-run-embedded-pid{os.getpid()}-x"  # the name, but not in a scratch folder
    look_alike.mkdir()
    memory = settings.artifacts.memory_dir
    assert freshness.throwaway_embedded_folder(f"sqlite:///{look_alike / 'aris3.db'}", memory) is None
    assert (
        freshness.judge_backup_freshness(settings, f"sqlite:///{look_alike / 'aris3.db'}", budget_sec=DAY).status
        is Status.FAIL
    )
    assert freshness.throwaway_embedded_folder("postgresql://u@127.0.0.1/aris3nb-run-embedded-pid1-x", memory) is None

    # In the memory folder (OPS_MEMORY_DIR), and only while that is the memory folder.
    in_memory = f"sqlite:///{look_alike / 'aris3.db'}"
    assert freshness.throwaway_embedded_folder(in_memory, tmp_path) == look_alike
    as_memory = settings.updated(artifacts={"memory_dir": tmp_path})
    outcome = freshness.judge_drill_freshness(as_memory, in_memory, max_age_days=7)
    assert outcome.status is Status.SKIP and "throwaway database of an embedded target" in outcome.detail
    assert (
        freshness.judge_drill_freshness(
            settings.updated(artifacts={"memory_dir": None}), in_memory, max_age_days=7
        ).status
        is Status.FAIL
    )


def test_the_runner_sweeps_the_folders_recognised_as_throwaway() -> None:
    """What the gate calls a throwaway target is what a later run deletes as one."""
    from aris3nb.evidence.runner import SCRATCH_PATTERN

    for purpose in ("run", "gate"):
        name = f"aris3nb-{purpose}-embedded-pid{os.getpid()}-ab12_cd"
        assert freshness.EMBEDDED_THROWAWAY_FOLDER.match(name) and SCRATCH_PATTERN.match(name)


# ---------------------------------------------------------------------------- settings and registry


def test_settings_defaults_overrides_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    assert (defaults.backup.rpo_budget_sec, defaults.backup.drill_max_age_days) == (86400.0, 7.0)
    monkeypatch.setenv("OPS_RPO_BUDGET_SEC", "3600")
    monkeypatch.setenv("OPS_DRILL_MAX_AGE_DAYS", "0.00001")
    assert (load_settings().backup.rpo_budget_sec, load_settings().backup.drill_max_age_days) == (3600.0, 0.00001)
    for name, value in (
        ("OPS_RPO_BUDGET_SEC", "0"),
        ("OPS_RPO_BUDGET_SEC", "inf"),
        ("OPS_DRILL_MAX_AGE_DAYS", "-1"),
        ("OPS_DRILL_MAX_AGE_DAYS", "367"),
        ("OPS_RPO_BUDGET_SEC", "soon"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(InvalidSettings, match=name):
            load_settings()
        monkeypatch.delenv(name)


def test_the_freshness_checks_are_registered_after_the_target_schema() -> None:
    names = GATE_CHECKS.names()
    assert names[names.index("target.schema") + 1 : names.index("target.schema") + 3] == [
        "backup.freshness",
        "drill.freshness",
    ]
    checks = {check.name: check for check in GATE_CHECKS}
    assert checks["backup.freshness"].why and checks["drill.freshness"].why


def test_a_drill_of_a_copy_elsewhere_is_not_read_as_the_catalogs_backup(
    settings: Settings, target: str, tmp_path: Path
) -> None:
    """A copy of backup ours, drilled from another folder (a forged copy, an experiment), fails:
    its report is filed under drills/ours/ too, and must name the copy, not backups/ours."""
    ours = fake_backup(settings, "ours", target)
    copy = tmp_path / "forge" / "ours"
    shutil.copytree(ours.parent, copy)
    drill_report(settings, "ours", ours, "PASS", T0)
    drill_report(settings, "ours", copy / "manifest.json", "FAIL", T0 + dt.timedelta(hours=1))
    outcome = judge(settings, target, now=T0 + dt.timedelta(hours=2))
    assert outcome.status is Status.WARN, outcome.detail
    assert outcome.detail.startswith("last passing drill, of backup ours, is 2 h old"), outcome.detail
    assert f"(ours, the copy at {copy}): the drill failed" in outcome.detail, outcome.detail


def test_a_backup_made_with_warnings_is_a_warning_not_a_pass(settings: Settings, tmp_path: Path) -> None:
    """Made without its export files (a warning recorded in its manifest), a backup is valid and
    in time, but its drill may fail: the gate says so (WARN), never a plain PASS."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    migrate.upgrade(url)
    made = create_backup(url, "short", settings=settings, exports_dir=tmp_path / "no-such-exports")
    assert made.warnings, "the exports folder is missing: recorded"
    outcome = freshness.judge_backup_freshness(settings, url, budget_sec=DAY)
    assert outcome.status is Status.WARN, outcome.detail
    assert outcome.detail.startswith("newest valid backup short is ")
    assert "but it was made with 1 warning: exports folder" in outcome.detail
    assert outcome.detail.endswith(": it may not hold all a restore needs")
    assert outcome.evidence["recorded_warnings"] == made.warnings


def test_a_manifest_that_cannot_be_read_again_is_a_warning_not_a_pass(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aris3nb.core.errors import ManifestUnreadable

    url = f"sqlite:///{tmp_path / 'target.db'}"
    migrate.upgrade(url)
    create_backup(url, "fine", settings=settings)

    def gone(path: Path) -> None:
        raise ManifestUnreadable(f"no manifest at {path}")

    monkeypatch.setattr(freshness, "read_manifest", gone)  # removed between the choice and this read
    outcome = freshness.judge_backup_freshness(settings, url, budget_sec=DAY)
    assert outcome.status is Status.WARN and "its manifest could not be read again: no manifest at" in outcome.detail


def test_a_drill_of_a_backup_that_no_longer_validates_warns(settings: Settings, target: str) -> None:
    """The drill proved a backup that backup.freshness now finds invalid: no plain PASS."""
    manifest = fake_backup(settings, "pre_deploy_a", target)
    drill_report(settings, "pre_deploy_a", manifest, "PASS", T0)
    later = T0 + dt.timedelta(hours=1)
    fine = freshness.judge_drill_freshness(settings, target, max_age_days=7, now=later, not_valid={"other": "x"})
    assert fine.status is Status.PASS, fine.detail
    damaged = freshness.judge_drill_freshness(
        settings, target, max_age_days=7, now=later, not_valid={"pre_deploy_a": "invalid, file 'x' has changed"}
    )
    assert damaged.status is Status.WARN
    assert "backup pre_deploy_a no longer validates (invalid, file 'x' has changed)" in damaged.detail
