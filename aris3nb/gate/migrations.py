"""The gate's migration checks: one head; a full round trip on disposable databases; and the
target database at the code's head with no drift from the models.

The round trip is ``upgrade head`` → snapshot → ``downgrade base`` → nothing of the schema
left → ``upgrade head`` → the same snapshot, and the migrated schema equals the models
(Alembic's compare). It runs on a SQLite file in a temporary folder, and on PostgreSQL in a
scratch database ``aris3nb_gate_<hex>`` that the gate creates and always drops.

Every check takes ``profile``: None (or a profile without ``target.python``) judges the bundled
reference in-process, as before profiles; any other target is driven in its own interpreter
(``aris3nb.targets.code``). On PostgreSQL a profile's revision ids are first held against the
width of ``alembic_version.version_num`` it declares (``migrations.version_num_width``, Alembic's
32 by default): an id that does not fit is a FAIL naming it, since a fresh ``upgrade head``
fails stamping it. A width above 32 says the team creates that table wider before the first
upgrade; the scratch database gets it so, and the round trip runs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError

from aris3nb import migrate
from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, crashed, failed, passed, warned
from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.core.errors import Aris3nbError, MigrationError
from aris3nb.core.redact import redact_url
from aris3nb.core.scratch import MEMORY_FOLDER, memory_folder
from aris3nb.core.words import count
from aris3nb.schema import (
    compare_with_models,
    describe_difference,
    leftover_schema_objects,
    read_only_engine,
    schema_snapshot,
    snapshot_differences,
    snapshot_digest,
)
from aris3nb.targets.code import ProbedCode, TargetCode, target_code
from aris3nb.targets.profile import LoadedProfile

SCRATCH_PREFIX = "aris3nb_gate_"
TARGET_STATEMENT_TIMEOUT_SEC = 30.0
#: Alembic's own width of alembic_version.version_num.
ALEMBIC_VERSION_NUM_WIDTH = 32
_VALUE_TOO_LONG = re.compile(r"value too long for type character varying\((\d+)\)")


def heads(script_location: Path | None = None) -> list[str]:
    return sorted(ScriptDirectory.from_config(migrate.alembic_config(script_location=script_location)).get_heads())


def run_alembic(action: str, url: str, revision: str, script_location: Path | None = None) -> None:
    """``alembic upgrade|downgrade REVISION`` on ``url`` through the library."""
    getattr(migrate, action)(url, revision, script_location)


def _code(
    profile: LoadedProfile | None, script_location: Path | None = None, metadata: sa.MetaData | None = None
) -> TargetCode:
    return target_code(profile, script_location=script_location, metadata=metadata)


def judge_single_head(script_location: Path | None = None, *, profile: LoadedProfile | None = None) -> Outcome:
    """Two heads mean two histories: ``upgrade head`` would be ambiguous and deploys would
    diverge; they must be merged before a release."""
    if profile is None:
        found = heads(script_location)
    else:
        try:
            found = _code(profile, script_location).heads()
        except MigrationError as exc:
            return failed(str(exc), error=type(exc).__name__)
    if len(found) == 1:
        return passed(f"one head: {found[0]}", heads=found)
    if not found:
        return failed("no migration head: the script directory holds no revision", heads=found)
    return failed(
        f"{len(found)} heads: {', '.join(found)}; merge them (alembic merge heads) before releasing", heads=found
    )


def round_trip(
    url: str,
    *,
    script_location: Path | None = None,
    metadata: sa.MetaData | None = None,
    code: TargetCode | None = None,
) -> Outcome:
    """upgrade head → snapshot → downgrade base → nothing left → upgrade head → same snapshot,
    and the schema equals ``metadata`` (the models), on the empty database ``url``.
    ``code``: the target's code (default: the reference, or ``script_location``/``metadata``)."""
    code = code if code is not None else _code(None, script_location, metadata)
    steps: list[dict[str, Any]] = []
    problems: list[str] = []

    def step(name: str, started: float, **facts: Any) -> None:
        steps.append({"step": name, "duration_sec": round(time.perf_counter() - started, 3), **facts})

    started = time.perf_counter()
    code.upgrade(url, "head")
    first = schema_snapshot(url)
    step("upgrade head", started, tables=len(first), schema_sha256=snapshot_digest(first))

    started = time.perf_counter()
    against_models = code.compare(url) if code.has_models else []
    drift, accepted = split_drift(code, against_models)
    problems += [f"after the first upgrade: {line}" for line in drift]
    if code.has_models:
        step("compare with the models", started, differences=len(against_models))

    started = time.perf_counter()
    code.downgrade(url, "base")
    leftovers = leftover_schema_objects(url)
    problems += [f"downgrade base left {thing} behind" for thing in leftovers]
    step("downgrade base", started, leftovers=leftovers)

    started = time.perf_counter()
    try:
        code.upgrade(url, "head")
    except Aris3nbError as exc:
        if not leftovers:
            raise
        # What the downgrade left behind is the finding; the upgrade failing over it follows.
        problems.append(f"upgrade head again failed: {exc}")
        step("upgrade head again", started, failed=True)
    else:
        second = schema_snapshot(url)
        changed = snapshot_differences(first, second)
        problems += [f"second upgrade differs: {line}" for line in changed]
        again = code.compare(url) if code.has_models else []
        problems += [f"after the second upgrade: {line}" for line in again if line not in against_models]
        step(
            "upgrade head again",
            started,
            tables=len(second),
            schema_sha256=snapshot_digest(second),
            differences=len(changed),
        )

    evidence = {
        "database": redact_url(url),
        "steps": steps,
        "differences": problems,
        "accepted_drift": accepted[: SAMPLE_LIMIT * 5],
    }
    if problems:
        return failed(
            f"{count(len(problems), 'difference')}: {problems[0]}" + (" …" if len(problems) > 1 else ""), **evidence
        )
    if accepted:
        return warned(
            f"upgrade → downgrade base → upgrade gives the same {len(first)} tables; they differ from the "
            f"models in {count(len(accepted), 'way')} the profile accepts (migrations.accepted_drift), e.g. "
            f"{accepted[0]}",
            **evidence,
        )
    if not code.has_models:
        return passed(
            f"upgrade → downgrade base → upgrade gives the same {len(first)} tables (the profile names no "
            "target.metadata: not compared with the models)",
            models=None,
            **evidence,
        )
    return passed(
        f"upgrade → downgrade base → upgrade gives the same {len(first)} tables, equal to the models", **evidence
    )


#: The room a round trip's disposable SQLite file is given in memory (a schema, no data).
ROUND_TRIP_ROOM = 64 << 20


def scratch_folder_root(memory_dir: Path | None) -> str | None:
    """Where the round trip's disposable SQLite file goes: the memory folder ``memory_dir`` when
    it has room (``aris3nb.core.scratch.memory_folder``), else the temporary folder (None).
    Its file is thrown away: what durability on disk would add is an fsync per migration
    statement (~1.5 s of a round trip on a plain disk), and nothing the round trip judges (the
    schema each step leaves) depends on it."""
    folder = memory_folder(memory_dir, ROUND_TRIP_ROOM)
    return None if folder is None else str(folder)


def round_trip_on_sqlite(
    *,
    script_location: Path | None = None,
    metadata: sa.MetaData | None = None,
    profile: LoadedProfile | None = None,
    memory_dir: Path | None = MEMORY_FOLDER,
) -> Outcome:
    """The round trip on a SQLite file in a temporary folder (in the memory folder
    ``memory_dir`` when it has room, ``scratch_folder_root``), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aris3nb-gate-", dir=scratch_folder_root(memory_dir)) as folder:
        url = f"sqlite:///{Path(folder) / 'round_trip.db'}"
        if profile is None:
            return round_trip(url, script_location=script_location, metadata=metadata)
        try:
            return round_trip(url, code=_code(profile, script_location, metadata))
        except Aris3nbError as exc:  # an Alembic or database error of the target's code: the finding
            return failed(str(exc), error=type(exc).__name__, database=redact_url(url))


@contextlib.contextmanager
def scratch_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database ``aris3nb_gate_<hex>`` on the server of ``server_url``; dropped
    on the way out, whatever happened inside (``DROP DATABASE ... WITH (FORCE)``)."""
    parsed = parse_database_url(server_url)
    if parsed.get_backend_name() != "postgresql":
        raise MigrationError(f"--postgres-url must name a PostgreSQL server, not {redact_url(parsed)}")
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with database_errors(server_url, "create a scratch database"), admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            with database_errors(server_url, f"drop the scratch database {name}"), admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def round_trip_on_postgres(
    server_url: str,
    *,
    script_location: Path | None = None,
    metadata: sa.MetaData | None = None,
    profile: LoadedProfile | None = None,
) -> Outcome:
    """The round trip in a scratch PostgreSQL database, dropped afterwards even on failure.

    With a profile, its revision ids are first held against ``migrations.version_num_width``
    (see the module's docstring); a width above Alembic's 32 is created in the scratch
    database before the first upgrade."""
    code = _code(profile, script_location, metadata)
    width = profile.profile.migrations.version_num_width if profile is not None else None
    if width is not None:
        try:
            history = [rev.revision for rev in code.history()]
        except MigrationError as exc:
            return failed(str(exc), error=type(exc).__name__)
        if (too_long := version_num_defect(history, width)) is not None:
            return too_long
    with scratch_postgres_database(server_url) as url:
        try:
            if width is not None and width > ALEMBIC_VERSION_NUM_WIDTH:
                create_version_table(url, width)
            outcome = round_trip(url, code=code)
        except Exception as exc:  # noqa: BLE001 -- the check's failure, reported once the database is dropped
            outcome = _value_too_long(exc, code) or crashed(exc)
    if width is not None:
        outcome.evidence.update(version_num_width=width)
    outcome.evidence.update(scratch_database=parse_database_url(url).database, scratch_database_dropped=True)
    return outcome


def version_num_defect(revisions: list[str], width: int) -> Outcome | None:
    """The FAIL for revision ids longer than ``alembic_version.version_num VARCHAR(width)``
    (a fresh PostgreSQL ``upgrade head`` fails stamping the first of them), or None."""
    too_long = [rev for rev in revisions if len(rev) > width]
    if not too_long:
        return None
    first = too_long[0]
    more = f"; {len(too_long)} revision ids are longer than {width}" if len(too_long) > 1 else ""
    return failed(
        f"revision {first} ({len(first)} characters) does not fit alembic_version.version_num VARCHAR({width}): "
        f"a fresh PostgreSQL upgrade fails stamping it{more}. Create alembic_version with a wider version_num "
        "(primary key alembic_version_pkc) before the first upgrade, and declare it as migrations.version_num_width",
        version_num_width=width,
        revisions_too_long={rev: len(rev) for rev in too_long},
    )


def _value_too_long(exc: Exception, code: TargetCode) -> Outcome | None:
    """A runtime "value too long for type character varying(N)" as the same named FAIL."""
    found = _VALUE_TOO_LONG.search(str(exc))
    if found is None:
        return None
    try:
        history = [rev.revision for rev in code.history()]
    except Aris3nbError:
        history = []
    outcome = version_num_defect(history, int(found.group(1)))
    if outcome is None:
        return None
    outcome.evidence.update(error=str(exc).splitlines()[0])
    return outcome


def create_version_table(url: str, width: int) -> None:
    """``alembic_version`` with ``version_num VARCHAR(width)`` (primary key alembic_version_pkc),
    before the first upgrade: the documented workaround for long revision ids."""
    engine = create_engine(url)
    try:
        with database_errors(url, "create alembic_version"), engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE alembic_version (version_num VARCHAR({int(width)}) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
    finally:
        engine.dispose()


def judge_target_schema(
    url: str,
    *,
    script_location: Path | None = None,
    metadata: sa.MetaData | None = None,
    profile: LoadedProfile | None = None,
) -> Outcome:
    """The target database must be at the code's head revision, and its schema must equal the
    models: deploying code onto a schema it was not written for is how data gets damaged.
    Read-only: the target is only looked at."""
    from alembic.runtime.migration import MigrationContext

    code = _code(profile, script_location, metadata)
    if isinstance(code, ProbedCode):
        try:
            return _judge_target_schema_of(code, url)
        except MigrationError as exc:
            return failed(str(exc), error=type(exc).__name__, database=redact_url(url))

    from aris3nb.contract.models import Base

    metadata = metadata if metadata is not None else Base.metadata
    found_heads = heads(script_location)
    head = found_heads[0] if len(found_heads) == 1 else None
    engine = read_only_engine(url, statement_timeout_sec=TARGET_STATEMENT_TIMEOUT_SEC)
    try:
        with database_errors(url, "read the target's schema"), engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            differences = [describe_difference(d) for d in compare_with_models(conn, metadata)]
    finally:
        engine.dispose()
    evidence: dict[str, Any] = {"database": redact_url(url), "current_revision": current, "head_revision": head}
    if head is None:
        return failed(f"the code has {len(found_heads)} migration heads; cannot judge the target", **evidence)
    if current != head:
        behind = _revisions_between(current, head, script_location)
        evidence["pending_revisions"] = behind
        where = (
            f"{count(len(behind), 'revision')} behind ({', '.join(behind)})" if behind else "not on the code's history"
        )
        return failed(f"target at {current or 'no revision'}, code head is {head}: {where}", **evidence)
    evidence["differences"] = differences[: SAMPLE_LIMIT * 5]
    if differences:
        return failed(
            f"target at head {head} but its schema drifted from the models: {count(len(differences), 'difference')}, "
            f"e.g. {differences[0]}",
            **evidence,
        )
    return passed(f"target at head {head}, schema equal to the models", **evidence)


def _revisions_between(current: str | None, head: str, script_location: Path | None) -> list[str]:
    """The revisions an ``upgrade head`` would apply to a database at ``current``."""
    script = ScriptDirectory.from_config(migrate.alembic_config(script_location=script_location))
    try:
        pending = list(script.iterate_revisions(head, current or "base"))
    except RevisionError:  # current is not in this history at all
        return []
    return [rev.revision for rev in reversed(pending)]


def _judge_target_schema_of(code: ProbedCode, url: str) -> Outcome:
    """``judge_target_schema`` for a target driven in its own interpreter: the live revision
    against the target's head through its history, the width of ``alembic_version.version_num``
    on PostgreSQL against the longest revision id, and the drift through Alembic's compare."""
    found_heads = code.heads()
    head = found_heads[0] if len(found_heads) == 1 else None
    current, compared = code.current_and_compare(url)
    evidence: dict[str, Any] = {"database": redact_url(url), "current_revision": current, "head_revision": head}
    if head is None:
        return failed(f"the code has {len(found_heads)} migration heads; cannot judge the target", **evidence)
    behind = code.revisions_between(current, head) if current != head else []
    if current != head:
        evidence["pending_revisions"] = behind
    longest = code.longest_revision()
    width = _version_num_width(url)
    if width is not None and longest is not None and len(longest) > width:
        evidence.update(version_num_width=width, longest_revision=longest)
        return failed(
            f"the target's alembic_version.version_num is VARCHAR({width}), narrower than revision "
            f"{longest} ({len(longest)} characters): upgrading to it fails; widen the column first "
            f"(target at {current or 'no revision'}, code head is {head})",
            **evidence,
        )
    if current != head:
        where = (
            f"{count(len(behind), 'revision')} behind ({', '.join(behind)})" if behind else "not on the code's history"
        )
        return failed(f"target at {current or 'no revision'}, code head is {head}: {where}", **evidence)
    if not code.has_models:
        return warned(f"target at head {head}; drift not checked: the profile names no target.metadata", **evidence)
    differences, accepted = split_drift(code, compared())
    evidence.update(differences=differences[: SAMPLE_LIMIT * 5], accepted_drift=accepted[: SAMPLE_LIMIT * 5])
    if differences:
        return failed(
            f"target at head {head} but its schema drifted from the models: {count(len(differences), 'difference')}, "
            f"e.g. {differences[0]}",
            **evidence,
        )
    if accepted:
        return warned(
            f"target at head {head}; its schema differs from the models in {count(len(accepted), 'way')} the "
            f"profile accepts (migrations.accepted_drift), e.g. {accepted[0]}",
            **evidence,
        )
    return passed(f"target at head {head}, schema equal to the models", **evidence)


def split_drift(code: TargetCode, differences: list[str]) -> tuple[list[str], list[str]]:
    """(differences the profile does not accept, those it does: ``migrations.accepted_drift``)."""
    accepted = [d for d in differences if any(fnmatch.fnmatchcase(d, p) for p in code.accepted_drift)]
    return [d for d in differences if d not in accepted], accepted


def _version_num_width(url: str) -> int | None:
    """The declared width of the live ``alembic_version.version_num`` on PostgreSQL (None on
    SQLite, which does not enforce it, or when there is no such table)."""
    if parse_database_url(url).get_backend_name() != "postgresql":
        return None
    engine = read_only_engine(url, statement_timeout_sec=TARGET_STATEMENT_TIMEOUT_SEC)
    try:
        with database_errors(url, "read alembic_version's width"), engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT character_maximum_length FROM information_schema.columns "
                    "WHERE table_schema = current_schema() "
                    "AND table_name = 'alembic_version' AND column_name = 'version_num'"
                )
            ).scalar()
    finally:
        engine.dispose()
