"""The error hierarchy of aris3nb.

Every expected failure is an ``Aris3nbError``; the CLI catches that one type, prints
``FAILED: <message>`` on one line and exits with the error's ``exit_code``.
Third-party errors (SQLAlchemy, OSError, subprocess, httpx) are translated into these
at one boundary, with ``raise ... from exc``, and their messages never carry a password.

    Aris3nbError                      base; exit code 1 unless a subclass says otherwise
    ├── UsageError                    exit 2: the command could not act on its input
    │   ├── InvalidDatabaseUrl        a --database-url / DATABASE_URL that cannot be parsed
    │   └── InvalidSettings           an environment setting that does not validate
    ├── DatabaseUnavailable           exit 2: the database cannot be reached or refused us
    ├── MigrationError                exit 1: an Alembic operation failed
    └── SeedError                     exit 1: seeding could not complete
"""

from __future__ import annotations


class Aris3nbError(Exception):
    """Base of every expected aris3nb failure."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(Aris3nbError):
    """Raised when input given to a command cannot be acted on (exit 2)."""

    exit_code = 2


class InvalidDatabaseUrl(UsageError):
    """Raised when a database URL cannot be parsed or names an unsupported engine."""


class InvalidSettings(UsageError):
    """Raised when an environment setting does not validate."""


class DatabaseUnavailable(Aris3nbError):
    """Raised when the database cannot be reached, or refuses the connection (exit 2)."""

    exit_code = 2


class MigrationError(Aris3nbError):
    """Raised when an Alembic upgrade or downgrade fails."""


class SeedError(Aris3nbError):
    """Raised when seed data cannot be written (for example into a non-empty database)."""
