import pytest

from aris3nb.db import database_errors, engine_name, parse_database_url
from aris3nb.errors import DatabaseUnavailable, InvalidDatabaseUrl


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
    from aris3nb.errors import Aris3nbError

    with pytest.raises(Aris3nbError, match="cannot copy on"), database_errors(url, "copy"):
        raise psycopg.errors.UndefinedTable('relation "x" does not exist')
