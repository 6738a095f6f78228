"""Database URLs and engines: parsing, connecting, and the boundary where driver errors
become ``Aris3nbError``s with the password scrubbed out.

Two engines are supported: SQLite (``sqlite:///path``) and PostgreSQL through psycopg 3
(``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` are all accepted).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from aris3nb.core.errors import Aris3nbError, DatabaseUnavailable, InvalidDatabaseUrl
from aris3nb.core.redact import redact_text, redact_url, url_password, userinfo_problem

SUPPORTED = ("sqlite", "postgresql")
CONNECT_TIMEOUT_SEC = 5
SQLITE_BUSY_TIMEOUT_MS = 15_000
PERCENT_ENCODE_HINT = (
    "percent-encode it: @ as %40, / as %2F, # as %23, ? as %3F, % as %25, a space as %20 "
    "(urllib.parse.quote(password, safe=''))"
)


def parse_database_url(url: str | URL) -> URL:
    """Parse and normalise a database URL, or raise ``InvalidDatabaseUrl`` (exit 2).

    A URL whose credentials cannot be told apart from its host (an unencoded ``@``, ``/``,
    ``#``, ``?`` or whitespace in the password) is refused here, before any connection or
    name lookup, with a message that quotes no part of it.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        text = str(url).strip()
        if not text:
            raise InvalidDatabaseUrl("database URL is empty; give --database-url or set DATABASE_URL")
        # Before anything reads the URL: SQLAlchemy splits ``u:Sekr3t@tail@host`` at the first
        # ``@`` and would send ``tail@host`` to the name resolver, and print it.
        problem = userinfo_problem(text)
        if problem is not None:
            raise InvalidDatabaseUrl(f"cannot parse the database URL: {problem}; {PERCENT_ENCODE_HINT}")
        try:
            parsed = make_url(text)
        except Exception as exc:
            raise InvalidDatabaseUrl(f"cannot parse database URL {redact_url(text)!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgres" or backend == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "postgresql":
        if parsed.drivername != "postgresql":
            raise InvalidDatabaseUrl(
                f"unsupported PostgreSQL driver {parsed.get_driver_name()!r} in {redact_url(parsed)!r}; "
                "use postgresql:// (psycopg 3)"
            )
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InvalidDatabaseUrl(
                "an in-memory SQLite database cannot be shared; give a file: sqlite:///path/to/aris3.db"
            )
    else:
        raise InvalidDatabaseUrl(
            f"unsupported database {backend!r} in {redact_url(parsed)!r}; use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return parsed


def without_password(url: str | URL) -> tuple[URL, str | None]:
    """``url`` without its password (in its user part or as a ``password`` query parameter,
    which libpq accepts too) and the password apart: what a client tool's command line may
    carry, since every local user can read it (``ps``, ``/proc/<pid>/cmdline``). Every other
    libpq parameter (host, port, ``sslmode``, ``options``...) stays in the URL."""
    parsed = parse_database_url(url)
    in_query = parsed.query.get("password")
    password = parsed.password or (in_query if isinstance(in_query, str) else None) or None
    # URL.set(password=None) keeps the password (None means "unchanged"): build the URL anew.
    bare = URL.create(
        parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    ).difference_update_query(["password"])
    return bare, None if password is None else str(password)


def engine_name(url: str | URL) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return parse_database_url(url).get_backend_name()


def same_database(first: str | URL, second: str | URL) -> bool:
    """Whether two URLs name the same database however they are spelled (``database_key``).
    Unparseable: False."""
    try:
        a, b = database_key(first), database_key(second)
    except InvalidDatabaseUrl:
        return False
    return a == b and a != _IN_MEMORY  # two in-memory databases are never one


def database_key(url: str | URL) -> str:
    """Which database ``url`` names, the same text however the URL is spelled (a driver named
    or not, the default port, host case, localhost or a loopback address, a SQLite path
    relative, absolute or through a symbolic link) and whoever connects (the role and its
    password are not part of it): ``sqlite /abs/path`` or ``postgresql HOST:PORT/DB``.
    ``InvalidDatabaseUrl`` when unparseable. Password-free: fit for lock names and messages."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite {sqlite_path(parsed).resolve()}" if parsed.database else _IN_MEMORY
    host = (parsed.host or "localhost").lower()
    where = f"{'loopback' if host in _LOOPBACK else host}:{parsed.port or 5432}"
    return f"{parsed.get_backend_name()} {where}/{parsed.database}"


_IN_MEMORY = "sqlite :memory:"


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def sqlite_path(url: str | URL) -> Path:
    parsed = parse_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise InvalidDatabaseUrl(f"not a SQLite URL: {redact_url(parsed)!r}")
    return Path(parsed.database or "")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_engine(url: str | URL, *, create_sqlite_parent: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings aris3nb relies on.

    SQLite connections enforce foreign keys and wait on a busy database instead of failing;
    PostgreSQL connections time out after a few seconds instead of hanging.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if create_sqlite_parent:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise DatabaseUnavailable(
                f"cannot open SQLite database {str(path)!r}: folder {str(path.parent)!r} does not exist"
            )
        connect_args: dict[str, object] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SEC, "application_name": "aris3nb"}
    return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True, **kwargs)


@contextlib.contextmanager
def database_errors(url: str | URL, action: str) -> Iterator[None]:
    """Translate driver errors raised inside the block into ``Aris3nbError``s.

    Connection failures become ``DatabaseUnavailable`` (exit 2); other database errors an
    ``Aris3nbError`` naming ``action``. Messages are scrubbed of the URL's password.
    """
    secret = url_password(url)
    try:
        yield
    except Aris3nbError:
        raise
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = redact_text(_first_line(exc.orig if exc.orig is not None else exc), [secret])
        raise DatabaseUnavailable(f"cannot {action}: database {redact_url(url)} is unavailable: {reason}") from exc
    except sa.exc.DBAPIError as exc:
        reason = redact_text(_first_line(exc.orig if exc.orig is not None else exc), [secret])
        raise Aris3nbError(f"cannot {action} on {redact_url(url)}: {reason}") from exc
    except Exception as exc:
        # psycopg's own errors, raised by the driver directly (COPY on a raw cursor); none can
        # be raised before psycopg is loaded, so it is looked up, never imported (~0.1 s).
        psycopg = sys.modules.get("psycopg")
        if psycopg is None or not isinstance(exc, psycopg.Error):
            raise
        reason = redact_text(_first_line(exc), [secret])
        if isinstance(exc, psycopg.OperationalError):
            raise DatabaseUnavailable(f"cannot {action}: database {redact_url(url)} is unavailable: {reason}") from exc
        raise Aris3nbError(f"cannot {action} on {redact_url(url)}: {reason}") from exc


def check_connection(url: str | URL) -> None:
    """Connect once and run ``SELECT 1``; raise ``DatabaseUnavailable`` when that fails."""
    engine = create_engine(url)
    try:
        with database_errors(url, "connect"), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
