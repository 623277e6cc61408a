"""The administrators' holidays page, through the real app: list by year, add, remove, import,
and nobody else gets in."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, func, select
from starlette.applications import Starlette

from server.audit.models import AuditEntry
from server.db import Database
from server.i18n import LANG_COOKIE
from server.workdays import service
from server.workdays.models import Holiday
from tests.support.web import Browser


@pytest.fixture
def db(app: Starlette) -> Database:
    database: Database = app.state.giaoban.db
    with database.session() as session:
        service.seed_if_empty(session)
    return database


def english(browser: Browser, username: str) -> Browser:
    """Log in and read the pages in English, so the test can quote their messages."""
    browser.cookies.set(LANG_COOKIE, "en")
    return browser.login(username)


def holidays(db: Database, year: int) -> list[tuple[str, str, bool]]:
    with db.session() as session:
        return [(h.day.isoformat(), h.name, h.observed) for h in service.list_holidays(session, year)]


def audit_actions(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all())


def test_the_page_lists_a_years_holidays_with_a_year_selector(browser: Browser, db: Database) -> None:
    page = english(browser, "admin").get("/admin/holidays", params={"year": "2027"})
    assert page.status_code == 200
    assert "<h2>Holidays in 2027</h2>" in page.text
    assert '<option value="2027" selected>' in page.text and '<option value="2030">' in page.text
    assert '<time datetime="2027-02-06">06/02/2027</time>' in page.text
    assert "Tết Nguyên đán (mùng 1 tháng Giêng)" in page.text and "Saturday" in page.text
    rows = len(holidays(db, 2027))
    assert page.text.count('action="/admin/holidays/remove"') == rows
    # every form carries the CSRF token: one per row, add, import, plus language and log-out
    assert page.text.count('name="csrf_token"') == rows + 2 + 2
    for field_id in re.findall(r'<(?:input|select) id="([^"]+)"', page.text):
        assert f'<label for="{field_id}">' in page.text, field_id


def test_a_year_without_holidays_says_so_and_a_nonsense_year_falls_back(browser: Browser, db: Database) -> None:
    english(browser, "admin")
    assert "every weekday counts as a working day" in browser.get("/admin/holidays?year=2040").text
    assert browser.get("/admin/holidays?year=abc").status_code == 200


@pytest.mark.parametrize("typed", ["2026-11-24", "24/11/2026"])
def test_an_admin_adds_a_day_typed_either_way(browser: Browser, db: Database, typed: str) -> None:
    english(browser, "admin")
    response = browser.submit("/admin/holidays/add", {"day": typed, "name": "Ngày Văn hóa Việt Nam", "observed": "1"})
    assert response.status_code == 200 and str(response.url).endswith("/admin/holidays?year=2026")
    assert "Ngày Văn hóa Việt Nam" in response.text and "Day off in lieu" in response.text
    assert ("2026-11-24", "Ngày Văn hóa Việt Nam", True) in holidays(db, 2026)
    assert audit_actions(db)[-1] == "holiday_added"


def test_a_bad_day_re_renders_the_form_with_the_field_errors(browser: Browser, db: Database) -> None:
    english(browser, "admin")
    twice = browser.submit("/admin/holidays/add", {"day": "2026-01-01", "name": "Lại Tết"})
    assert twice.status_code == 409
    assert 'id="day-error"' in twice.text and "01/01/2026 is already a holiday: Tết Dương lịch." in twice.text
    assert 'value="Lại Tết"' in twice.text  # what was typed is kept
    nameless = browser.submit("/admin/holidays/add", {"day": "2026-11-24", "name": " "})
    assert nameless.status_code == 422 and "Enter the holiday&#39;s name." in nameless.text
    garbled = browser.submit("/admin/holidays/add", {"day": "24.11.2026", "name": "X", "year": "2027"})
    assert garbled.status_code == 422 and "Enter a date as dd/mm/yyyy." in garbled.text
    assert "<h2>Holidays in 2027</h2>" in garbled.text  # stays on the year being looked at
    assert ("2026-11-24", "X", False) not in holidays(db, 2026)


def test_an_admin_removes_a_day(browser: Browser, db: Database) -> None:
    english(browser, "admin")
    response = browser.submit("/admin/holidays/remove", {"day": "2026-08-31"})
    assert response.status_code == 200 and str(response.url).endswith("/admin/holidays?year=2026")
    assert "2026-08-31" not in [day for day, _, _ in holidays(db, 2026)]
    assert audit_actions(db)[-1] == "holiday_removed"
    assert browser.submit("/admin/holidays/remove", {"day": "2026-08-31"}).status_code == 404


def test_an_admin_imports_a_years_official_notice(browser: Browser, db: Database) -> None:
    english(browser, "admin")
    notice = "date,name\n2027-01-01,Tết Dương lịch\n2027-01-04,Nghỉ hoán đổi\n".encode()
    response = browser.submit(
        "/admin/holidays/import", {"replace": "1"}, files={"file": ("2027.csv", notice, "text/csv")}
    )
    assert response.status_code == 200
    assert "Imported: 1 added, 0 changed," in response.text and "<h2>Holidays in 2027</h2>" in response.text
    assert [day for day, _, _ in holidays(db, 2027)] == ["2027-01-01", "2027-01-04"]
    assert len(holidays(db, 2028)) > 2  # other years untouched


def test_a_bad_import_names_its_lines_and_changes_nothing(browser: Browser, db: Database) -> None:
    english(browser, "admin")
    before = holidays(db, 2027)
    bad = b"date,name\n2027-13-01,Sai\n2027-01-01,\n"
    response = browser.submit("/admin/holidays/import", {"replace": "1"}, files={"file": ("bad.csv", bad, "text/csv")})
    assert response.status_code == 422
    assert "Line 2" in response.text and "Line 3" in response.text and "nothing was changed" in response.text
    assert holidays(db, 2027) == before
    missing = browser.submit("/admin/holidays/import", {}, files={"file": ("empty.csv", b"", "text/csv")})
    assert missing.status_code == 422 and "Choose a CSV file to upload." in missing.text


def test_a_secretary_gets_403_everywhere(browser: Browser, db: Database) -> None:
    browser.login("thuky")
    assert browser.get("/admin/holidays").status_code == 403
    assert browser.submit("/admin/holidays/add", {"day": "2026-11-24", "name": "X"}).status_code == 403
    assert browser.submit("/admin/holidays/remove", {"day": "2026-01-01"}).status_code == 403
    upload = browser.submit("/admin/holidays/import", {}, files={"file": ("x.csv", b"date,name\n2026-11-24,X\n", "text/csv")})
    assert upload.status_code == 403
    with db.session() as session:
        assert session.exec(select(func.count()).select_from(Holiday)).one() == len(service.read_file(service.DATA_FILE.read_bytes()))


def test_the_page_needs_a_login(browser: Browser, db: Database) -> None:
    response = browser.get("/admin/holidays", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
