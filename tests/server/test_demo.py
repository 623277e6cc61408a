"""The demo a newcomer sees with `make run`: units, accounts with .test mailboxes, and the
city's weekly briefing already scheduled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlmodel import col, select

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
        briefing = session.exec(select(Meeting).where(Meeting.title == "Giao ban tuần — UBND thành phố")).one()
        assert briefing.endpoints == 116 + 1
        secretary = session.exec(select(User).where(User.username == "thuky")).one()
        start = briefing.start
        found = [o for o in meetings.list_occurrences(session, secretary, start, start + dt.timedelta(weeks=13))
                 if o.meeting.id == briefing.id]
        assert len(found) == 12
        assert all(o.start.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%a %H:%M") == "Mon 08:00" for o in found)
        # The practice rooms: whoever runs the demo can enter a room at any hour of the year.
        practice = session.exec(select(Meeting).where(col(Meeting.title).startswith(demo.PRACTICE_TITLE))).all()
        assert len(practice) == 2
        tan_an = session.exec(select(User).where(User.username == "ct.ninh-kieu.tan-an")).one()
        local = dt.timezone(dt.timedelta(hours=7))
        day = dt.datetime.now(local).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=3)
        for hour in range(0, 24, 1):
            now = (day + dt.timedelta(hours=hour, minutes=30)).astimezone(dt.UTC)
            opened = [m for m in practice if _open(session, m, tan_an, now)]
            assert opened, f"no practice room open at {hour}:30"
    db.dispose()


def _open(session: Any, meeting: Meeting, user: User, now: dt.datetime) -> bool:
    from server.rooms import access

    try:
        access.admit(session, meeting.id or 0, user=user, invite=None, occurrence=None, now=now,
                     opens_before=dt.timedelta(minutes=60), closes_after=dt.timedelta(minutes=120))
    except access.NotOpen:
        return False
    return True


PUBLISHED_KEY = "demo-only-secret-key-do-not-use-in-production"  # what the source once signed demos with


def test_a_demo_signs_everything_with_its_own_random_key(app: Any, settings: Any) -> None:
    """Links, tokens and cookies made with the key once published in the source are refused;
    the demo's own key (var/demo-secret-key) is the one every signer uses."""
    from itsdangerous import URLSafeSerializer

    from server.accounts.tokens import TokenSigner
    from server.rooms.access import JOIN_SALT, JoinLinks
    from server.settings import DEMO_KEY_FILE

    key = (settings.var_dir / DEMO_KEY_FILE).read_text().strip()
    state = app.state.giaoban
    assert state.join_links.read(URLSafeSerializer(PUBLISHED_KEY, salt=JOIN_SALT).dumps([1, 1])) is None
    assert state.join_links.read(JoinLinks(key).issue(1, 1)) == (1, 1)
    assert state.token_signer.read(TokenSigner(PUBLISHED_KEY, 3600).issue("secret")) is None
    assert state.token_signer.read(TokenSigner(key, 3600).issue("secret")) == "secret"
    session_layer = next(m for m in app.user_middleware if m.cls.__name__ == "SessionMiddleware")
    assert session_layer.kwargs["secret_key"] == key
