"""Which backups to keep and which to remove: restic's ``forget`` policy, and what is never removed.

A policy keeps, for each target separately (safety backups apart from the others), the
``last`` newest backups, and the newest backup of each of the last ``hourly`` hours, ``daily``
days, ``weekly`` ISO weeks, ``monthly`` months and ``yearly`` years that hold one (-1: every
such period). When a rule still has periods left at the oldest backup, that backup is kept
too ("oldest daily backup"), as restic does, so that the history kept is as long as the rule
allows. Periods are counted in UTC, from each backup's ``created_at``. A backup kept by
several rules names them all.

Whatever the policy, a backup is never removed when it is the newest valid backup of its
target, the backup a protected run drilled (``drilled_by_go_runs``), or unreadable (its
manifest cannot say what it is: a person decides). Removal renames the folder out of the
backups folder first (``.forgotten-<name>-pid<pid>``), then deletes it, so that a backup is
either whole under its name or gone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.backup import profiles, source
from aris3nb.backup.catalog import is_safety
from aris3nb.backup.create import backups_dir
from aris3nb.backup.manifest import MANIFEST_NAME, validate_backup
from aris3nb.core.errors import Aris3nbError, BackupError, UsageError
from aris3nb.core.settings import Settings
from aris3nb.core.words import listed
from aris3nb.targets.profile import LoadedProfile

#: The rules in restic's order, with the period each buckets a backup's time into.
_PERIODS: dict[str, Callable[[dt.datetime], Any]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}
FORGOTTEN_PREFIX = ".forgotten-"


@dataclass(frozen=True)
class Policy:
    """How many backups each rule keeps: 0 none, -1 all."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self) -> None:
        for name, count in self.counts().items():
            if count < -1:
                raise UsageError(f"--keep-{name} {count}: give a count of 0 or more, or -1 for all")

    def counts(self) -> dict[str, int]:
        return {"last": self.last, **{name: getattr(self, name) for name in _PERIODS}}

    def empty(self) -> bool:
        return not any(self.counts().values())

    def describe(self) -> str:
        kept = [f"{'all' if n == -1 else n} {name}" for name, n in self.counts().items() if n]
        return ", ".join(kept) or "nothing"


@dataclass
class Entry:
    """One backup and what the policy decided for it."""

    name: str
    folder: Path
    created_at: str
    group: str
    keep: bool = False
    reasons: list[str] = field(default_factory=list)
    moment: dt.datetime | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "backup": self.name,
            "created_at": self.created_at,
            "target": self.group,
            "keep": self.keep,
            "reasons": self.reasons,
        }


def _parse(created_at: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def read_backups(folder: Path) -> list[Entry]:
    """Every backup folder under ``folder``, newest first, grouped by what it is a backup of."""
    entries = []
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            document = json.loads((child / MANIFEST_NAME).read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise TypeError("not a JSON object")
        except (OSError, ValueError, TypeError) as exc:
            entry = Entry(child.name, child, "?", "?", keep=True)
            entry.reasons.append(f"its manifest is unreadable ({type(exc).__name__}): left for a person to decide")
            entries.append(entry)
            continue
        recorded_source = document.get("source")
        recorded = recorded_source if isinstance(recorded_source, dict) else {}
        group = source.label(recorded) + (" (safety backups)" if is_safety(child.name, document) else "")
        created = str(document.get("created_at") or "?")
        entry = Entry(child.name, child, created, group, moment=_parse(created))
        if entry.moment is None:
            entry.keep = True
            entry.reasons.append(f"its created_at {created[:40]!r} is not a time: left for a person to decide")
        entries.append(entry)
    entries.sort(key=lambda e: (e.created_at, e.name), reverse=True)
    return entries


def apply_policy(entries: list[Entry], policy: Policy) -> None:
    """Mark, group by group, what ``policy`` keeps (restic's algorithm), newest first."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.moment is not None:
            groups.setdefault(entry.group, []).append(entry)
    for members in groups.values():
        members.sort(key=lambda e: (e.created_at, e.name), reverse=True)
        counts = policy.counts()
        last: dict[str, Any] = {}
        for number, entry in enumerate(members):
            oldest = number == len(members) - 1
            for rule, count in counts.items():
                if count == 0:
                    continue
                assert entry.moment is not None
                period = number if rule == "last" else _PERIODS[rule](entry.moment)
                if period != last.get(rule, object()) or oldest:
                    entry.keep = True
                    reason = "last backup" if rule == "last" else f"{rule} backup"
                    entry.reasons.append(f"oldest {reason}" if period == last.get(rule, object()) else reason)
                    last[rule] = period
                    if count > 0:
                        counts[rule] = count - 1


def protect_newest_valid(entries: list[Entry], profile: LoadedProfile | None) -> None:
    """Keep the newest valid backup of each target (checked newest first, until one validates)."""
    done: set[str] = set()
    for entry in entries:
        if entry.group in done or entry.moment is None or entry.group.endswith("(safety backups)"):
            continue
        try:
            validation = validate_backup(entry.folder / MANIFEST_NAME, profiles.schema_tables_for(profile))
            problems = validation.problems
        except Aris3nbError as exc:
            problems = [str(exc)]
        if not problems:
            done.add(entry.group)
            entry.keep = True
            entry.reasons.insert(0, "the newest valid backup of its target")
        else:  # said beside it: a newer backup passed over as invalid is no longer a surprise
            entry.reasons.append(f"INVALID: {listed(problems)}")


#: Where a run keeps its drill's reports (``<run>/drill/``), each naming the backup it drilled.
DRILL_REPORTS = "drill/drill_report_*.json"
DRILL_REPORT_PATH = re.compile(r"drill/drill_report_[0-9A-Za-z]+\.json")


def drilled_by_go_runs(runs_dir: Path, newest: int = 1) -> dict[str, str]:
    """The backups the ``newest`` runs that ended GO drilled: backup folder name -> run id.
    Each run's drill names it twice over: the manifest it was given (``parameters.manifest``;
    none when the drill picked the newest backup itself, as ``aris3nb run drill`` does), and
    its drill reports' ``backup`` (``DRILL_REPORTS``) — both are read. A drill report that
    cannot be read, or names no backup, is a ``BackupError``: the backup it drilled is unknown,
    so nothing may be removed on a guess."""
    runs = []
    for evidence in runs_dir.glob("*/evidence.json") if runs_dir.is_dir() else []:
        try:
            document = json.loads(evidence.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("decision") == "GO":
            runs.append((str(document.get("started_at") or ""), evidence.parent.name, document))
    drilled: dict[str, str] = {}
    for _started, run_id, document in sorted(runs, reverse=True)[:newest]:
        for phase in document.get("phases") or []:
            parameters = phase.get("parameters") if isinstance(phase, dict) else None
            manifest = parameters.get("manifest") if isinstance(parameters, dict) else None
            if phase.get("phase") == "drill" and isinstance(manifest, str) and manifest:
                path = Path(manifest)
                drilled[(path.parent if path.name == MANIFEST_NAME else path).name] = run_id
        for report in sorted((runs_dir / run_id).glob(DRILL_REPORTS)):
            try:
                backup = json.loads(report.read_text(encoding="utf-8")).get("backup")
            except (OSError, ValueError, AttributeError) as exc:
                backup = exc
            if not isinstance(backup, str) or not backup:  # never guessed: that backup must not go
                cause = f"unreadable ({backup})" if isinstance(backup, Exception) else "names no backup"
                raise BackupError(
                    f"cannot tell which backup the last GO run {run_id} drilled: its drill report "
                    f"{report.relative_to(runs_dir)} is {cause}; nothing was removed"
                )
            drilled[backup] = run_id
    return drilled


def protect_drilled(entries: Iterable[Entry], drilled: dict[str, str]) -> None:
    for entry in entries:
        if entry.name in drilled:
            entry.keep = True
            entry.reasons.insert(0, f"drilled by run {drilled[entry.name]}, the last GO run")


@dataclass
class Forgotten:
    """What ``forget`` decided, and what it removed (nothing in a dry run)."""

    policy: Policy
    entries: list[Entry]
    dry_run: bool
    removed: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Entry]:
        return [e for e in self.entries if e.keep]

    @property
    def to_remove(self) -> list[Entry]:
        return [e for e in self.entries if not e.keep]

    def as_evidence(self) -> dict[str, Any]:
        return {
            "policy": self.policy.counts(),
            "dry_run": self.dry_run,
            "backups": [e.as_evidence() for e in self.entries],
            "removed": self.removed,
        }


def forget(
    settings: Settings,
    policy: Policy,
    *,
    dry_run: bool = False,
    drilled: dict[str, str] | None = None,
    profile: LoadedProfile | None = None,
    only: Callable[[Entry], bool] | None = None,
    group_as: str | None = None,
) -> Forgotten:
    """Apply ``policy`` to the backups of ``settings``' artifacts folder and remove what it
    does not keep (unless ``dry_run``). ``only`` limits it to some backups (the others are
    neither shown nor touched); ``group_as`` judges them as one group (the embedded default's
    disposable databases, each run's its own). A policy that keeps nothing is refused."""
    if policy.empty():
        raise UsageError("no policy given: name at least one --keep-* count (nothing was removed)")
    folder = backups_dir(settings)
    entries = [e for e in read_backups(folder) if only is None or only(e)]
    for entry in entries if group_as else []:
        entry.group = str(group_as)
    apply_policy(entries, policy)
    protect_drilled(entries, drilled or {})
    protect_newest_valid(entries, profile)
    result = Forgotten(policy, entries, dry_run)
    if dry_run:
        return result
    for entry in result.to_remove:
        parking = folder / f"{FORGOTTEN_PREFIX}{entry.name}-pid{os.getpid()}"
        entry.folder.rename(parking)  # out from under its name first: whole, or gone
        shutil.rmtree(parking)
        result.removed.append(entry.name)
    for leftover in folder.glob(f"{FORGOTTEN_PREFIX}*"):  # a removal killed midway, earlier
        shutil.rmtree(leftover, ignore_errors=True)
    return result
