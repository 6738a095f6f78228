"""Alembic environment of the foreign target.

URL: ``alembic -x database_url=...``, else ``FOREIGN_DATABASE_URL``. Each revision runs in its
own transaction (``transaction_per_migration``), so a failed upgrade leaves the database at the
last revision that succeeded: on a fresh PostgreSQL database that is ``fr0001_baseline``,
because every later revision id is longer than Alembic's ``version_num VARCHAR(32)``.
``FOREIGN_WIDE_VERSION_TABLE=1`` creates or widens that column first (the documented
workaround); without it the defect is kept, as upstream ARIS3 has it.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from foreign_retail.db import create_engine, database_url, widen_version_table
from foreign_retail.models import metadata

WIDE_VERSION_TABLE_ENV = "FOREIGN_WIDE_VERSION_TABLE"

config = context.config
target_metadata = metadata

if config.config_file_name is not None and not config.attributes.get("library_call"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("database_url") or database_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url())
    try:
        with engine.connect() as connection:
            if os.environ.get(WIDE_VERSION_TABLE_ENV, "").lower() in ("1", "true", "yes"):
                print(f"{WIDE_VERSION_TABLE_ENV}: {widen_version_table(connection)}")
                connection.commit()
            if connection.dialect.name == "sqlite":
                # Batch operations rebuild SQLite tables; with foreign keys enforced the drop of
                # the old table would fail. The pragma is ignored inside a transaction.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                transaction_per_migration=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
