"""Bring a database to the schema the models describe, and check that they agree.

The same Alembic scripts serve ``alembic`` on the command line, the service and the tests;
this module is the programmatic door to them (``alembic.ini`` at the project root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from server.models import metadata as models_metadata

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration aimed at ``database_url`` (env.py reads it from attributes)."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """``alembic upgrade head``: an empty database gets the whole schema."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/
    command.upgrade(alembic_config(database_url), "head")


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    engine = sa.create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def pending_differences(
    database_url: str, metadata: sa.MetaData = models_metadata
) -> list[Any]:
    """What ``alembic check`` would complain about: the database against the models.

    Empty when the migrations create exactly what the models describe. ``metadata`` is
    replaceable so that a test can show the comparison does catch a difference.
    """
    engine = sa.create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            # compare_type as in migrations/env.py, so this and `alembic check` agree.
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()
