"""API tokens: issued for a password, taken as a bearer, revoked by a reset."""

from __future__ import annotations

import time

from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette

from server.accounts import service
from tests.support.web import Browser, api_token


def test_a_token_for_a_password(browser: Browser) -> None:
    response = browser.post("/api/auth/token", json={"username": "thuky", "password": "giaoban-demo"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    me = browser.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me == {
        "username": "thuky", "full_name": "Nguyễn Thị Thu", "email": "thuky@cantho.gov.vn.test",
        "role": "secretary", "unit": "ct", "unit_name": "Thành phố Cần Thơ",
    }


def test_wrong_credentials_get_401_in_the_error_format(browser: Browser) -> None:
    response = browser.post("/api/auth/token", json={"username": "thuky", "password": "nope"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "not_authenticated" and error["message"] and error["fields"] == {}


def test_a_malformed_body_gets_422_naming_the_fields(browser: Browser) -> None:
    assert browser.post("/api/auth/token", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    response = browser.post("/api/auth/token", json={"username": "thuky"})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"password"}


def test_api_without_credentials_is_401_json(browser: Browser) -> None:
    response = browser.get("/api/units")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_forged_or_expired_token_is_refused(browser: Browser, app: Starlette) -> None:
    assert browser.get("/api/me", headers={"Authorization": "Bearer abc.def.ghi"}).status_code == 401
    forged = URLSafeTimedSerializer("another-secret", salt="giaoban.api-token").dumps([1, 1])
    assert browser.get("/api/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401

    class Old(URLSafeTimedSerializer):
        def make_signer(self, salt=None):  # type: ignore[no-untyped-def]
            signer = super().make_signer(salt)
            signer.get_timestamp = lambda: int(time.time()) - app.state.giaoban.settings.token_max_age - 10  # type: ignore[method-assign]
            return signer

    expired = Old(app.state.giaoban.settings.effective_secret_key, salt="giaoban.api-token").dumps([1, 1])
    response = browser.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_password_reset_revokes_existing_tokens(browser: Browser, app: Starlette) -> None:
    headers = api_token(browser, "lanhdao")
    assert browser.get("/api/me", headers=headers).status_code == 200
    with app.state.giaoban.db.session() as session:
        service.reset_password(session, service.by_username(session, "lanhdao"), actor=None, password="mat-khau-moi-2026")
    assert browser.get("/api/me", headers=headers).status_code == 401
    assert api_token(browser, "lanhdao", "mat-khau-moi-2026")


def test_the_api_also_takes_the_session_cookie(browser: Browser) -> None:
    browser.login("thuky")
    assert browser.get("/api/me").json()["username"] == "thuky"
