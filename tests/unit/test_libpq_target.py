"""What a PostgreSQL client tool (pg_dump, pg_restore) is given: a libpq URI on its command
line that every local user can read (``ps``, ``/proc/<pid>/cmdline``), so without the
password, and the password in that child's environment only. Every other libpq parameter
of the URL still reaches the tool."""

from __future__ import annotations

import os

import pytest
from psycopg.conninfo import conninfo_to_dict

from aris3nb.backup.postgres import libpq_target, with_search_path
from aris3nb.core.db import without_password

SECRET = "Sekr3t-pw"


@pytest.fixture(autouse=True)
def _no_inherited_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)


@pytest.mark.parametrize(
    ("url", "password"),
    [
        (f"postgresql+psycopg://app:{SECRET}@127.0.0.1:5432/aris3", SECRET),
        (f"postgresql://app:{SECRET}@db.example:6543/aris3?sslmode=require", SECRET),
        ("postgres://app:p%40ss%2Fw%3Ard@127.0.0.1/aris3", "p@ss/w:rd"),
        (f"postgresql://app@127.0.0.1/aris3?password={SECRET}&sslmode=disable", SECRET),
    ],
)
def test_the_command_line_uri_has_no_password_and_the_environment_has_it(url: str, password: str) -> None:
    bare, env = libpq_target(url, "aris3nb-test-tool")
    assert password not in bare and "password" not in bare
    assert "%40" not in bare and "p%40ss" not in bare
    assert "password" not in conninfo_to_dict(bare)
    assert env["PGPASSWORD"] == password
    assert env["PGAPPNAME"] == "aris3nb-test-tool"
    assert "PGPASSWORD" not in os.environ, "the password goes to the child only, not to aris3nb's own environment"


def test_every_other_libpq_parameter_stays_on_the_uri() -> None:
    url = with_search_path(
        f"postgresql+psycopg://app:{SECRET}@db.example:6543/aris3?sslmode=verify-full&connect_timeout=7", "shop"
    )
    bare, _ = libpq_target(url)
    assert SECRET not in bare
    assert bare.startswith("postgresql://app@db.example:6543/aris3?")
    assert conninfo_to_dict(bare) == {
        "user": "app",
        "host": "db.example",
        "port": "6543",
        "dbname": "aris3",
        "sslmode": "verify-full",
        "connect_timeout": "7",
        "options": "-csearch_path=shop",
    }


def test_a_url_without_a_password_sets_none() -> None:
    bare, env = libpq_target("postgresql://app@127.0.0.1/aris3")
    assert bare == "postgresql://app@127.0.0.1/aris3"
    assert "PGPASSWORD" not in env


def test_without_password_returns_the_password_apart() -> None:
    bare, password = without_password(f"postgresql://app:{SECRET}@h/db?sslmode=require")
    assert password == SECRET
    assert bare.password is None and dict(bare.query) == {"sslmode": "require"}
    assert SECRET not in bare.render_as_string(hide_password=False)
