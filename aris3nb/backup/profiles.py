"""What a target profile changes in backups, drills and restores.

``None`` (or the built-in ``reference`` profile) is the bundled reference double: its tables
come from aris3nb's own migrations (``create.schema_tables_at``) and nothing here applies.
Any other profile brings:

- the tables its schema has at a revision, from the target's OWN migrations
  (``targets.code.target_code``: a throwaway SQLite file upgraded to that revision in the
  target's interpreter, its tables listed; cached per profile file and revision). Where that
  cannot be done — a revision its history does not know, migrations that fail on SQLite, an
  interpreter that cannot run — the lookup answers ``UnknownSchema`` with the reason: a warning
  naming the revision, and the live schema recorded in the manifest is compared instead;
- ``backup.exclude_tables``: tables whose rows are left out of backups (their schema stays)
  and out of the comparison with the schema;
- ``backup.exports_dir`` / ``backup.exports_dir_env``: the export files backed up;
- ``rpo.sources``: where the newest business activity is recorded (the drill's RPO);
- ``[integrity]``: the checks a drill runs on the restored copy.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import sqlalchemy as sa

from aris3nb.backup.manifest import SchemaTables, UnknownSchema
from aris3nb.core.db import create_engine
from aris3nb.core.errors import Aris3nbError
from aris3nb.targets.profile import REFERENCE, LoadedProfile

#: The tables at a revision, per (profile file digest or name, target root, revision): known
#: revisions only (a failure may be transient and is not kept).
_TABLES: dict[tuple[str, str, str], frozenset[str] | UnknownSchema] = {}
_TABLES_LOCK = threading.Lock()


def is_reference(profile: LoadedProfile | None) -> bool:
    """Whether ``profile`` is the bundled reference double's (no profile, or the built-in one)."""
    return profile is None or profile.is_reference


def profile_label(profile: LoadedProfile | None) -> str:
    return "reference" if profile is None else profile.profile.name


def profile_evidence(profile: LoadedProfile | None) -> dict[str, object]:
    """The profile as reports and manifests name it (``LoadedProfile.as_evidence``)."""
    return (profile or LoadedProfile(REFERENCE, None, None)).as_evidence()


def excluded_tables(profile: LoadedProfile | None) -> frozenset[str]:
    """``backup.exclude_tables``: tables whose rows no backup holds."""
    return frozenset() if profile is None else frozenset(profile.profile.backup.exclude_tables)


def redacted_columns(profile: LoadedProfile | None) -> frozenset[str]:
    """``redact.columns``: the ``table.column`` a row shown in evidence masks (besides the
    columns named like a secret, which every target's rows mask)."""
    return frozenset() if profile is None else frozenset(profile.profile.redact.columns)


def configured_exports_dir(profile: LoadedProfile | None) -> Path | None:
    """The exports folder the profile names: the variable ``backup.exports_dir_env`` when it
    is set, else ``backup.exports_dir`` (relative to the target's root); None when neither."""
    return None if profile is None else profile.exports_dir()


def rpo_sources(profile: LoadedProfile) -> tuple[tuple[str, str], ...]:
    return tuple((source.table, source.column) for source in profile.profile.rpo.sources)


def schema_tables_for(profile: LoadedProfile | None) -> SchemaTables:
    """The lookup of the tables the target's schema has at a revision (see the module)."""
    from aris3nb.backup import create
    from aris3nb.targets.code import ReferenceCode, target_code

    if is_reference(profile):
        return lambda revision: create.schema_tables_at(revision)
    assert profile is not None
    try:
        code = target_code(profile)
    except Aris3nbError as exc:
        reason = str(exc)
        return lambda revision: UnknownSchema(
            f"the tables of revision {revision!r} cannot be derived from the target's migrations: {reason}"
        )
    if isinstance(code, ReferenceCode):  # a profile without its own interpreter: aris3nb's migrations

        def aris3nb_migrations(revision: str | None) -> frozenset[str] | UnknownSchema:
            found = create.schema_tables_at(revision)
            return (
                found
                if found is not None
                else UnknownSchema(
                    f"alembic revision {str(revision)[:120]!r} is unknown "
                    f"to the migrations of profile {profile.profile.name}"
                )
            )

        return aris3nb_migrations
    return lambda revision: _target_tables_at(profile, code, revision)


def _target_tables_at(profile: LoadedProfile, code: object, revision: str | None) -> frozenset[str] | UnknownSchema:
    name = profile.profile.name
    if revision is None:
        return UnknownSchema(
            f"the database records no alembic revision: the tables the schema of profile {name} "
            "must have cannot be derived from its migrations"
        )
    key = (profile.sha256 or name, str(profile.root), revision)
    with _TABLES_LOCK:
        if key in _TABLES:
            return _TABLES[key]
    try:
        known = {rev.revision for rev in code.history()}  # type: ignore[attr-defined]
    except Aris3nbError as exc:
        return UnknownSchema(f"the tables of revision {revision[:120]!r} cannot be derived: {exc}")
    if revision not in known:
        found: frozenset[str] | UnknownSchema = UnknownSchema(
            f"alembic revision {revision[:120]!r} is unknown to the migrations of profile {name}"
        )
    else:
        with tempfile.TemporaryDirectory(prefix="aris3nb-schema-") as folder:
            url = f"sqlite:///{folder}/schema.db"
            try:
                code.upgrade(url, revision)  # type: ignore[attr-defined]
            except Aris3nbError as exc:
                return UnknownSchema(
                    f"the tables of revision {revision[:120]!r} cannot be derived: the target's "
                    f"migrations did not run on a scratch SQLite database: {exc}"
                )
            engine = create_engine(url, poolclass=sa.NullPool)
            try:
                found = frozenset(sa.inspect(engine).get_table_names())
            finally:
                engine.dispose()
    with _TABLES_LOCK:
        _TABLES[key] = found
    return found
