"""Freshness of the target's recovery evidence: the gate's ``backup.freshness`` and
``drill.freshness`` checks.

A release may go out only if the target could be recovered from what exists *now*: its
newest valid backup is younger than the RPO budget (``OPS_RPO_BUDGET_SEC``), and a backup of
it passed a restore drill within ``OPS_DRILL_MAX_AGE_DAYS``. Which backups count is the
catalog's rule (``aris3nb.backup.catalog``): the target's own, never a safety backup, the
newest that *validates* (a newer invalid one is passed over, and named). A drill counts when
its report says PASS and the manifest it names records the target as its ``source``.

The rule where the gate has no real target (``unjudgeable``): the checks SKIP, saying why,
only when the target database is a throwaway aris3nb made itself and deletes afterwards:

- no target database (``--database-url``, ``DATABASE_URL``) and no ``--base-url``: the gate
  judges the embedded service it starts over a temporary database made for this gate run;
- the target database is a throwaway embedded target (``aris3nb run``'s embedded default):
  a SQLite file directly in a folder ``aris3nb-run-embedded-pid<N>-…`` (or ``-gate-``) of the
  system temporary folder or the memory folder (``aris3nb.core.scratch``), which aris3nb deletes
  when the run ends (and sweeps if the run was killed). Its first backup is the run's own
  deploy backup, taken after this gate, and drilled by the run's drill phase.

Everywhere else the target is real, and a missing or stale backup or drill is a FAIL, as is
a live target (``--base-url``) whose database is not named: never a PASS for work not done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.backup import source
from aris3nb.backup.catalog import Candidate, choose_backup
from aris3nb.backup.create import backups_dir
from aris3nb.backup.drill import drills_dir, read_drill_report
from aris3nb.backup.manifest import MANIFEST_NAME, read_manifest
from aris3nb.core import words
from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, Status, failed, passed, skipped, warned
from aris3nb.core.db import engine_name, sqlite_path
from aris3nb.core.errors import Aris3nbError, NoBackup
from aris3nb.core.redact import redact_url
from aris3nb.core.scratch import scratch_roots
from aris3nb.core.settings import Settings
from aris3nb.targets.profile import LoadedProfile

#: The throwaway folders ``aris3nb.targets.embedded.embedded_target`` makes for ``aris3nb run``
#: and the gate (spelled out: the gate does not import the reference double; a test keeps them in step).
EMBEDDED_THROWAWAY_FOLDER = re.compile(r"^aris3nb-(?:run|gate)-embedded-pid\d+-")
#: A backup or drill dated further ahead than this is not judged fresh: the clocks disagree.
CLOCK_SKEW_SEC = 300.0
SECONDS_PER_DAY = 86400.0


def age_text(seconds: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``, ``2.1 days``: an age or a budget for people."""
    for unit, size, below in (("s", 1.0, 120.0), ("min", 60.0, 7200.0), ("h", 3600.0, 2 * SECONDS_PER_DAY)):
        if seconds < below:
            return f"{_number(seconds / size)} {unit}"
    return f"{_number(seconds / SECONDS_PER_DAY)} days"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def parse_utc(text: Any) -> dt.datetime | None:
    """An ISO 8601 time with a zone (``…Z``) as an aware datetime; None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def throwaway_embedded_folder(database_url: str, memory_dir: Path | None) -> Path | None:
    """The folder of the throwaway embedded target whose database ``database_url`` names
    (``aris3nb run``'s embedded default, in the temporary folder or the memory folder
    ``memory_dir``), or None for any other database."""
    try:
        if engine_name(database_url) != "sqlite":
            return None
        folder = sqlite_path(database_url).absolute().parent
    except (Aris3nbError, ValueError, OSError):
        return None
    try:
        in_scratch = folder.resolve().parent in {root.resolve() for root in scratch_roots(memory_dir)}
    except OSError:
        return None
    return folder if in_scratch and EMBEDDED_THROWAWAY_FOLDER.match(folder.name) else None


def unjudgeable(database_url: str | None, base_url: str | None, memory_dir: Path | None) -> Outcome | None:
    """The outcome of both checks when there is no database whose backups can be judged
    (SKIP: no real target; FAIL: a real target whose database is not named), else None."""
    if not database_url:
        if base_url:
            return failed(
                "the live target's database is not named (--database-url or DATABASE_URL): "
                "its backups and drills cannot be judged",
                target=None,
            )
        return skipped(
            "no real target: the gate judges its own embedded service over a temporary database made for "
            "this gate run, which has no backups to judge (name a target with --database-url)",
            target=None,
        )
    folder = throwaway_embedded_folder(database_url, memory_dir)
    if folder is not None:
        return skipped(
            f"no real target: {redact_url(database_url)} is the throwaway database of an embedded target "
            "(`aris3nb run`'s embedded default, deleted when the run ends); its first backup is the run's deploy "
            "backup, taken after this gate, and its drill phase drills it",
            target=redact_url(database_url),
        )
    return None


# ---------------------------------------------------------------------------- backups


def judge_backup_age(
    chosen: Candidate, passed_over: Iterable[Candidate], *, budget_sec: float, now: dt.datetime
) -> Outcome:
    """PASS when the newest valid backup ``chosen`` is at most ``budget_sec`` old at ``now``;
    WARN when, in time, a newer backup of the target was passed over (invalid, unreadable)."""
    newer = [c for c in passed_over if c.created_at > chosen.created_at]
    evidence: dict[str, Any] = {
        "rpo_budget_sec": budget_sec,
        "newest_valid_backup": chosen.name,
        "manifest": str(chosen.manifest),
        "created_at": chosen.created_at,
        "age_sec": None,
        "newer_passed_over": [{"backup": c.name, "created_at": c.created_at, "why": c.rejected} for c in newer],
    }
    skipped_newer = f"; newer backups passed over: {', '.join(c.name for c in newer)}" if newer else ""
    created = parse_utc(chosen.created_at)
    if created is None:
        return failed(
            f"newest valid backup {chosen.name} has no readable created_at ({chosen.created_at!r}): "
            f"its age cannot be judged{skipped_newer}",
            **evidence,
        )
    age = (now - created).total_seconds()
    evidence["age_sec"] = round(age, 3)
    if age < -CLOCK_SKEW_SEC:
        return failed(
            f"newest valid backup {chosen.name} is dated {chosen.created_at}, {age_text(-age)} in the "
            "future: its age cannot be judged (check the clocks)" + skipped_newer,
            **evidence,
        )
    figures = f"newest valid backup {chosen.name} is {age_text(max(age, 0.0))} old, budget {age_text(budget_sec)}"
    if age > budget_sec:
        return failed(
            f"{figures}: older than the RPO budget (OPS_RPO_BUDGET_SEC={budget_sec:g}); take a backup "
            "(aris3nb backup create)" + skipped_newer,
            **evidence,
        )
    if any(not c.elsewhere for c in newer):  # in time, but a newer backup of the target could not be used
        return warned(figures + skipped_newer, **evidence)
    return passed(figures, **evidence)


def judge_backup_freshness(
    settings: Settings,
    database_url: str | None,
    *,
    base_url: str | None = None,
    budget_sec: float,
    now: dt.datetime | None = None,
    profile: LoadedProfile | None = None,
) -> Outcome:
    """The newest valid backup of the database at ``database_url`` within the RPO budget
    (``unjudgeable``'s outcome when there is no such database), validated against the table
    set of ``profile``'s target (None: the reference)."""
    unjudged = unjudgeable(database_url, base_url, settings.artifacts.memory_dir)
    if unjudged is not None:
        return unjudged
    assert database_url  # unjudgeable answers when it is not given
    try:
        choice = choose_backup(
            settings, database_url, require_valid=True, purpose="judge against the RPO budget", profile=profile
        )
    except NoBackup as exc:  # its message lists every backup found and why each was passed over
        return failed(
            f"{settings.artifacts.shown_text(str(exc))}; take one (aris3nb backup create)",
            rpo_budget_sec=budget_sec,
            newest_valid_backup=None,
            target=redact_url(database_url),
        )
    chosen = next(c for c in choice.considered if c.manifest == choice.manifest)
    outcome = judge_backup_age(chosen, choice.passed_over, budget_sec=budget_sec, now=now or dt.datetime.now(dt.UTC))
    # The target's own backups that do not validate now, by name (drill.freshness reads them).
    not_valid = {c.name: str(c.rejected) for c in choice.passed_over if not c.elsewhere and c.rejected}
    outcome.evidence.update(target=choice.target, choice=choice.as_evidence(), not_valid=not_valid)
    recorded = _recorded_warnings(chosen.manifest)
    if recorded and outcome.status is Status.PASS:  # valid, in time, but made short of something
        outcome = warned(
            f"{outcome.detail}; but it was made with {words.listed(recorded, 'warning')}: it may not hold all a "
            "restore needs",
            **{**outcome.evidence, "recorded_warnings": recorded},
        )
    return outcome


def _recorded_warnings(manifest: Path) -> list[str]:
    """The warnings ``backup create`` recorded in a manifest (an exports folder missing...);
    a manifest that can no longer be read (it was validated a moment ago) is one too, never
    silence that would leave a PASS."""
    try:
        recorded = read_manifest(manifest).document.get("warnings")
    except Aris3nbError as exc:
        return [f"its manifest could not be read again: {exc}"]
    return [str(w) for w in recorded] if isinstance(recorded, list) else []


# ---------------------------------------------------------------------------- drills


@dataclass(frozen=True)
class DrillSeen:
    """One drill report found, whether it is of a backup of the target, and why it does not
    count (None: it does)."""

    report: str  # relative to the drills folder
    backup: str | None
    status: str | None
    finished_at: str | None
    of_target: bool
    why_not: str | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "backup": self.backup,
            "status": self.status,
            "finished_at": self.finished_at,
            "of_target": self.of_target,
            "counted": self.why_not is None,
            "why_not": self.why_not,
        }

    def __str__(self) -> str:
        return f"{self.report} ({self.backup or '?'}): {self.why_not or 'counted'}"


def _drilled_manifest(document: dict[str, Any], settings: Settings) -> Path | None:
    """The manifest a drill report names: its path as recorded when absolute, else the
    backup of that name in the backups folder (the drill may have run from another folder)."""
    recorded = document.get("manifest")
    backup = document.get("backup")
    candidates: list[Path] = []
    if isinstance(recorded, str) and recorded and Path(recorded).is_absolute():
        candidates.append(Path(recorded))
    if isinstance(backup, str) and backup and Path(backup).name == backup:
        candidates.append(backups_dir(settings) / backup)
    if isinstance(recorded, str) and recorded and not Path(recorded).is_absolute():
        candidates.append(Path(recorded))
    for candidate in candidates:
        path = candidate / MANIFEST_NAME if candidate.is_dir() else candidate
        if path.is_file():
            return path
    return None


def _not_of_target(document: dict[str, Any], settings: Settings, live: dict[str, Any]) -> str | None:
    """Why the backup a drill report names is not known to be of the target, or None when it is."""
    manifest = _drilled_manifest(document, settings)
    if manifest is None:
        return "the manifest it names is gone: which database it drilled cannot be told"
    try:
        recorded = read_manifest(manifest).document.get("source")
    except Aris3nbError as exc:
        return f"the manifest it names is unreadable: {exc}"
    mismatch = source.mismatch(recorded if isinstance(recorded, dict) else {}, live)
    return f"not of the target: {mismatch}" if mismatch else None


def _seen(path: Path, folder: Path, settings: Settings, live: dict[str, Any]) -> DrillSeen:
    name = str(path.relative_to(folder))
    try:
        document = read_drill_report(path)  # fields beyond those read here are tolerated
    except Aris3nbError as exc:
        return DrillSeen(name, None, None, None, of_target=False, why_not=f"unreadable: {exc}")
    moment = document.get("finished_at") or document.get("started_at")
    moment = moment if isinstance(moment, str) else None
    not_ours = _not_of_target(document, settings, live)
    why = not_ours
    if why is None and document["status"] != "PASS":
        why = "the drill failed"
    if why is None and parse_utc(moment) is None:
        why = "it records no readable finished_at or started_at"
    return DrillSeen(name, _drilled_label(document, settings), document["status"], moment, not_ours is None, why)


def _drilled_label(document: dict[str, Any], settings: Settings) -> str:
    """The backup a drill report is of, as people know it: its name when it is the backup of
    that name in the backups folder, else the name and where that copy was (a drill of a copy
    elsewhere is filed under the same name, and must not read as the catalog's backup)."""
    backup = str(document.get("backup") or "?")
    recorded = document.get("manifest")
    if not isinstance(recorded, str) or not Path(recorded).is_absolute():
        return backup  # a relative path was the drill's own folder's: read as the backup of that name
    path = Path(recorded)
    path = path if path.suffix == ".json" else path / MANIFEST_NAME
    try:
        ours = path.resolve() == (backups_dir(settings) / backup / MANIFEST_NAME).resolve()
    except (OSError, RuntimeError):
        ours = False
    return backup if ours else f"{backup}, the copy at {path.parent}"


def drills_seen(settings: Settings, live: dict[str, Any]) -> tuple[list[DrillSeen], int]:
    """The drill reports under the drills folder, newest first, read until the first that
    counts for the target ``live`` (``source.describe``): a PASS of one of its backups; and
    how many reports there are."""
    folder = drills_dir(settings)
    paths = (
        sorted(folder.glob("*/drill_report_*.json"), key=lambda p: (p.name, p.parent.name), reverse=True)
        if folder.is_dir()
        else []
    )
    seen: list[DrillSeen] = []
    for path in paths:  # named by their UTC write time: newest first
        seen.append(_seen(path, folder, settings, live))
        if seen[-1].why_not is None:
            break
    return seen, len(paths)


def judge_drill_age(
    seen: list[DrillSeen],
    *,
    max_age_days: float,
    now: dt.datetime,
    target: str,
    folder: Path,
    total: int | None = None,
    not_valid: Mapping[str, str] | None = None,
) -> Outcome:
    """PASS when the newest drill that counts in ``seen`` finished at most ``max_age_days``
    before ``now``; WARN when it did, but a newer drill of one of the target's backups failed,
    or the backup it drilled is among ``not_valid`` (``{name: why}``: it no longer validates)."""
    total = len(seen) if total is None else total
    max_age_sec = max_age_days * SECONDS_PER_DAY
    counted = [(moment, s) for s in seen if s.why_not is None and (moment := parse_utc(s.finished_at)) is not None]
    evidence: dict[str, Any] = {
        "max_age_days": max_age_days,
        "max_age_sec": round(max_age_sec, 3),
        "target": target,
        "last_passing_drill": None,
        "age_sec": None,
        "reports_found": total,
        "reports_read": [s.as_evidence() for s in seen[:SAMPLE_LIMIT]],
    }
    if not counted:
        shown = "; ".join(str(s) for s in seen[:3]) or "none"
        more = f"; and {total - 3} more" if total > 3 else ""
        return failed(
            f"no passing drill of a backup of {target} under {folder}; drill reports found: {shown}{more}; "
            "drill a backup (aris3nb backup restore-verify <manifest.json>, OPS_ENABLE_BACKUP_DRILL=true)",
            **evidence,
        )
    finished, last = max(counted, key=lambda pair: pair[0])
    age = (now - finished).total_seconds()
    evidence.update(
        last_passing_drill={"report": last.report, "backup": last.backup, "finished_at": last.finished_at},
        age_sec=round(age, 3),
    )
    if age < -CLOCK_SKEW_SEC:
        return failed(
            f"last passing drill, of backup {last.backup}, is dated {last.finished_at}, {age_text(-age)} in "
            "the future: its age cannot be judged (check the clocks)",
            **evidence,
        )
    figures = (
        f"last passing drill, of backup {last.backup}, is {age_text(max(age, 0.0))} old, "
        f"max age {age_text(max_age_sec)}"
    )
    if age > max_age_sec:
        return failed(
            f"{figures}: older than OPS_DRILL_MAX_AGE_DAYS={max_age_days:g}; drill a recent backup "
            "(aris3nb backup restore-verify <manifest.json>)",
            **evidence,
        )
    failed_since = [
        s
        for s in seen
        if s.of_target and s.status == "FAIL" and (moment := parse_utc(s.finished_at)) is not None and moment > finished
    ]
    if failed_since:
        return warned(f"{figures}, but a newer drill failed: {failed_since[0]}", **evidence)
    why_not_valid = (not_valid or {}).get(last.backup or "")
    if why_not_valid is not None:
        return warned(
            f"{figures}, but backup {last.backup} no longer validates ({why_not_valid}): the "
            "drill proved a backup that could not be restored now; drill a valid one",
            **evidence,
        )
    return passed(figures, **evidence)


def judge_drill_freshness(
    settings: Settings,
    database_url: str | None,
    *,
    base_url: str | None = None,
    max_age_days: float,
    now: dt.datetime | None = None,
    not_valid: Mapping[str, str] | None = None,
) -> Outcome:
    """The last passing drill of a backup of the database at ``database_url`` within the max
    age (``unjudgeable``'s outcome when there is no such database); ``not_valid``: the
    target's backups known not to validate now (``judge_backup_freshness``'s evidence)."""
    unjudged = unjudgeable(database_url, base_url, settings.artifacts.memory_dir)
    if unjudged is not None:
        return unjudged
    assert database_url  # unjudgeable answers when it is not given
    live = source.describe(database_url)
    seen, total = drills_seen(settings, live)
    outcome = judge_drill_age(
        seen,
        max_age_days=max_age_days,
        now=now or dt.datetime.now(dt.UTC),
        target=source.label(live),
        folder=drills_dir(settings),
        total=total,
        not_valid=not_valid,
    )
    return dataclasses.replace(outcome, detail=settings.artifacts.shown_text(outcome.detail))  # on a bucket
