"""The demo a newcomer sees with `make run`: units, accounts with .test mailboxes, and the
city's weekly briefing already scheduled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import select

from server import demo
from server.accounts.models import User
from server.db import Database
from server.meetings import service as meetings
from server.meetings.models import Meeting
from server.migrate import upgrade_to_head
from server.workdays import service as workdays


def test_the_demo_has_accounts_mailboxes_and_the_weekly_briefing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade_to_head(url)
    db = Database(url)
    with db.session() as session:
        workdays.seed_if_empty(session)
        assert demo.load(session, "giaoban-demo")
    with db.session() as session:
        assert not demo.load(session, "giaoban-demo")  # loaded once only
        users = session.exec(select(User)).all()
        assert {"admin", "thuky", "lanhdao"} <= {u.username for u in users}
        assert all(u.email.endswith(".test") for u in users)
        assert {u.role for u in users if u.username == "ct.ninh-kieu.tan-an"} == {"endpoint"}
        briefing = session.exec(select(Meeting)).one()
        assert briefing.endpoints == 116 + 1
        secretary = session.exec(select(User).where(User.username == "thuky")).one()
        start = briefing.start
        found = meetings.list_occurrences(session, secretary, start, start + dt.timedelta(weeks=13))
        assert len(found) == 12
        assert all(o.start.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%a %H:%M") == "Mon 08:00" for o in found)
    db.dispose()
