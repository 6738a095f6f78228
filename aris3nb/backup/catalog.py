"""The backups in an artifacts folder, and the choice of one for a target.

Restores, the rollback and a drill that is not handed a manifest all choose here, by one
rule: only a backup whose recorded source is the target (``source.mismatch``), never a
safety backup (those are restored only by name), newest first. The choice says which
backup it took and why, and every backup it passed over with the reason, so an operator
sees before anything is restored what was picked and what was not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.backup import profiles, source
from aris3nb.backup.create import backups_dir
from aris3nb.backup.manifest import MANIFEST_NAME, validate_backup
from aris3nb.core.errors import Aris3nbError, NoBackup
from aris3nb.core.settings import Settings
from aris3nb.core.words import listed
from aris3nb.targets.profile import LoadedProfile

SAFETY_PREFIX = "safety_"


def is_safety(name: str, document: dict[str, Any]) -> bool:
    return document.get("purpose") == "safety" or name.startswith(SAFETY_PREFIX)


@dataclass
class Candidate:
    """One backup found, and why it was not chosen (None: it was, or could be)."""

    name: str
    manifest: Path
    created_at: str
    rejected: str | None = None
    #: Not a backup to take for the target at all (another database's, or a safety backup),
    #: as opposed to the target's own that could not be used (invalid, unreadable).
    elsewhere: bool = False

    def __str__(self) -> str:
        return f"{self.name} ({self.created_at}): {self.rejected or 'chosen'}"


@dataclass
class Choice:
    """The backup chosen for a target, why, and every backup passed over."""

    target: str
    manifest: Path | None
    reason: str
    considered: list[Candidate] = field(default_factory=list)

    @property
    def passed_over(self) -> list[Candidate]:
        return [c for c in self.considered if c.rejected]

    def as_evidence(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "manifest": str(self.manifest) if self.manifest else None,
            "reason": self.reason,
            "passed_over": [
                {"backup": c.name, "created_at": c.created_at, "why": c.rejected} for c in self.passed_over
            ],
        }


def _read(manifest: Path) -> dict[str, Any]:
    document = json.loads(manifest.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError("not a JSON object")
    return document


def _problems(problems: list[str]) -> str:
    return f"invalid, {listed(problems)}"


def choose_backup(
    settings: Settings, target_url: str, *, require_valid: bool, purpose: str, profile: LoadedProfile | None = None
) -> Choice:
    """The newest backup of the database at ``target_url`` (safety backups excluded).

    With ``require_valid`` the newest that validates (the ones passed over say why);
    without, the newest whatever its state, for a drill to judge and name its problems.
    Raises ``NoBackup`` listing every backup found and why each was rejected. ``profile``:
    the target profile the backups are validated with (None: the reference).
    """
    live = source.describe(target_url)
    target = source.label(live)
    folder = backups_dir(settings)
    considered: list[Candidate] = []
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        name, manifest = child.name, child / MANIFEST_NAME
        if name.startswith(".") or not child.is_dir():
            continue  # a backup being made (.tmp-*) or being forgotten, or not a folder
        if not manifest.is_file():
            considered.append(
                Candidate(name, manifest, "?", "no manifest.json: not a backup (incomplete, or not aris3nb's)")
            )
            continue
        try:
            document = _read(manifest)
        except (OSError, ValueError, TypeError) as exc:
            considered.append(Candidate(name, manifest, "?", f"its manifest is unreadable ({type(exc).__name__})"))
            continue
        candidate = Candidate(name, manifest, str(document.get("created_at") or "?"))
        recorded_source = document.get("source")
        recorded = recorded_source if isinstance(recorded_source, dict) else {}
        if is_safety(name, document):
            candidate.rejected, candidate.elsewhere = "a safety backup (restored only when named)", True
        elif (why := source.mismatch(recorded, live)) is not None:
            candidate.rejected, candidate.elsewhere = f"not of the target: {why}", True
        considered.append(candidate)
    considered.sort(key=lambda c: (c.created_at, c.name), reverse=True)
    for candidate in considered:
        if candidate.rejected:
            continue
        if require_valid:
            try:
                validation = validate_backup(candidate.manifest, profiles.schema_tables_for(profile))
            except Aris3nbError as exc:
                candidate.rejected = f"unreadable: {exc}"
                continue
            if not validation.ok:
                candidate.rejected = _problems(validation.problems)
                continue
        newer = [c for c in considered if c.rejected and c.created_at > candidate.created_at]
        reason = f"the newest {'valid ' if require_valid else ''}backup of {target}, created {candidate.created_at}" + (
            f"; {len(newer)} newer one{'s' if len(newer) != 1 else ''} passed over" if newer else ""
        )
        return Choice(target, candidate.manifest, reason, considered)
    found = "; ".join(str(c) for c in considered) or "none"
    raise NoBackup(
        f"no {'valid ' if require_valid else ''}backup of {target} under {folder} to {purpose}; backups found: {found}"
    )
