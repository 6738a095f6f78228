"""Phase 3b, the restore drill: the backup proven by restoring it into a disposable database.
In a run it drills the backup the deploy phase made; alone, the newest backup made from the
target, whatever its state (an invalid one FAILs the drill, it is never passed over).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.backup import source
from aris3nb.backup.catalog import Choice, choose_backup
from aris3nb.backup.drill import read_drill_report, restore_verify
from aris3nb.backup.manifest import MANIFEST_NAME, read_manifest
from aris3nb.core.checks import CheckResult, Status
from aris3nb.core.errors import DrillFailed, ManifestUnreadable, SourceMismatch, UsageError
from aris3nb.core.settings import Settings
from aris3nb.phases.base import Phase, TriggerRule
from aris3nb.targets.profile import LoadedProfile

PHASE = Phase(
    name="drill",
    notebook="04-drill.ipynb",
    title="Restore drill: the backup proven by restoring it",
    parameters=("manifest", "database_url", "profile"),
    requires="deploy",
    triggers=(TriggerRule("drill_fail", on_verdict_fail=True),),
)


@dataclass(frozen=True)
class DrillOutcome:
    """A finished drill: its report (passed or failed), where it was written, and how its
    backup was chosen (None: it was named)."""

    report: dict[str, Any]
    path: Path
    choice: Choice | None = None

    @property
    def selection(self) -> str:
        """Which backup was drilled and why, for people."""
        if self.choice is None:
            return f"drilled {self.report.get('backup')}: the backup named for this drill"
        passed_over = "".join(f"\n  passed over {c}" for c in self.choice.passed_over)
        return f"drilled {self.report.get('backup')}: {self.choice.reason}{passed_over}"

    @property
    def passed(self) -> bool:
        return self.report.get("status") == "PASS"

    @property
    def results(self) -> list[CheckResult]:
        """The drill's checks, then its warnings (each a WARN: what could not be checked as it
        should); a drill stopped before a check could fail (a timeout) adds one saying why."""
        results = [
            CheckResult(c["name"], Status(c["status"]), c["detail"], c["duration_sec"], c.get("evidence") or {})
            for c in self.report.get("checks") or []
        ]
        results += [
            CheckResult(str(w.get("name") or "drill"), Status.WARN, str(w.get("detail")), 0.0)
            for w in self.report.get("warnings") or []
            if isinstance(w, dict)
        ]
        if not self.passed and not any(r.status is Status.FAIL for r in results):
            results.append(
                CheckResult(
                    "drill",
                    Status.FAIL,
                    str(self.report.get("reason")),
                    float((self.report.get("rto_sec") or {}).get("total") or 0),
                )
            )
        return results


def drill(
    manifest_path: Path | str | None,
    settings: Settings,
    *,
    database_url: str | None = None,
    profile: LoadedProfile | None = None,
) -> DrillOutcome:
    """Run the restore drill on ``manifest_path`` and return its report, also when it failed
    (the report says why); a drill that could not start at all (disabled, no backup,
    unreadable manifest) raises.

    ``database_url`` (default DATABASE_URL) is the target: without a manifest its newest
    backup is drilled, and a PostgreSQL drill creates its scratch database on its server.
    Without a manifest, the newest backup is drilled whatever its state:
    an invalid newest backup FAILs the drill naming its problems, it is never passed over
    for an older one. ``NoBackup`` lists every backup found and why none was of the target.
    A manifest named beside a target must be a backup of that target (``SourceMismatch``:
    drilling another database's backup proves nothing about this one).
    ``profile``: the target profile (None: the reference; see ``aris3nb.backup.drill``).
    """
    choice = None
    database_url = database_url or settings.target.database_url
    if manifest_path is None:
        if not database_url:
            raise UsageError(
                "no backup named to drill, and no target database whose newest backup to drill: "
                "give the manifest, or the target's database URL"
            )
        choice = choose_backup(settings, database_url, require_valid=False, purpose="drill", profile=profile)
        manifest_path = choice.manifest
    elif database_url:
        _of_the_target(Path(str(manifest_path)), database_url)
    try:
        given = Path(str(manifest_path)).absolute()
        _, path = restore_verify(
            given,
            settings=settings,
            server_url=database_url,
            profile=profile,
            # A run on a bucket drills its staging copy: the report names the backup on the bucket.
            recorded_as=settings.artifacts.show(given) if settings.artifacts.shown_as else None,
        )
    except DrillFailed as exc:  # a local drill: its report is a local file
        path = Path(exc.report_path)
    return DrillOutcome(read_drill_report(path), path, choice)


def _of_the_target(manifest_path: Path, database_url: str) -> None:
    """Refuse a named backup that was not made from the target ``database_url``."""
    try:
        manifest = read_manifest(manifest_path / MANIFEST_NAME if manifest_path.is_dir() else manifest_path)
    except ManifestUnreadable:
        return  # the drill reports an unreadable manifest itself
    live = source.describe(database_url)
    why = source.mismatch(manifest.document.get("source") or {}, live)
    if why is not None:
        raise SourceMismatch(
            f"backup {manifest.name} was not made from the target {source.label(live)}: {why}; a drill of the "
            "target drills one of its own backups (no manifest: its newest)"
        )
