"""Alembic environment for the ARIS3 schema.

The URL comes from, in order: a connection handed over by aris3nb (``config.attributes``),
``alembic -x url=...``, the ``sqlalchemy.url`` option set by aris3nb, ``DATABASE_URL``, and
last the embedded default's SQLite file. Logging is configured only when run as the
``alembic`` command, so library callers keep their own.
"""

from logging.config import fileConfig

from alembic import context

from aris3nb.contract.models import Base
from aris3nb.core.db import create_engine
from aris3nb.core.settings import load_settings

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and not config.attributes.get("aris3nb_library_call"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or load_settings().default_database_url()
    )


def _configure(connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign keys
        # enforced the drop would fail on referenced rows. The pragma is a no-op inside a
        # transaction, so it is set before Alembic opens one; the check after the upgrade
        # proves no reference was broken.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    _configure(connection)
    before = context.get_context().get_current_heads()
    with context.begin_transaction():
        context.run_migrations()
    # Only a migration that ran can have broken a reference (and the check reads every row).
    if connection.dialect.name == "sqlite" and context.get_context().get_current_heads() != before:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left {len(broken)} broken foreign key reference(s), first: {broken[0]}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), create_sqlite_parent=True)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
