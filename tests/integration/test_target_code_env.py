"""The target's own migrations, run by aris3nb on a database it chose (the gate's scratch round
trip), are given that database under the profile's variable and under DATABASE_URL too: an env.py
that reads DATABASE_URL, with a profile naming another variable, never migrates the database
DATABASE_URL named before (aris3nb's runner sets it to the judged target)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from aris3nb.core.settings import load_settings
from aris3nb.gate.runner import GateOptions, run_gate
from aris3nb.targets.profile import LoadedProfile, Profile, TargetCode

ENV_PY = """
import os
from alembic import context
from sqlalchemy import create_engine

def run():
    with create_engine(os.environ["DATABASE_URL"]).connect() as conn:
        context.configure(connection=conn, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()

run()
"""

REVISION = """
from alembic import op
import sqlalchemy as sa
revision = "r1"
down_revision = None

def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))

def downgrade():
    op.drop_table("items")
"""


def test_a_scratch_round_trip_never_migrates_the_database_database_url_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "shop"
    (repo / "migrations" / "versions").mkdir(parents=True)
    (repo / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (repo / "migrations" / "env.py").write_text(ENV_PY)
    (repo / "migrations" / "script.py.mako").write_text("")
    (repo / "migrations" / "versions" / "r1.py").write_text(REVISION)
    production = tmp_path / "prod.db"
    with sqlite3.connect(production) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO items VALUES (42)")
        conn.execute("INSERT INTO alembic_version VALUES ('r1')")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{production}")
    profile = Profile(
        profile_version=1,
        name="shop",
        target=TargetCode(python=sys.executable, database_url_env="TEST_DATABASE_URL"),
    )
    loaded = LoadedProfile(profile, repo / "aris3nb.toml", None)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    report = run_gate(GateOptions(profile=loaded, checks=("migrations.round_trip.sqlite",)), settings)
    [round_trip] = report.results
    assert round_trip.status.value == "PASS", round_trip.detail
    with sqlite3.connect(production) as conn:
        assert conn.execute("SELECT id FROM items").fetchall() == [(42,)], "the production database untouched"
