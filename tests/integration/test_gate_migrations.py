"""The gate's migration checks, both ways, on real SQLite and PostgreSQL.

Failing cases use throwaway Alembic projects written into ``tmp_path`` (an env.py, and
revisions that do what the scenario needs); the real migrations are never touched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.core.checks import Status
from aris3nb.core.db import create_engine
from aris3nb.gate.migrations import (
    SCRATCH_PREFIX,
    judge_single_head,
    judge_target_schema,
    round_trip,
    round_trip_on_postgres,
    round_trip_on_sqlite,
)

ENV_PY = """
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""


def revision(rev: str, down: str | None, upgrade: str, downgrade: str) -> str:
    return textwrap.dedent(f"""
        import sqlalchemy as sa
        from alembic import op

        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade():
        {textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")}


        def downgrade():
        {textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")}
    """)


CREATE_WIDGETS = (
    'op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))'
)
CREATE_NOTES = 'op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))'


def project(root: Path, *revisions: str) -> Path:
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(ENV_PY)
    for number, text in enumerate(revisions):
        (root / "versions" / f"r{number}.py").write_text(text)
    return root


def widgets_metadata(extra_column: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50))]
    if extra_column:
        columns.append(sa.Column("weight", sa.Integer))
    sa.Table("widgets", metadata, *columns)
    sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


@pytest.fixture
def good_project(tmp_path: Path) -> Path:
    return project(
        tmp_path / "good",
        revision("a1", None, CREATE_WIDGETS, 'op.drop_table("widgets")'),
        revision("b2", "a1", CREATE_NOTES, 'op.drop_table("notes")'),
    )


@pytest.fixture
def leaky_project(tmp_path: Path) -> Path:
    """The second revision's downgrade forgets its table."""
    return project(
        tmp_path / "leaky",
        revision("a1", None, CREATE_WIDGETS, 'op.drop_table("widgets")'),
        revision("b2", "a1", CREATE_NOTES, "pass"),
    )


def test_the_real_migrations_round_trip_on_sqlite() -> None:
    outcome = round_trip_on_sqlite()
    assert outcome.status is Status.PASS, outcome.evidence["differences"]
    steps = outcome.evidence["steps"]
    assert [s["step"] for s in steps] == [
        "upgrade head",
        "compare with the models",
        "downgrade base",
        "upgrade head again",
    ]
    assert steps[0]["schema_sha256"] == steps[3]["schema_sha256"] and steps[0]["tables"] >= 15


def test_a_complete_project_round_trips(good_project: Path, sqlite_url: str) -> None:
    outcome = round_trip(sqlite_url, script_location=good_project, metadata=widgets_metadata())
    assert outcome.status is Status.PASS, outcome.evidence


def test_a_downgrade_that_leaves_a_table_behind_fails(leaky_project: Path, database_url: str) -> None:
    outcome = round_trip(database_url, script_location=leaky_project, metadata=widgets_metadata())
    assert outcome.status is Status.FAIL
    differences = outcome.evidence["differences"]
    assert differences[0] == "downgrade base left table notes behind"  # on PostgreSQL, its sequence too
    assert differences[-1].startswith("upgrade head again failed") and "notes" in differences[-1]
    assert len(differences) > 1
    assert outcome.detail.startswith(f"{len(differences)} differences: downgrade base left table notes behind")


def test_a_schema_that_differs_from_the_models_fails_listing_the_difference(
    good_project: Path, sqlite_url: str
) -> None:
    outcome = round_trip(sqlite_url, script_location=good_project, metadata=widgets_metadata(extra_column=True))
    assert outcome.status is Status.FAIL
    assert outcome.evidence["differences"] == [
        "after the first upgrade: add_column widgets.weight (INTEGER): in the models, not in the database"
    ]


def test_single_head_both_ways(good_project: Path, tmp_path: Path) -> None:
    assert judge_single_head().status is Status.PASS
    assert judge_single_head(good_project).detail == "one head: b2"
    forked = project(
        tmp_path / "forked",
        revision("a1", None, CREATE_WIDGETS, 'op.drop_table("widgets")'),
        revision("b2", "a1", CREATE_NOTES, 'op.drop_table("notes")'),
        revision("c3", "a1", "pass", "pass"),
    )
    outcome = judge_single_head(forked)
    assert outcome.status is Status.FAIL
    assert outcome.detail.startswith("2 heads: b2, c3; merge them")


def test_target_at_head_passes_and_one_revision_behind_fails(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert judge_target_schema(database_url).status is Status.PASS
    migrate.downgrade(database_url, "-1")
    outcome = judge_target_schema(database_url)
    assert outcome.status is Status.FAIL
    head = migrate.head_revision()
    assert outcome.evidence["pending_revisions"] == [head]
    assert outcome.detail == (
        f"target at {outcome.evidence['current_revision']}, code head is {head}: 1 revision behind ({head})"
    )


def test_target_at_head_with_drifted_schema_fails(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE stock_items ADD COLUMN hotfix_note VARCHAR(20)")
    engine.dispose()
    outcome = judge_target_schema(sqlite_url)
    assert outcome.status is Status.FAIL
    assert "drifted from the models" in outcome.detail and "stock_items.hotfix_note" in outcome.detail


def test_target_schema_is_only_read(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    with pytest.raises(Exception, match="unavailable"):
        judge_target_schema(f"sqlite:///{missing}")
    assert not missing.exists(), "reading a target never creates it"


def _scratch_databases(admin: sa.Engine) -> set[str]:
    with admin.connect() as conn:
        return set(
            conn.scalars(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{SCRATCH_PREFIX}%"})
        )


@pytest.mark.postgres
def test_postgres_round_trip_in_a_scratch_database_that_is_dropped(postgres_admin: sa.Engine) -> None:
    server = postgres_admin.url.render_as_string(hide_password=False)
    before = _scratch_databases(postgres_admin)
    outcome = round_trip_on_postgres(server)
    assert outcome.status is Status.PASS, outcome.evidence["differences"]
    assert outcome.evidence["scratch_database"].startswith(SCRATCH_PREFIX)
    assert _scratch_databases(postgres_admin) == before


@pytest.mark.postgres
def test_postgres_scratch_database_is_dropped_even_when_a_migration_fails(
    postgres_admin: sa.Engine, tmp_path: Path
) -> None:
    broken = project(
        tmp_path / "broken",
        revision("a1", None, CREATE_WIDGETS, 'op.drop_table("widgets")'),
        revision("b2", "a1", 'op.execute("SELECT * FROM no_such_table")', "pass"),
    )
    server = postgres_admin.url.render_as_string(hide_password=False)
    before = _scratch_databases(postgres_admin)
    outcome = round_trip_on_postgres(server, script_location=broken, metadata=widgets_metadata())
    assert outcome.status is Status.FAIL and 'relation "no_such_table" does not exist' in outcome.detail
    assert outcome.evidence["scratch_database_dropped"] is True
    assert _scratch_databases(postgres_admin) == before


def test_unreachable_postgres_fails_without_the_password() -> None:
    outcome = round_trip_on_postgres_outcome("postgresql://postgres:Hunter2-secret@127.0.0.1:1/postgres")
    assert outcome.status is Status.FAIL
    assert "unavailable" in outcome.detail and "Hunter2-secret" not in outcome.detail


def round_trip_on_postgres_outcome(url: str):  # type: ignore[no-untyped-def]
    from aris3nb.core.checks import run_check

    result = run_check("pg", lambda _ctx: round_trip_on_postgres(url), None)
    return result


def test_the_built_in_reference_profile_is_judged_in_process_as_before() -> None:
    from aris3nb.targets.code import ReferenceCode, head_revision, target_code
    from aris3nb.targets.profile import REFERENCE, LoadedProfile

    reference = LoadedProfile(REFERENCE, None, None)
    assert isinstance(target_code(reference), ReferenceCode)
    assert head_revision(reference) == head_revision(None) == migrate.head_revision()
    assert judge_single_head(profile=reference).detail == judge_single_head().detail
