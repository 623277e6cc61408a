"""Two secretaries save the same meeting at the same moment: one wins, the other gets 409 and
nothing of theirs is written — on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server import demo
from server.accounts import service as accounts
from server.db import Database
from server.errors import Conflict
from server.meetings import service
from server.meetings.participants import Choice
from server.migrate import upgrade_to_head
from server.workdays import service as workdays

LOCAL = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        url = request.getfixturevalue("postgres_server").new_database("race")
    upgrade_to_head(url)
    database = Database(url)
    with database.session() as session:
        workdays.seed_if_empty(session)
        demo.load(session, "giaoban-demo", meetings=False)
    yield database
    database.dispose()


def plan(title: str) -> service.MeetingInput:
    day = dt.date.today() + dt.timedelta(days=30)
    start = dt.datetime(day.year, day.month, day.day, 8, tzinfo=LOCAL)
    return service.MeetingInput(title=title, start=start, end=start + dt.timedelta(hours=1), host_unit="ct",
                                chair="lanhdao", kind="ad_hoc", participants=Choice(units=("ct.co-do",)))


def test_the_second_of_two_simultaneous_saves_is_refused(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.session() as session:
        thuky = accounts.by_username(session, "thuky")
        meeting, _ = service.create(session, thuky, plan("Bản đầu"), max_endpoints=150)
    meeting_id = meeting.id
    assert meeting_id is not None

    # Secretary A reads version 1 and is held just before writing, while B saves and commits.
    a_has_read, b_has_saved = threading.Event(), threading.Event()
    original = service.conflicts_of

    def held(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "secretary-a":
            a_has_read.set()
            assert b_has_saved.wait(20)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "conflicts_of", held)
    outcome: dict[str, Any] = {}

    def secretary_a() -> None:
        try:
            with db.session() as session:
                actor = accounts.by_username(session, "thuky")
                service.update(session, actor, meeting_id, plan("Bản của A"), version=1, max_endpoints=150)
            outcome["a"] = "saved"
        except Conflict as exc:
            outcome["a"] = exc

    thread = threading.Thread(target=secretary_a, name="secretary-a")
    thread.start()
    assert a_has_read.wait(20)
    with db.session() as session:
        actor = accounts.by_username(session, "thuky")
        service.update(session, actor, meeting_id, plan("Bản của B"), version=1, max_endpoints=150)
    b_has_saved.set()
    thread.join(30)
    assert not thread.is_alive()

    assert isinstance(outcome.get("a"), Conflict), outcome
    with db.session() as session:
        stored = service.get(session, meeting_id)
        assert (stored.title, stored.version) == ("Bản của B", 2)
