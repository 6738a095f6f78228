"""The server sessions aris3nb opens or starts on PostgreSQL, and how none is ever stranded.

Every session of one operation — aris3nb's own, pg_dump's, pg_restore's — carries one
``application_name`` made for that operation (``aris3nb-<op>-<pid>-<hex>``). When the
operation gives up (deadline, lock wait, error, Ctrl-C) its sessions are terminated by that
name from a fresh connection and the server is asked again until none is left: a killed
client tool does not end its server session, which would otherwise go on waiting for (or
holding) locks on the live database.

Lock waits are bounded too. aris3nb's own sessions set ``lock_timeout``; pg_dump gets
``--lock-wait-timeout``; pg_restore's archive sets ``lock_timeout = 0`` itself, so a
watchdog (``ToolWatch``) ends a tool whose session waits on a lock longer than allowed,
and names the session in the way.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aris3nb.core.db import create_engine, without_password
from aris3nb.core.errors import BackupError, DeadlineExceeded
from aris3nb.core.words import count

#: How long one of aris3nb's sessions (or a tool it runs) may wait for a lock by default.
LOCK_TIMEOUT_SEC = 15.0
_POLL_SEC = 0.25
_GONE_WAIT_SEC = 10.0
_QUERY_CHARS = 160


def session_name(operation: str) -> str:
    """A fresh ``application_name`` for one operation's sessions (at most 63 bytes)."""
    return f"aris3nb-{operation}-{os.getpid()}-{uuid.uuid4().hex[:8]}"[:63]


def lock_timeout_ms(lock_timeout_sec: float, remaining_sec: float | None) -> int:
    """The lock wait allowed, never beyond what is left of the operation's deadline."""
    seconds = lock_timeout_sec if remaining_sec is None else min(lock_timeout_sec, remaining_sec)
    return max(1, int(seconds * 1000))


@dataclass(frozen=True)
class Session:
    """Another session on a database, as ``pg_stat_activity`` shows it."""

    pid: int
    application_name: str
    user: str | None
    client: str | None
    state: str | None
    since_sec: float | None
    query: str
    wait: str | None
    holds_locks: bool

    def __str__(self) -> str:
        since = f"{max(0.0, self.since_sec):.0f} s" if self.since_sec is not None else "?"
        who = self.application_name or "(no application_name)"
        return (
            f"pid {self.pid} {who} user {self.user} from {self.client or 'local socket'}: {self.state} for {since}"
            f"{', waiting on ' + self.wait if self.wait else ''}{', holding locks' if self.holds_locks else ''}"
            f": {self.query!r}"
        )

    @property
    def in_the_way(self) -> bool:
        """A session that holds locks or an open transaction can block a restore; an idle one cannot."""
        return self.holds_locks or (self.state or "") not in ("idle", "")


@contextlib.contextmanager
def _admin(url: str) -> Iterator[sa.Connection]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET statement_timeout = 10000")
            conn.exec_driver_sql("SET lock_timeout = 5000")
            yield conn
    finally:
        engine.dispose()


_SESSIONS = """
SELECT a.pid, coalesce(a.application_name, ''), a.usename, host(a.client_addr), a.state,
       extract(epoch FROM now() - coalesce(a.xact_start, a.state_change)),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), {chars}),
       CASE WHEN a.wait_event_type IS NOT NULL THEN a.wait_event_type || ':' || a.wait_event END,
       EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
"""


def _sessions(conn: sa.Connection, where: str = "", **params: Any) -> list[Session]:
    rows = conn.execute(sa.text(_SESSIONS.format(chars=_QUERY_CHARS) + where + " ORDER BY a.pid"), params).all()
    return [
        Session(int(r[0]), r[1], r[2], r[3], r[4], float(r[5]) if r[5] is not None else None, r[6], r[7], bool(r[8]))
        for r in rows
    ]


def other_sessions(url: str, *, besides: str | None = None) -> list[Session]:
    """Every other client session connected to the database of ``url`` (but those of the
    operation named ``besides``: its own)."""
    with _admin(url) as conn:
        if besides is None:
            return _sessions(conn)
        return _sessions(
            conn,
            " AND NOT (a.application_name = :name OR a.application_name LIKE :prefix)",
            name=besides,
            prefix=besides.replace("_", "\\_") + "-%",
        )


def sessions_named(url: str, name: str) -> list[Session]:
    """The sessions of one operation: called ``name``, or ``name`` and a suffix (its tools')."""
    with _admin(url) as conn:
        return _sessions(
            conn,
            " AND (a.application_name = :name OR a.application_name LIKE :prefix)",
            name=name,
            prefix=name.replace("_", "\\_") + "-%",
        )


def terminate(url: str, pids: list[int]) -> None:
    """Terminate the given backends of the database of ``url``."""
    with _admin(url) as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def end_sessions_named(url: str, name: str) -> list[int]:
    """Terminate every session called ``name`` and wait until the server shows none.

    Returns the pids ended; raises ``BackupError`` when one is still there after waiting.
    Used when an operation gives up, so that nothing it started outlives it.
    """
    ended: list[int] = []
    stop = time.monotonic() + _GONE_WAIT_SEC
    while True:
        left = sessions_named(url, name)
        if not left:
            return ended
        if time.monotonic() > stop:
            raise BackupError(
                f"{count(len(left), 'server session')} of this operation ({name}) could not be ended: "
                f"{'; '.join(str(s) for s in left)}"
            )
        pids = [s.pid for s in left]
        terminate(url, pids)
        ended += [pid for pid in pids if pid not in ended]
        time.sleep(_POLL_SEC)


def blockers(conn: sa.Connection, name: str) -> list[Session]:
    """The sessions that block the sessions called ``name`` (``pg_blocking_pids``)."""
    return _sessions(
        conn,
        " AND a.pid IN (SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w "
        "WHERE w.application_name = :name)",
        name=name,
    )


def tool_environment(url: str, name: str) -> dict[str, str]:
    """The environment of a client tool for ``url``: its password (never on the command
    line) and its sessions' ``application_name``.

    The password travels as ``PGPASSWORD`` in this child's environment only (aris3nb's own
    is left alone), not as a temporary ``PGPASSFILE``: on Linux a process's environment
    (``/proc/<pid>/environ``) is readable by its own user and root only, as a 0600 file would
    be, and it never touches a disk — a passfile left behind by a killed run would be a
    password in a file."""
    _, password = without_password(url)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": name}
    env.pop("PGOPTIONS", None)
    if password:
        env["PGPASSWORD"] = password
    return env


class ToolWatch:
    """Waits for a client tool while keeping its server sessions within bounds.

    The tool is stopped, and its sessions terminated, when the deadline passes or when one
    of its sessions has waited on a lock longer than ``lock_timeout_sec``; the error then
    names the session in the way.
    """

    def __init__(
        self, process: subprocess.Popen[str], url: str, name: str, doing: str, lock_timeout_sec: float
    ) -> None:
        self.process, self.url, self.name, self.doing = process, url, name, doing
        self.lock_timeout_sec = lock_timeout_sec

    def wait(self, deadline_remaining: Any) -> None:
        """Poll until the tool ends; ``deadline_remaining()`` gives the seconds left (or None)."""
        waiting_since: float | None = None
        with _admin(self.url) as conn:
            while self.process.poll() is None:
                remaining = deadline_remaining()
                if remaining is not None and remaining <= 0:
                    self.give_up()
                    raise DeadlineExceeded(
                        f"timeout: {self.doing} ran past the deadline; its server sessions were ended"
                    )
                waits = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = :name AND wait_event_type = 'Lock'"
                    ),
                    {"name": self.name},
                ).scalar_one()
                if waits:
                    waiting_since = waiting_since or time.monotonic()
                    if time.monotonic() - waiting_since > self.lock_timeout_sec:
                        in_the_way = blockers(conn, self.name)
                        self.give_up()
                        raise BackupError(
                            f"{self.doing} waited more than {self.lock_timeout_sec:g} s for a lock and was stopped "
                            f"(nothing was changed); in the way: "
                            f"{'; '.join(str(s) for s in in_the_way) or 'a session that has since ended'}"
                        )
                else:
                    waiting_since = None
                try:
                    self.process.wait(timeout=_POLL_SEC)
                except subprocess.TimeoutExpired:
                    pass

    def give_up(self) -> None:
        """Stop the tool and end its server sessions; nothing of it is left running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        end_sessions_named(self.url, self.name)
