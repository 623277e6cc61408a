"""CSRF: every form and every cookie-authenticated unsafe API call needs the session's token."""

from __future__ import annotations

from sqlmodel import select
from starlette.applications import Starlette

from server.accounts.models import User
from tests.support.web import Browser, api_token


def user_count(app: Starlette) -> int:
    with app.state.giaoban.db.session() as session:
        return len(session.exec(select(User)).all())


NEW_USER = {"username": "canbo.moi", "full_name": "Cán bộ Mới", "email": "canbo.moi@cantho.gov.vn.test", "unit": "ct", "role": "official"}


def test_a_form_without_the_token_is_refused_and_changes_nothing(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    before = user_count(app)
    response = browser.post("/admin/users/new", data=NEW_USER)
    assert response.status_code == 403
    assert "tải lại trang" in response.text
    assert user_count(app) == before


def test_a_form_with_a_forged_token_is_refused(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    before = user_count(app)
    response = browser.post("/admin/users/new", data={**NEW_USER, "csrf_token": "forged"})
    assert response.status_code == 403
    assert user_count(app) == before
    assert browser.submit("/admin/users/new", NEW_USER).status_code == 201
    assert user_count(app) == before + 1


def test_the_login_form_needs_the_token_too(browser: Browser) -> None:
    response = browser.post("/login", data={"username": "thuky", "password": "giaoban-demo"})
    assert response.status_code == 403


def test_a_multipart_form_carries_its_token_in_the_body(browser: Browser) -> None:
    browser.login("admin")
    data = "code,parent_code,level,kind,name\nct.x,ct,ward,phường,X\n".encode()
    refused = browser.post("/admin/units/import", files={"file": ("u.csv", data, "text/csv")})
    assert refused.status_code == 403
    accepted = browser.submit("/admin/units/import", files={"file": ("u.csv", data, "text/csv")})
    assert accepted.status_code == 200


def test_api_calls_with_the_session_cookie_need_the_header(browser: Browser) -> None:
    browser.login("thuky")
    body = {"username": "thuky", "password": "giaoban-demo"}
    refused = browser.post("/api/auth/token", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
    accepted = browser.post("/api/auth/token", json=body, headers={"X-CSRF-Token": browser.csrf()})
    assert accepted.status_code == 200


def test_bearer_requests_need_no_csrf_token(app: Starlette) -> None:
    with Browser(app) as client:
        headers = api_token(client, "thuky")
        assert client.get("/api/me", headers=headers).json()["username"] == "thuky"
