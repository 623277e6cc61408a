"""Sessions and tokens that end: a server-side record behind every cookie and bearer token."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.accounts import service
from server.accounts import sessions as auth_sessions
from server.accounts.models import AuthSession, SessionKind, User
from server.accounts.sessions import PURGE_BATCH, TableSessionStore
from server.app import create_app
from server.audit.models import AuditEntry
from server.db import utcnow
from server.settings import Settings, load_settings
from tests.support.web import Browser, api_token, other_browser

COOKIE = "giaoban_session"


class Clock:
    """The sessions' "now", stepped by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def store(app: Starlette) -> TableSessionStore:
    sessions = app.state.giaoban.sessions
    assert isinstance(sessions, TableSessionStore)
    return sessions


def copy_of(app: Starlette, client: TestClient) -> Browser:
    """Another browser holding a copy of ``client``'s session cookie (a stolen cookie)."""
    thief = other_browser(app)
    thief.cookies.set(COOKIE, client.cookies[COOKIE])
    return thief


def me(client: TestClient, headers: dict[str, str] | None = None) -> int:
    return client.get("/api/me", headers=headers or {}).status_code


def rows(app: Starlette, username: str) -> list[AuthSession]:
    with app.state.giaoban.db.session() as session:
        user = session.exec(select(User).where(User.username == username)).one()
        return list(session.exec(select(AuthSession).where(AuthSession.user_id == user.id)).all())


def session_cookie(app: Starlette, data: dict[str, object]) -> str:
    """A session cookie signed with the app's own key, as Starlette's SessionMiddleware writes it."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(app.state.giaoban.settings.effective_secret_key).sign(payload).decode()


# -- logout and token revocation ---------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works_after_it(browser: Browser, app: Starlette) -> None:
    browser.login("thuky")
    thief = copy_of(app, browser)
    assert me(thief) == 200 and thief.get("/account/sessions").status_code == 200

    assert browser.submit("/logout").status_code == 200  # followed to the login page

    assert me(thief) == 401
    page = thief.get("/account/sessions", follow_redirects=False)
    assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")
    ended = rows(app, "thuky")
    assert [(r.revoked_reason, r.revoked_at is not None) for r in ended] == [("logout", True)]
    # Only the secret's hash is stored, never the secret the cookie carries.
    assert all(len(r.secret_hash) == 64 for r in ended)


def test_a_token_revoked_by_delete_no_longer_works(browser: Browser) -> None:
    headers = api_token(browser, "thuky")
    other = api_token(browser, "thuky")
    assert me(browser, headers) == 200

    assert browser.delete("/api/auth/token", headers=headers).status_code == 204

    response = browser.get("/api/me", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert browser.delete("/api/auth/token", headers=headers).status_code == 401
    assert me(browser, other) == 200  # the person's other token lives on


def test_revoking_a_token_needs_a_token(browser: Browser) -> None:
    browser.login("thuky")
    csrf = browser.csrf()
    response = browser.delete("/api/auth/token", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert me(browser) == 200  # the browser session was not ended by it
    assert browser.delete("/api/auth/token").status_code == 403  # a cookie request without CSRF


# -- ends that take every session and token of a person ------------------------------------------


ADMIN_ACTIONS: dict[str, tuple[str, dict[str, str], str]] = {
    "password reset": ("/admin/users/lanhdao/password", {"password": "mat-khau-moi-2026"}, "password_reset"),
    "disable": ("/admin/users/lanhdao/active", {"active": "0"}, "user_disabled"),
    "end all sessions": ("/admin/users/lanhdao/sessions/end", {}, "sessions_ended"),
}


@pytest.mark.parametrize("action", list(ADMIN_ACTIONS))
def test_an_administrators_action_ends_every_cookie_and_token_of_the_person(browser: Browser, app: Starlette, action: str) -> None:
    url, data, audited = ADMIN_ACTIONS[action]
    person = other_browser(app).login("lanhdao")
    second_browser = other_browser(app).login("lanhdao")
    token = api_token(browser, "lanhdao")
    assert me(person) == me(second_browser) == me(browser, token) == 200
    browser.login("admin")

    assert browser.submit(url, data).status_code == 200

    assert me(person) == 401 and me(second_browser) == 401 and me(browser, token) == 401
    assert {r.revoked_at is not None for r in rows(app, "lanhdao")} == {True}
    assert me(browser) == 200  # the administrator's own session is untouched
    with app.state.giaoban.db.session() as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == audited)).one()
    assert entry.actor == "admin" and entry.target == "lanhdao"
    if action == "end all sessions":
        assert json.loads(entry.detail)["count"] == 3
        assert "Đã kết thúc 3 phiên đăng nhập." in browser.get("/admin/users/lanhdao?ended=3").text
        assert other_browser(app).login("lanhdao")  # the account stays enabled


def test_a_password_reset_through_the_service_ends_sessions_in_its_transaction(browser: Browser, app: Starlette) -> None:
    """The reset ends the rows, not only the auth_version: a reset that was rolled back ends nothing."""
    browser.login("lanhdao")
    with pytest.raises(RuntimeError), app.state.giaoban.db.session() as session:
        service.reset_password(session, service.by_username(session, "lanhdao"), actor=None, password="mat-khau-moi-2026")
        raise RuntimeError("rolled back")
    assert me(browser) == 200
    with app.state.giaoban.db.session() as session:
        service.reset_password(session, service.by_username(session, "lanhdao"), actor=None, password="mat-khau-moi-2026")
    assert me(browser) == 401
    assert [r.revoked_reason for r in rows(app, "lanhdao")] == ["password"]


# -- idle time and absolute lifetime -------------------------------------------------------------


@pytest.fixture
def short_app(settings: Settings, tmp_path: Path) -> Iterator[tuple[Starlette, Clock]]:
    """The app with small lifetimes (idle 10 min, at most 30 min; tokens 5 and 20) and a clock."""
    small = load_settings(
        database_url=settings.database_url, demo=True, var_dir=tmp_path / "var", demo_password="giaoban-demo",
        session_idle_seconds=600, session_max_age=1800, token_idle_seconds=300, token_max_age=1200,
    )
    application = create_app(small)
    clock = Clock()
    store(application).clock = clock
    yield application, clock
    application.state.giaoban.db.dispose()


def test_a_session_ends_after_its_idle_time_and_use_keeps_it_alive(short_app: tuple[Starlette, Clock]) -> None:
    app, clock = short_app
    with Browser(app) as browser:
        token = api_token(browser, "thuky")  # before the login: a cookie request would need CSRF
        browser.login("thuky")
        clock.advance(seconds=590)  # inside the browser's 600 s, past the token's 300 s
        assert me(browser) == 200 and me(browser, token) == 401
        clock.advance(seconds=590)  # 590 s after the last use: still alive (1180 s after the login)
        assert me(browser) == 200
        clock.advance(seconds=601)  # unused for longer than the idle time
        assert me(browser) == 401
        assert browser.get("/account/sessions", follow_redirects=False).headers["location"].startswith("/login")


def test_a_session_ends_at_its_absolute_lifetime_however_busy(short_app: tuple[Starlette, Clock]) -> None:
    app, clock = short_app
    with Browser(app) as browser:
        token = api_token(browser, "thuky")  # before the login: a cookie request would need CSRF
        browser.login("thuky")
        for _ in range(3):  # 3 × 290 s: never idle, 870 s in
            clock.advance(seconds=290)
            assert me(browser) == 200 and me(browser, token) == 200
        clock.advance(seconds=290)  # 1160 s: the token's 1200 s lifetime is near, still alive
        assert me(browser, token) == 200 and me(browser) == 200
        clock.advance(seconds=290)  # 1450 s: past the token's lifetime
        assert me(browser, token) == 401 and me(browser) == 200
        clock.advance(seconds=290)  # 1740 s
        assert me(browser) == 200
        clock.advance(seconds=70)  # 1810 s: past the session's 1800 s lifetime
        assert me(browser) == 401


def test_last_use_is_written_at_most_once_a_minute(short_app: tuple[Starlette, Clock]) -> None:
    app, clock = short_app
    with Browser(app) as browser:
        browser.login("thuky")
        [row] = rows(app, "thuky")
        started = row.last_seen_at
        clock.advance(seconds=59)
        assert me(browser) == 200
        assert rows(app, "thuky")[0].last_seen_at == started
        clock.advance(seconds=2)
        assert me(browser) == 200
        assert rows(app, "thuky")[0].last_seen_at == clock.now


def test_dead_rows_are_purged_at_login_a_batch_at_a_time(short_app: tuple[Starlette, Clock]) -> None:
    app, clock = short_app
    with Browser(app) as browser:
        for _ in range(3):
            api_token(browser, "thuky")
        clock.advance(seconds=301)  # every token idle too long
        assert len(rows(app, "thuky")) == 3
        api_token(browser, "thuky")
        assert len(rows(app, "thuky")) == 1
        for _ in range(3):
            api_token(browser, "thuky")
        clock.advance(seconds=301)
        purged = app.state.giaoban.db.call(auth_sessions.purge, now=clock(), lifetimes=store(app).lifetimes, limit=3)
        assert purged == 3 and len(rows(app, "thuky")) == 1  # at most `limit` a call: bounded work
    assert PURGE_BATCH >= 100


# -- the person's own sessions page ------------------------------------------------------------


def test_the_sessions_page_lists_and_ends_sessions(browser: Browser, app: Starlette) -> None:
    token = api_token(browser, "thuky")
    browser.login("thuky")
    laptop = other_browser(app)
    laptop.headers["user-agent"] = "Firefox/133.0 (the laptop)"
    laptop.login("thuky")

    page = browser.get("/account/sessions")
    assert page.status_code == 200
    assert page.text.count('action="/account/sessions/') == 4  # three "end" forms and "end all others"
    assert page.text.count("<tr aria-current=\"true\">") == 1 and "Firefox/133.0 (the laptop)" in page.text
    assert "/account/sessions" in browser.get("/").text  # linked from the header

    listing = browser.get("/api/auth/sessions").json()
    assert listing["total"] == 3 and [s["current"] for s in listing["items"]].count(True) == 1
    laptop_id = next(s["id"] for s in listing["items"] if s["user_agent"].startswith("Firefox"))
    assert {s["kind"] for s in listing["items"]} == {"browser", "token"}

    response = browser.submit(f"/account/sessions/{laptop_id}/end")
    assert response.status_code == 200 and "/account/sessions" in str(response.url)
    assert me(laptop) == 401 and me(browser) == 200 and me(browser, token) == 200

    browser.submit("/account/sessions/end-others")
    assert me(browser, token) == 401 and me(browser) == 200
    assert browser.get("/api/auth/sessions").json()["total"] == 1
    with app.state.giaoban.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.actor == "thuky")).all()]
    assert "session_ended" in actions and "sessions_ended" in actions

    # Ending this one is a logout.
    [mine] = browser.get("/api/auth/sessions").json()["items"]
    thief = copy_of(app, browser)
    response = browser.submit(f"/account/sessions/{mine['id']}/end")
    assert "/login" in str(response.url) and me(browser) == 401 and me(thief) == 401


def test_one_cannot_end_another_persons_session(browser: Browser, app: Starlette) -> None:
    victim = other_browser(app).login("lanhdao")
    [victim_row] = rows(app, "lanhdao")
    token = api_token(browser, "thuky")
    browser.login("thuky")

    assert browser.delete(f"/api/auth/sessions/{victim_row.id}", headers=token).status_code == 404
    browser.submit(f"/account/sessions/{victim_row.id}/end")
    assert me(victim) == 200
    assert browser.delete("/api/auth/sessions/abc", headers=token).status_code == 404
    assert browser.delete("/api/auth/sessions/99999999", headers=token).status_code == 404
    [own] = [s for s in browser.get("/api/auth/sessions", headers=token).json()["items"] if s["current"]]
    assert browser.delete(f"/api/auth/sessions/{own['id']}", headers=token).status_code == 204
    assert me(browser, token) == 401


@pytest.mark.parametrize("url", ["/account/sessions/{id}/end", "/account/sessions/end-others", "/admin/users/lanhdao/sessions/end"])
def test_the_session_forms_need_the_csrf_token(browser: Browser, app: Starlette, url: str) -> None:
    person = other_browser(app).login("lanhdao")
    [row] = rows(app, "lanhdao")
    browser.login("admin" if url.startswith("/admin") else "lanhdao")
    target = url.format(id=row.id)

    assert browser.post(target, data={}).status_code == 403
    assert browser.post(target, data={"csrf_token": "forged"}).status_code == 403
    assert me(person) == 200
    assert browser.submit(target).status_code == 200  # with the page's token it works
    assert me(person) == 401


def test_the_admin_account_page_shows_live_sessions(browser: Browser, app: Starlette) -> None:
    other_browser(app).login("lanhdao")
    api_token(browser, "lanhdao")
    browser.login("admin")
    page = browser.get("/admin/users/lanhdao")
    assert page.status_code == 200 and 'action="/admin/users/lanhdao/sessions/end"' in page.text
    assert "<dd>2</dd>" in page.text


# -- forged, garbage and stale credentials --------------------------------------------------------


def test_forged_and_garbage_session_ids_are_anonymous_never_a_500(browser: Browser, app: Starlette) -> None:
    signer = app.state.giaoban.token_signer
    key = app.state.giaoban.settings.effective_secret_key
    tokens = [
        "garbage",
        "a.b.c",
        signer.issue("not-a-session-we-made"),
        signer.issue("x" * 10_000),
        URLSafeTimedSerializer(key, salt="giaoban.api-token").dumps([1, 1]),  # the earlier token form
        URLSafeTimedSerializer(key, salt="giaoban.api-token").dumps({"s": 12}),
        URLSafeTimedSerializer("another-key", salt="giaoban.api-token").dumps({"s": "x"}),
    ]
    for token in tokens:
        response = browser.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "not_authenticated"

    cookies: list[dict[str, object]] = [
        {"sid": "not-a-session-we-made"}, {"sid": 12}, {"sid": ["a"]}, {"sid": "x" * 10_000},
        {"uid": 1, "av": 1},  # a cookie from before server-side sessions
    ]
    for data in cookies:
        client = other_browser(app)
        client.cookies.set(COOKIE, session_cookie(app, data))
        assert me(client) == 401, data
        response = client.get("/account/sessions", follow_redirects=False)
        assert response.status_code in (302, 303), data
        assert client.get("/login").status_code == 200


def test_a_session_of_the_other_kind_is_refused(browser: Browser, app: Starlette) -> None:
    """A token's secret in a cookie (or the reverse) names no live session of that kind."""
    def new_token_secret(session: Session) -> str:
        user = session.exec(select(User).where(User.username == "thuky")).one()
        return auth_sessions.start(session, user, SessionKind.token, lifetimes=store(app).lifetimes, now=utcnow())

    token_secret = app.state.giaoban.db.call(new_token_secret)
    client = other_browser(app)
    client.cookies.set(COOKIE, session_cookie(app, {"sid": token_secret}))
    assert me(client) == 401
    assert me(client, {"Authorization": f"Bearer {app.state.giaoban.token_signer.issue(token_secret)}"}) == 200


# -- the room's socket ---------------------------------------------------------------------------


def socket_error(client: TestClient, headers: dict[str, str]) -> tuple[str, int]:
    """Open the room socket of a meeting that does not exist: a known person is told
    "not_found", an unknown one "not_authenticated" (identification comes first)."""
    with client.websocket_connect("/ws/meetings/999999", headers=headers) as ws:
        error = ws.receive_json()
        closed = ws.receive()
    return error["code"], closed["code"]


def test_a_revoked_session_or_token_cannot_open_a_room_socket(browser: Browser, app: Starlette) -> None:
    origin = {"origin": app.state.giaoban.settings.effective_public_url}
    token = api_token(browser, "canbo.tanan")
    browser.login("canbo.tanan")
    assert socket_error(browser, origin) == ("not_found", 4404)
    assert socket_error(browser, token) == ("not_found", 4404)
    thief = copy_of(app, browser)

    browser.delete("/api/auth/token", headers=token)
    browser.submit("/logout")

    assert socket_error(thief, origin) == ("not_authenticated", 4401)
    assert socket_error(browser, token) == ("not_authenticated", 4401)
