"""The gate's migration checks: one head; a full round trip on disposable databases; and the
target database at the code's head with no drift from the models.

The round trip is ``upgrade head`` → snapshot → ``downgrade base`` → nothing of the schema
left → ``upgrade head`` → the same snapshot, and the migrated schema equals the models
(Alembic's compare). It runs on a SQLite file in a temporary folder, and on PostgreSQL in a
scratch database ``aris3nb_gate_<hex>`` that the gate creates and always drops.
"""

from __future__ import annotations

import contextlib
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
from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, crashed, failed, passed
from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.core.errors import Aris3nbError, MigrationError
from aris3nb.core.redact import redact_url
from aris3nb.schema import (
    compare_with_models,
    describe_difference,
    leftover_schema_objects,
    model_differences,
    read_only_engine,
    schema_snapshot,
    snapshot_differences,
    snapshot_digest,
)

SCRATCH_PREFIX = "aris3nb_gate_"
TARGET_STATEMENT_TIMEOUT_SEC = 30.0


def heads(script_location: Path | None = None) -> list[str]:
    return sorted(ScriptDirectory.from_config(migrate.alembic_config(script_location=script_location)).get_heads())


def run_alembic(action: str, url: str, revision: str, script_location: Path | None = None) -> None:
    """``alembic upgrade|downgrade REVISION`` on ``url`` through the library."""
    getattr(migrate, action)(url, revision, script_location)


def judge_single_head(script_location: Path | None = None) -> Outcome:
    """Two heads mean two histories: ``upgrade head`` would be ambiguous and deploys would
    diverge; they must be merged before a release."""
    found = heads(script_location)
    if len(found) == 1:
        return passed(f"one head: {found[0]}", heads=found)
    if not found:
        return failed("no migration head: the script directory holds no revision", heads=found)
    return failed(f"{len(found)} heads: {', '.join(found)}; merge them (alembic merge heads) before releasing",
                  heads=found)


def round_trip(url: str, *, script_location: Path | None = None, metadata: sa.MetaData | None = None) -> Outcome:
    """upgrade head → snapshot → downgrade base → nothing left → upgrade head → same snapshot,
    and the schema equals ``metadata`` (the models), on the empty database ``url``."""
    from aris3nb.reference.models import Base

    metadata = metadata if metadata is not None else Base.metadata
    steps: list[dict[str, Any]] = []
    problems: list[str] = []

    def step(name: str, started: float, **facts: Any) -> None:
        steps.append({"step": name, "duration_sec": round(time.perf_counter() - started, 3), **facts})

    started = time.perf_counter()
    run_alembic("upgrade", url, "head", script_location)
    first = schema_snapshot(url)
    step("upgrade head", started, tables=len(first), schema_sha256=snapshot_digest(first))

    started = time.perf_counter()
    against_models = [describe_difference(d) for d in model_differences(url, metadata)]
    problems += [f"after the first upgrade: {line}" for line in against_models]
    step("compare with the models", started, differences=len(against_models))

    started = time.perf_counter()
    run_alembic("downgrade", url, "base", script_location)
    leftovers = leftover_schema_objects(url)
    problems += [f"downgrade base left {thing} behind" for thing in leftovers]
    step("downgrade base", started, leftovers=leftovers)

    started = time.perf_counter()
    try:
        run_alembic("upgrade", url, "head", script_location)
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
        again = [describe_difference(d) for d in model_differences(url, metadata)]
        problems += [f"after the second upgrade: {line}" for line in again if line not in against_models]
        step("upgrade head again", started, tables=len(second), schema_sha256=snapshot_digest(second),
             differences=len(changed))

    evidence = {"database": redact_url(url), "steps": steps, "differences": problems}
    if problems:
        return failed(f"{len(problems)} difference(s): {problems[0]}" + (" …" if len(problems) > 1 else ""), **evidence)
    return passed(f"upgrade → downgrade base → upgrade gives the same {len(first)} tables, equal to the models",
                  **evidence)


def round_trip_on_sqlite(*, script_location: Path | None = None, metadata: sa.MetaData | None = None) -> Outcome:
    """The round trip on a SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aris3nb-gate-") as folder:
        return round_trip(f"sqlite:///{Path(folder) / 'round_trip.db'}", script_location=script_location,
                          metadata=metadata)


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


def round_trip_on_postgres(server_url: str, *, script_location: Path | None = None,
                           metadata: sa.MetaData | None = None) -> Outcome:
    """The round trip in a scratch PostgreSQL database, dropped afterwards even on failure."""
    with scratch_postgres_database(server_url) as url:
        try:
            outcome = round_trip(url, script_location=script_location, metadata=metadata)
        except Exception as exc:  # noqa: BLE001 -- the check's failure, reported once the database is dropped
            outcome = crashed(exc)
    outcome.evidence.update(scratch_database=parse_database_url(url).database, scratch_database_dropped=True)
    return outcome


def judge_target_schema(url: str, *, script_location: Path | None = None, metadata: sa.MetaData | None = None) -> Outcome:
    """The target database must be at the code's head revision, and its schema must equal the
    models: deploying code onto a schema it was not written for is how data gets damaged.
    Read-only: the target is only looked at."""
    from alembic.runtime.migration import MigrationContext

    from aris3nb.reference.models import Base

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
        where = (f"{len(behind)} revision(s) behind ({', '.join(behind)})" if behind
                 else "not on the code's history")
        return failed(f"target at {current or 'no revision'}, code head is {head}: {where}", **evidence)
    evidence["differences"] = differences[:SAMPLE_LIMIT * 5]
    if differences:
        return failed(f"target at head {head} but its schema drifted from the models: {len(differences)} difference(s), "
                      f"e.g. {differences[0]}", **evidence)
    return passed(f"target at head {head}, schema equal to the models", **evidence)


def _revisions_between(current: str | None, head: str, script_location: Path | None) -> list[str]:
    """The revisions an ``upgrade head`` would apply to a database at ``current``."""
    script = ScriptDirectory.from_config(migrate.alembic_config(script_location=script_location))
    try:
        pending = list(script.iterate_revisions(head, current or "base"))
    except RevisionError:  # current is not in this history at all
        return []
    return [rev.revision for rev in reversed(pending)]
