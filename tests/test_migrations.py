"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session, select

from server.db import create_db_engine
from server.migrate import (
    alembic_config,
    current_revision,
    pending_differences,
    upgrade_to_head,
)
from server.models import metadata
from server.units.models import Unit
from tests.support.postgres import PostgresServer

APP_TABLES = set(metadata.tables)  # every table the models describe


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the service supports, as a SQLAlchemy URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'giaoban.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database(f"migrations_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'giaoban.db'}"



def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from server.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # compare_metadata groups column modifications of one column in a nested list.
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def test_upgrade_head_on_an_empty_database_creates_what_the_models_describe(
    empty_database: str,
) -> None:
    assert current_revision(empty_database) is None

    upgrade_to_head(empty_database)

    assert current_revision(empty_database) == head_revision()
    assert table_names(empty_database) == APP_TABLES | {"alembic_version"}
    assert pending_differences(empty_database) == []
    # What CI runs: `alembic check` through env.py raises if anything differs.
    command.check(alembic_config(empty_database))


def test_downgrade_to_base_and_upgrade_again(sqlite_url: str) -> None:
    upgrade_to_head(sqlite_url)

    command.downgrade(alembic_config(sqlite_url), "base")
    assert current_revision(sqlite_url) is None
    assert table_names(sqlite_url) == {"alembic_version"}

    upgrade_to_head(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()
    assert pending_differences(sqlite_url) == []


def test_the_comparison_reports_a_model_change_that_has_no_migration(
    empty_database: str,
) -> None:
    """Guards the guard: an empty difference list means something only if this fails."""
    upgrade_to_head(empty_database)
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    units = changed.tables["units"]
    units.append_column(sa.Column("nickname", sa.String(50), nullable=True))
    units.c.name.type = sa.String(300)  # was 200: only compare_type notices this
    sa.Table("rooms", changed, sa.Column("id", sa.Integer, primary_key=True))

    details = flatten(pending_differences(empty_database, changed))
    assert any(d[0] == "add_column" and d[3].name == "nickname" for d in details)
    assert any(d[0] == "add_table" and d[1].name == "rooms" for d in details)
    assert any(d[0] == "modify_type" and d[2:4] == ("units", "name") for d in details)


def test_env_uses_a_connection_handed_to_it(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config("sqlite:///nowhere-this-url-must-not-be-used.db")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()

    assert not Path("nowhere-this-url-must-not-be-used.db").exists()
    assert current_revision(sqlite_url) == head_revision()
    assert pending_differences(sqlite_url) == []


def test_postgresql_keeps_vietnamese_names_and_utc_times(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database("unicode_and_time")
    upgrade_to_head(url)
    name = unicodedata.normalize("NFC", "Phường Tân An")
    created = dt.datetime(2024, 3, 5, 1, 30, 15, 123456, tzinfo=dt.UTC)
    # Entered in Vietnam's time: the same instant must come back, in UTC.
    updated = dt.datetime(2024, 3, 5, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))

    engine = create_db_engine(url)
    try:
        with Session(engine) as session:
            session.add(
                Unit(
                    code="31117",
                    level="xa",
                    kind="Phường",
                    name=name,
                    search_key="phuong tan an",
                    created_at=created,
                    updated_at=updated,
                )
            )
            session.commit()

        with Session(engine) as session:
            unit = session.exec(select(Unit).where(Unit.code == "31117")).one()
            stored = session.execute(
                sa.text("SELECT name, created_at::text FROM units WHERE code = '31117'")
            ).one()
    finally:
        engine.dispose()

    assert unit.name == name
    assert unicodedata.is_normalized("NFC", unit.name)
    assert unit.created_at == created
    assert unit.created_at.tzinfo == dt.UTC
    assert unit.updated_at == dt.datetime(2024, 3, 5, 1, 30, tzinfo=dt.UTC)
    assert unit.updated_at.tzinfo == dt.UTC
    # In the database itself: the very same characters, and the time as naive UTC.
    assert stored == (name, "2024-03-05 01:30:15.123456")
