"""The built-in ``reference`` set: every invariant declares each column it reads (checked by
watching the statements it runs), and a schema that lacks the reference's meaning — a
``transfer_lines.status`` holding the item's stock status, a revision of another history —
is not judged by it."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.sql import visitors

from aris3nb import migrate
from aris3nb.core.checks import Status
from aris3nb.integrity import IntegrityOptions, builtin_set, read_only_snapshot, run_integrity_check
from aris3nb.integrity.invariants import IntegrityContext, LiveSchema


def columns_read(statement: Any) -> set[str]:
    """``table.column`` for every table column a SQLAlchemy statement refers to."""
    found = set()
    for node in visitors.iterate(statement):
        if isinstance(node, sa.Column) and isinstance(node.table, sa.Table):
            found.add(f"{node.table.name}.{node.name}")
    return found


def test_each_reference_invariant_declares_every_column_it_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    options = IntegrityOptions(url, tmp_path / "exports")
    with read_only_snapshot(url, 30) as conn:
        context = IntegrityContext(conn, options, dt.datetime.now(dt.UTC), LiveSchema(conn))
        for invariant in builtin_set("reference"):
            read: set[str] = set()

            def watch(_conn: Any, statement: Any, *_args: Any, found: set[str] = read) -> None:
                found.update(columns_read(statement))

            sa.event.listen(conn, "before_execute", watch)
            try:
                outcome = invariant.function(context)
            finally:
                sa.event.remove(conn, "before_execute", watch)
            assert outcome.status is Status.PASS, (invariant.name, outcome.detail)
            undeclared = read - set(invariant.requires) - {"alembic_version.version_num"}
            assert not undeclared, f"{invariant.name} reads {sorted(undeclared)} without declaring them"
            assert read or invariant.name == "schema.revision", invariant.name


UPSTREAM_LIKE = """
CREATE TABLE transfers (id TEXT PRIMARY KEY, tenant_id TEXT, status TEXT);
CREATE TABLE transfer_lines (id TEXT PRIMARY KEY, transfer_id TEXT, epc TEXT, status TEXT);
CREATE TABLE transfer_movements (id TEXT PRIMARY KEY, transfer_id TEXT, kind TEXT);
INSERT INTO transfers VALUES ('t1', 'x', 'RECEIVED');
INSERT INTO transfer_lines VALUES ('l1', 't1', 'E1', 'RFID');
INSERT INTO transfer_movements VALUES ('m1', 't1', 'DISPATCH');
CREATE TABLE alembic_version (version_num VARCHAR(128) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0037_s12_reports_cost_snapshot');
"""


def test_a_line_status_that_means_the_items_stock_status_is_not_judged(tmp_path: Path) -> None:
    """Here ``transfer_lines.status`` holds the item's stock status (RFID), as upstream ARIS3's
    does: the reference's line-state rules would call every line corrupt. Its lines carry no
    stock item, so they lack the column set those rules declare: not applicable."""
    path = tmp_path / "upstream.db"
    with sqlite3.connect(path) as db:
        db.executescript(UPSTREAM_LIKE)
    report = run_integrity_check(
        IntegrityOptions(f"sqlite:///{path}", tmp_path / "exports"), artifacts_dir=tmp_path / "artifacts"
    )
    results = {r.name: r for r in report.results}
    # Only the rule that reads no line status (and whose columns mean the same here) runs.
    assert [r.name for r in report.results if r.status is not Status.WARN] == ["transfers.draft_not_dispatched"]
    assert results["transfers.draft_not_dispatched"].status is Status.PASS
    assert report.document["not_applicable"]["count"] == 15
    for name in ("transfers.known_states", "transfers.received_within_dispatched", "transfers.received_complete"):
        assert results[name].detail == "not applicable: needs transfer_lines.stock_item_id, absent here"
        assert results[name].evidence == {"not_applicable": True, "missing": ["transfer_lines.stock_item_id"]}
    revision = results["schema.revision"]
    assert revision.detail == (
        "not applicable: the database is at revision 0037_s12_reports_cost_snapshot, which the "
        "reference history does not know (another target's schema)"
    )
    assert revision.evidence["not_applicable"] is True and revision.evidence["missing"] == []


@pytest.mark.parametrize(("revision", "status"), [("0004_exports_idempotency", Status.FAIL), (None, Status.FAIL)])
def test_a_reference_database_behind_or_unstamped_still_fails_the_revision(
    tmp_path: Path, revision: str | None, status: Status
) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "aris3.db") as db:
        db.execute(
            "DELETE FROM alembic_version"
            if revision is None
            else f"UPDATE alembic_version SET version_num = '{revision}'"
        )
    report = run_integrity_check(IntegrityOptions(url, tmp_path / "exports"), artifacts_dir=tmp_path / "artifacts")
    result = next(r for r in report.results if r.name == "schema.revision")
    assert result.status is status and result.detail.startswith(f"database at {revision or 'no revision'}, code head")
