"""How Alembic reaches the database; see alembic.ini for where the URL comes from."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

from server.models import metadata
from server.settings import load_settings

config = context.config

# Only the command line configures logging: when the service or a test calls Alembic
# (cmd_opts is None then), rewriting the process's logging would clobber theirs.
if config.cmd_opts is not None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata

# The migration scripts are shared by SQLite and PostgreSQL, and SQLite can alter a table only
# by copying it, so every generated ALTER is written as a batch operation (a plain ALTER on
# PostgreSQL). compare_type makes `alembic check` notice a changed column type, not only a
# missing column; server.migrate.pending_differences compares with the same options.
CONFIGURE_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "render_as_batch": True,
}


def database_url() -> str:
    """The URL passed by the caller, else ``-x database_url=...``, else the settings."""
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    url = context.get_x_argument(as_dictionary=True).get("database_url")
    if url:
        return url
    return load_settings().database_url


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    context.configure(
        url=database_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **CONFIGURE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: sa.Connection) -> None:
    context.configure(connection=connection, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A caller that already holds a connection (a test inside its own transaction) passes it;
    # committing that transaction is then the caller's business.
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    # Not server.db.create_db_engine: its SQLite connections turn foreign keys on, which makes
    # a batch "copy and drop the table" fail or cascade. NullPool leaves no connection behind.
    engine = sa.create_engine(database_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
