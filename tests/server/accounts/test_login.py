"""Logging in and out in the browser: sessions, redirects (throttling: test_throttle.py)."""

from __future__ import annotations

import json
import time
from base64 import b64encode

import itsdangerous
from sqlmodel import select
from starlette.applications import Starlette

from server.accounts import service
from server.accounts import sessions as session_service
from server.accounts.models import SessionKind, User
from server.audit.models import AuditEntry
from tests.support.web import Browser


def test_the_login_page_is_vietnamese_by_default(browser: Browser) -> None:
    page = browser.get("/login")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert "Đăng nhập" in page.text


def test_pages_redirect_to_login_with_next_and_return_there(browser: Browser) -> None:
    first = browser.get("/units/ct.ninh-kieu", follow_redirects=False)
    assert first.headers["location"] == "/login?next=/units/ct.ninh-kieu"
    response = browser.post(
        "/login",
        data={"username": "thuky", "password": "giaoban-demo", "next": "/units/ct.ninh-kieu", "csrf_token": browser.csrf()},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/units/ct.ninh-kieu"
    assert "HttpOnly" in response.headers["set-cookie"] or "httponly" in response.headers["set-cookie"]


def test_next_never_leads_off_the_site(browser: Browser) -> None:
    for target in ("https://evil.test/", "//evil.test/x", "/\\evil.test"):
        response = browser.post(
            "/login",
            data={"username": "thuky", "password": "giaoban-demo", "next": target, "csrf_token": browser.csrf()},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/", target
        browser.submit("/logout")


def test_the_header_shows_the_user_and_unit(browser: Browser) -> None:
    page = browser.login("thuky").get("/")
    assert "Nguyễn Thị Thu" in page.text and "Thành phố Cần Thơ" in page.text


def test_a_wrong_password_is_refused_with_a_clear_message_and_audited(browser: Browser, app: Starlette) -> None:
    response = browser.post("/login", data={"username": "thuky", "password": "sai", "csrf_token": browser.csrf()})
    assert response.status_code == 401
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in response.text
    with app.state.giaoban.db.session() as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "login_failed")).one()
        assert entry.target == "thuky"


def test_an_empty_form_is_a_422_not_a_lookup(browser: Browser) -> None:
    response = browser.post("/login", data={"username": " ", "password": "", "csrf_token": browser.csrf()})
    assert response.status_code == 422


def test_a_disabled_account_cannot_log_in(browser: Browser, app: Starlette) -> None:
    with app.state.giaoban.db.session() as session:
        service.set_active(session, service.by_username(session, "lanhdao"), False, actor=None)
    response = browser.post("/login", data={"username": "lanhdao", "password": "giaoban-demo", "csrf_token": browser.csrf()})
    assert response.status_code == 401


def test_logout_ends_the_session(browser: Browser) -> None:
    browser.login("thuky")
    browser.submit("/logout")
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_ignored(browser: Browser) -> None:
    payload = b64encode(json.dumps({"uid": 1, "av": 1}).encode()).decode()
    browser.cookies.set("giaoban_session", f"{payload}.forged.signature")
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_an_expired_session_cookie_is_ignored(browser: Browser, app: Starlette) -> None:
    with app.state.giaoban.db.session() as session:
        admin = session.exec(select(User).where(User.username == "admin")).one()
    max_age = app.state.giaoban.settings.session_max_age

    class OldSigner(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - max_age - 60

    sessions = app.state.giaoban.sessions  # a live server-side session: only the cookie's age is wrong
    secret = app.state.giaoban.db.call(
        session_service.start, admin, SessionKind.browser, lifetimes=sessions.lifetimes, now=sessions.clock()
    )
    payload = b64encode(json.dumps({"sid": secret}).encode())
    browser.cookies.set("giaoban_session", OldSigner(app.state.giaoban.settings.effective_secret_key).sign(payload).decode())
    assert browser.get("/", follow_redirects=False).status_code == 303
    # the same payload signed now is accepted: the test above failed for the age alone
    browser.cookies.set("giaoban_session", itsdangerous.TimestampSigner(app.state.giaoban.settings.effective_secret_key).sign(payload).decode())
    assert browser.get("/", follow_redirects=False).status_code == 200


def test_an_endpoint_logs_in_with_its_unit_code(browser: Browser) -> None:
    page = browser.login("ct.ninh-kieu.tan-an").get("/")
    assert "Phường Tân An" in page.text


def test_passwords_are_stored_as_argon2_hashes(app: Starlette) -> None:
    with app.state.giaoban.db.session() as session:
        hashes = session.exec(select(User.password_hash)).all()
    assert all(h.startswith("$argon2id$") for h in hashes)
