"""Administrators manage accounts; every change lands in the audit log."""

from __future__ import annotations

from sqlmodel import func, select
from starlette.applications import Starlette

from server.accounts.models import User
from server.audit.models import AuditEntry
from tests.support.web import Browser, other_browser

PERSON = {"username": "canbo.an", "full_name": "Võ Thị An", "email": "canbo.an@cantho.gov.vn.test", "unit": "ct.ninh-kieu.an-hoa", "role": "official"}


def users(app: Starlette) -> int:
    with app.state.giaoban.db.session() as session:
        return int(session.exec(select(func.count()).select_from(User)).one())


def audit_actions(app: Starlette) -> list[str]:
    with app.state.giaoban.db.session() as session:
        return list(session.exec(select(AuditEntry.action).order_by(AuditEntry.id)).all())


def test_only_administrators_see_the_admin_pages(browser: Browser) -> None:
    browser.login("thuky")
    for url in ("/admin/users", "/admin/users/new", "/admin/users/import", "/admin/audit", "/admin/users/thuky"):
        assert browser.get(url).status_code == 403, url


def test_admin_creates_an_account_that_can_log_in(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    page = browser.submit("/admin/users/new", {**PERSON, "password": "mat-khau-an-2026"})
    assert page.status_code == 201 and "canbo.an" in page.text
    other = other_browser(app).login("canbo.an", "mat-khau-an-2026")
    assert "Phường An Hòa" in other.get("/").text
    assert "user_created" in audit_actions(app)


def test_a_generated_password_is_shown_once(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    page = browser.submit("/admin/users/new", PERSON)
    password = page.text.split('<code class="secret">')[1].split("</code>")[0]
    other_browser(app).login("canbo.an", password)


def test_invalid_fields_are_marked_and_nothing_is_created(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    before = users(app)
    page = browser.submit(
        "/admin/users/new",
        {"username": "thuky", "full_name": "", "email": "not-mail", "unit": "ct.khong-co", "role": "root", "password": "short"},
    )
    assert page.status_code == 422
    assert page.text.count('class="field-error"') == 6
    assert users(app) == before


def test_a_username_cannot_take_a_unit_code(browser: Browser) -> None:
    browser.login("admin")
    page = browser.submit("/admin/users/new", {**PERSON, "username": "ct.ninh-kieu"})
    assert page.status_code == 422


CSV_OK = (
    "username,full_name,email,unit_code,role\n"
    "canbo.a,Nguyễn Văn A,a@cantho.gov.vn.test,ct.ninh-kieu.cai-khe,official\n"
    "thuky.cairang,Trần Thị B,b@cantho.gov.vn.test,ct.cai-rang,secretary\n"
)


def test_officials_are_imported_in_bulk(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    before = users(app)
    page = browser.submit("/admin/users/import", files={"file": ("people.csv", CSV_OK.encode(), "text/csv")})
    assert page.status_code == 200
    assert users(app) == before + 2
    assert page.text.count('<code class="secret">') == 2


def test_a_bad_officials_file_names_each_line_and_imports_nothing(browser: Browser, app: Starlette) -> None:
    browser.login("admin")
    before = users(app)
    bad = CSV_OK + "canbo.a,Trùng Tên,c@cantho.gov.vn.test,ct,official\nx,Tên,d@x.test,ct.khong-co,official\n"
    page = browser.submit("/admin/users/import", files={"file": ("people.csv", bad.encode(), "text/csv")})
    assert page.status_code == 422
    assert "ct.khong-co" in page.text and "canbo.a" in page.text
    assert users(app) == before


def test_reset_password_ends_the_persons_sessions(browser: Browser, app: Starlette) -> None:
    person = other_browser(app).login("lanhdao")
    assert person.get("/", follow_redirects=False).status_code == 200
    browser.login("admin")
    page = browser.submit("/admin/users/lanhdao/password", {"password": "mat-khau-moi-2026"})
    assert page.status_code == 200
    assert person.get("/", follow_redirects=False).status_code == 303
    other_browser(app).login("lanhdao", "mat-khau-moi-2026")
    assert "password_reset" in audit_actions(app)


def test_a_short_reset_password_is_refused(browser: Browser) -> None:
    browser.login("admin")
    assert browser.submit("/admin/users/lanhdao/password", {"password": "123"}).status_code == 422


def test_disable_and_enable_an_account(browser: Browser, app: Starlette) -> None:
    person = other_browser(app).login("lanhdao")
    browser.login("admin")
    browser.submit("/admin/users/lanhdao/active", {"active": "0"})
    assert person.get("/", follow_redirects=False).status_code == 303
    refused = other_browser(app).post("/login", data={"username": "lanhdao", "password": "giaoban-demo", "csrf_token": other_browser(app).csrf()})
    assert refused.status_code in (401, 403)
    browser.submit("/admin/users/lanhdao/active", {"active": "1"})
    other_browser(app).login("lanhdao")
    assert audit_actions(app)[-3:] == ["user_disabled", "user_enabled", "login"]


def test_an_admin_cannot_disable_themself(browser: Browser) -> None:
    browser.login("admin")
    assert browser.submit("/admin/users/admin/active", {"active": "0"}).status_code == 409


def test_the_audit_log_shows_logins_failures_and_changes(browser: Browser, app: Starlette) -> None:
    browser.post("/login", data={"username": "thuky", "password": "wrong", "csrf_token": browser.csrf()})
    browser.login("admin")
    browser.submit("/admin/users/new", PERSON)
    page = browser.get("/admin/audit")
    assert page.status_code == 200
    for action in ("login_failed", "login", "user_created"):
        assert action in audit_actions(app)
    assert "canbo.an" in page.text and "thuky" in page.text
    filtered = browser.get("/admin/audit", params={"action": "login_failed"})
    assert "canbo.an" not in filtered.text


def test_the_account_list_searches(browser: Browser) -> None:
    browser.login("admin")
    page = browser.get("/admin/users", params={"q": "thuky"})
    assert "thuky" in page.text and "lanhdao" not in page.text
    endpoints = browser.get("/admin/users", params={"role": "endpoint"})
    assert "ct.ninh-kieu.tan-an" in endpoints.text or "Trang" in endpoints.text
