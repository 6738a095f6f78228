import pytest
import sqlalchemy as sa

from aris3nb.core.db import database_errors, engine_name, parse_database_url
from aris3nb.core.errors import DatabaseUnavailable, InvalidDatabaseUrl


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg"),
        ("sqlite:///a.db", "sqlite"),
    ],
)
def test_supported_urls_are_normalised(given: str, driver: str) -> None:
    assert parse_database_url(given).drivername == driver


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("nonsense", "cannot parse"),
        ("mysql://root:pw@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u:pw@h/db", "unsupported PostgreSQL driver"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_urls_are_usage_errors(given: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseUrl, match=message) as caught:
        parse_database_url(given)
    assert caught.value.exit_code == 2
    assert "pw" not in str(caught.value).replace("psycopg", "")


def test_engine_name() -> None:
    assert engine_name("postgres://u@h/db") == "postgresql"
    assert engine_name("sqlite:///x.db") == "sqlite"


def test_driver_errors_become_unavailable_without_the_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    url = "postgresql://app:TopSecret1@127.0.0.1:1/aris3"
    with pytest.raises(DatabaseUnavailable) as caught, database_errors(url, "connect"):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection to postgresql://app:TopSecret1@x failed"))
    assert "TopSecret1" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_errors_raised_by_the_driver_itself_are_translated_too() -> None:
    import psycopg

    url = "postgresql://app:TopSecret1@127.0.0.1:1/aris3"
    with pytest.raises(DatabaseUnavailable) as caught, database_errors(url, "copy"):
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert "TopSecret1" not in str(caught.value) and caught.value.exit_code == 2
    from aris3nb.core.errors import Aris3nbError

    with pytest.raises(Aris3nbError, match="cannot copy on"), database_errors(url, "copy"):
        raise psycopg.errors.UndefinedTable('relation "x" does not exist')


HOSTILE = [
    ("postgresql://u:Sekr3t@ss:w/o%rd#x?y z@127.0.0.1:5432/db", ["Sekr3t", "ss:w", "o%rd", "x?y z"]),
    ("postgresql://u:Sekr3t@tail@127.0.0.1:5432/db", ["Sekr3t", "tail@", "@tail"]),
    ("postgres://u:pa/ss@127.0.0.1/db", ["pa/ss"]),
    ("postgresql://u:two words@127.0.0.1/db", ["two words"]),
    ("postgresql://u:100%sure@127.0.0.1/db", ["100%sure"]),
]


@pytest.fixture
def no_name_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup or connection attempt fails the test."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"name lookup or connection attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(("url", "fragments"), HOSTILE)
def test_ambiguous_credentials_are_refused_before_any_lookup(
    url: str, fragments: list[str], no_name_lookup: None
) -> None:
    from aris3nb.core.db import check_connection, create_engine

    for attempt in (parse_database_url, create_engine, check_connection, engine_name):
        with pytest.raises(InvalidDatabaseUrl) as caught:
            attempt(url)
        message = str(caught.value)
        assert caught.value.exit_code == 2 and "\n" not in message
        assert "percent-encode" in message and "%40" in message
        assert not [f for f in fragments if f in message], message


def test_a_percent_encoded_password_is_accepted() -> None:
    from urllib.parse import quote

    from aris3nb.core.redact import url_password

    password = "p@ss:w/o#r?d x"
    url = f"postgresql://app:{quote(password, safe='')}@127.0.0.1:5432/aris3"
    parsed = parse_database_url(url)
    assert parsed.password == password and parsed.host == "127.0.0.1" and parsed.port == 5432
    assert url_password(url) == password


@pytest.mark.postgres
def test_a_real_role_with_a_reserved_character_password_connects(postgres_admin) -> None:  # type: ignore[no-untyped-def]
    """A role whose password holds ``@:/#? `` on the real server: the encoded URL parses, the
    password round-trips through ``url_password``, and the connection works. (The test server
    trusts local connections, so the connection alone would not prove the password.)"""
    import uuid
    from urllib.parse import quote

    from aris3nb.core.db import create_engine
    from aris3nb.core.redact import url_password

    role = f"aris3nb_test_role_{uuid.uuid4().hex[:8]}"
    password = "Sekr3t@:/#? z"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        server = postgres_admin.url
        url = f"postgresql://{role}:{quote(password, safe='')}@{server.host}:{server.port or 5432}/postgres"
        assert url_password(url) == password
        assert parse_database_url(url).password == password
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_user")).scalar() == role
        finally:
            engine.dispose()
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("postgresql://u:***@db:5432/aris", "postgresql+psycopg://u:secret@db/aris", True),
        ("postgresql://u@DB/aris", "postgresql://u@db:5432/aris", True),
        ("postgresql://u@db/aris", "postgresql://u@db/other", False),
        ("postgresql://u@db/aris", "postgresql://v@db/aris", True),
        ("postgresql://u@localhost/aris", "postgresql://u@127.0.0.1:5432/aris", True),
        ("postgresql://u@db1/aris", "postgresql://u@db2/aris", False),
        ("postgresql://u@db:5433/aris", "postgresql://u@db/aris", False),
        ("sqlite:///data/aris3.db", "sqlite+pysqlite:///data/../data/aris3.db", True),
        ("sqlite:///data/aris3.db", "postgresql://u@db/aris3.db", False),
        ("not a url", "postgresql://u@db/aris", False),
        ("sqlite://", "sqlite://", False),
    ],
)
def test_same_database_however_spelled(first: str, second: str, same: bool) -> None:
    from aris3nb.core.db import same_database

    assert same_database(first, second) is same
    assert same_database(second, first) is same
