"""Alembic, driven from the library: upgrade, downgrade, and the revisions a database and
the code are at. The ``alembic`` command and these functions share ``migrations/env.py``;
installed, these functions use the copy of ``migrations/`` and ``alembic.ini`` shipped in the
package (``aris3nb.resources``), from any folder.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import URL

from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.core.errors import MigrationError
from aris3nb.core.redact import redact_url
from aris3nb.resources import ALEMBIC_INI, MIGRATIONS_DIR


def alembic_config(url: str | URL | None = None, script_location: Path | None = None) -> Config:
    """An Alembic config for the ARIS3 migrations (or another script directory, as the
    gate's tests use), independent of the working directory."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    # The ini's "prepend_sys_path = ." is for the `alembic` command run in the checkout; a
    # library call has aris3nb imported already and must not put whatever folder it runs
    # from on sys.path (once more per call).
    cfg.remove_main_option("prepend_sys_path")
    cfg.attributes["aris3nb_library_call"] = True
    if url is not None:
        rendered = parse_database_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The revision the code's migrations end at (there is exactly one head)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"expected one migration head, found {len(heads)}: {', '.join(sorted(heads))}")
    return heads[0]


def current_revision(url: str | URL) -> str | None:
    """The revision a database is at, or None when it has never been migrated."""
    engine = create_engine(url)
    try:
        with database_errors(url, "read the schema revision"), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


#: How long a migration waits for a table lock (a backup or a long query holding it) before it
#: fails with the reason, instead of queueing every query on that table behind its ALTER.
MIGRATION_LOCK_TIMEOUT_SEC = 15.0


def _run(action: str, url: str | URL, revision: str, script_location: Path | None = None) -> None:
    cfg = alembic_config(url, script_location)
    engine = create_engine(url, create_sqlite_parent=True)
    try:
        with database_errors(url, action), engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # an ALTER waiting on a lock queues every query behind it: bounded
                conn.exec_driver_sql(f"SET lock_timeout = {int(MIGRATION_LOCK_TIMEOUT_SEC * 1000)}")
                conn.commit()
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
            conn.commit()
    except (sa.exc.SQLAlchemyError, RuntimeError) as exc:
        raise MigrationError(f"{action} to {revision} failed on {redact_url(url)}: {exc}") from exc
    except (CommandError, RevisionError) as exc:
        # Alembic's own refusal (a database at a revision these migrations do not know, say a
        # foreign target's; an unknown REVISION): one line naming it, not a traceback.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MigrationError(f"{action} to {revision} failed on {redact_url(url)}: {reason}") from exc
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head", script_location: Path | None = None) -> None:
    """Bring the database up to ``revision`` (default: the code's head)."""
    _run("upgrade", url, revision, script_location)


def downgrade(url: str | URL, revision: str = "base", script_location: Path | None = None) -> None:
    """Take the database down to ``revision`` (default: nothing of the schema left)."""
    _run("downgrade", url, revision, script_location)
