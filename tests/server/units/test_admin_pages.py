"""The administrators' reorganisation pages, through the real app: forms, errors, permissions."""

from __future__ import annotations

import re

import pytest
from sqlmodel import func, select
from starlette.applications import Starlette

from server.audit.models import AuditEntry
from server.db import Database
from server.i18n import LANG_COOKIE
from server.units.models import Unit, UnitChange
from tests.support.web import Browser

TAN_AN = "ct.ninh-kieu.tan-an"
HEADER = "old_code,new_code,new_name,new_parent_code,new_level,new_kind\n"


def counts(app: Starlette) -> tuple[int, int, int]:
    db: Database = app.state.giaoban.db
    with db.session() as session:
        return tuple(  # type: ignore[return-value]
            int(session.exec(select(func.count()).select_from(model)).one()) for model in (Unit, UnitChange, AuditEntry)
        )


def english(browser: Browser, username: str) -> Browser:
    """Log in and read the pages in English, so the test can quote their messages."""
    browser.cookies.set(LANG_COOKIE, "en")
    return browser.login(username)


def test_the_edit_page_offers_four_labelled_forms_each_with_a_csrf_token(browser: Browser) -> None:
    page = english(browser, "admin").get(f"/admin/units/{TAN_AN}/edit")
    assert page.status_code == 200
    for action in ("rename", "move", "merge", "dissolve"):
        assert f'action="/admin/units/{TAN_AN}/{action}"' in page.text
    assert page.text.count('name="csrf_token"') == 4 + 2  # the four forms, plus language and log-out
    for field_id in re.findall(r'<input id="([^"]+)"', page.text):
        assert f'<label for="{field_id}">' in page.text, field_id
    assert 'list="unit-codes"' in page.text and f'<option value="{TAN_AN}">' not in page.text


def test_an_admin_renames_a_unit_and_sees_it_in_the_history(browser: Browser) -> None:
    english(browser, "admin")
    response = browser.submit(f"/admin/units/{TAN_AN}/rename", {"name": "Phường Tân An mới"}, files=None)
    assert response.status_code == 200 and str(response.url).endswith(f"/units/{TAN_AN}")
    assert "<h1>Phường Tân An mới</h1>" in response.text
    assert "Renamed" in response.text and "Phường Tân An</td>" in response.text  # the name before


def test_a_bad_name_re_renders_the_form_with_the_field_error(browser: Browser) -> None:
    english(browser, "admin")
    response = browser.submit(f"/admin/units/{TAN_AN}/rename", {"name": "   "})
    assert response.status_code == 422
    assert 'id="name-error"' in response.text and "The name is empty." in response.text


def test_an_admin_merges_a_unit_and_lands_on_the_successor(browser: Browser) -> None:
    english(browser, "admin")
    response = browser.submit(f"/admin/units/{TAN_AN}/merge", {"into": "ct.ninh-kieu.an-lac", "confirm": "1"})
    assert response.status_code == 200 and str(response.url).endswith("/units/ct.ninh-kieu.an-lac")
    old = browser.get(f"/units/{TAN_AN}")
    assert "This unit was merged into" in old.text and 'href="/units/ct.ninh-kieu.an-lac"' in old.text
    assert "<h1>Phường Tân An</h1>" in old.text  # the old row keeps its name
    assert "/edit" not in old.text  # nothing more to change on it
    edit = browser.get(f"/admin/units/{TAN_AN}/edit")
    assert edit.status_code == 200 and "can no longer be changed" in edit.text and "/merge" not in edit.text


@pytest.mark.parametrize(
    ("action", "data", "status", "field", "words"),
    [
        ("merge", {"into": "ct.ninh-kieu.an-lac"}, 422, "into", "Tick the box to confirm."),
        ("merge", {"into": "ct.khong-co", "confirm": "1"}, 422, "into", "Unknown unit code: ct.khong-co"),
        ("merge", {"into": TAN_AN, "confirm": "1"}, 422, "into", "cannot be merged into itself"),
        ("move", {"parent": "ct.ninh-kieu.tan-an"}, 422, "parent", "cannot be moved under itself"),
        ("move", {"parent": ""}, 422, "parent", "Enter a unit code."),
        ("dissolve", {"confirm": "1"}, 409, "dissolve", "canbo.tanan"),
    ],
)
def test_refused_changes_re_render_the_edit_page_and_change_nothing(
    app: Starlette, browser: Browser, action: str, data: dict[str, str], status: int, field: str, words: str
) -> None:
    english(browser, "admin")
    before = counts(app)
    response = browser.submit(f"/admin/units/{TAN_AN}/{action}", data)
    assert response.status_code == status
    assert f'id="{field}-error"' in response.text and words in response.text
    assert counts(app) == before


def test_merging_into_a_merged_unit_is_a_conflict(app: Starlette, browser: Browser) -> None:
    english(browser, "admin")
    browser.submit("/admin/units/ct.ninh-kieu.an-hoi/merge", {"into": "ct.ninh-kieu.an-lac", "confirm": "1"})
    response = browser.submit(f"/admin/units/{TAN_AN}/merge", {"into": "ct.ninh-kieu.an-hoi", "confirm": "1"})
    assert response.status_code == 409 and "was merged or dissolved" in response.text


def test_an_admin_moves_and_dissolves_an_empty_unit(browser: Browser) -> None:
    english(browser, "admin")
    response = browser.submit("/admin/units/ct.ninh-kieu.an-phu/move", {"parent": "CT.CAI-RANG"})
    assert response.status_code == 200 and "Quận Cái Răng" in response.text
    response = browser.submit("/admin/units/ct.ninh-kieu.an-phu/dissolve", {"confirm": "1"})
    assert response.status_code == 200 and "This unit was dissolved." in response.text


def test_a_secretary_may_neither_see_nor_use_the_forms(app: Starlette, browser: Browser) -> None:
    browser.login("thuky")
    before = counts(app)
    assert browser.get(f"/admin/units/{TAN_AN}/edit").status_code == 403
    assert browser.submit(f"/admin/units/{TAN_AN}/rename", {"name": "Khác"}).status_code == 403
    assert browser.submit(f"/admin/units/{TAN_AN}/merge", {"into": "ct.ninh-kieu.an-lac", "confirm": "1"}).status_code == 403
    assert browser.get("/admin/units/reorganise").status_code == 403
    data = (HEADER + f"{TAN_AN},ct.ninh-kieu.an-lac,,,,\n").encode()
    assert browser.submit("/admin/units/reorganise", files={"file": ("r.csv", data, "text/csv")}).status_code == 403
    assert counts(app) == before


def test_a_form_without_its_csrf_token_is_refused(app: Starlette, browser: Browser) -> None:
    browser.login("admin")
    before = counts(app)
    response = browser.post(f"/admin/units/{TAN_AN}/rename", data={"name": "Khác"})
    assert response.status_code == 403
    response = browser.post(f"/admin/units/{TAN_AN}/rename", data={"name": "Khác", "csrf_token": "forged"})
    assert response.status_code == 403
    assert counts(app) == before


def test_the_pages_send_a_stranger_to_the_login_page(browser: Browser) -> None:
    response = browser.get(f"/admin/units/{TAN_AN}/edit", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert browser.get("/admin/units/ct.khong-co/edit").status_code == 200  # the login page


def test_an_unknown_unit_has_no_edit_page(browser: Browser) -> None:
    assert browser.login("admin").get("/admin/units/ct.khong-co/edit").status_code == 404


def test_a_bad_reorganisation_upload_shows_line_numbered_errors_and_changes_nothing(app: Starlette, browser: Browser) -> None:
    english(browser, "admin")
    before = counts(app)
    data = (HEADER + "ct.ninh-kieu.an-hoi,ct.moi,Mới,ct.ninh-kieu,ward,phường\nct.khong-co,ct.moi,,,,\nct.thot-not,,,,,\n").encode()
    page = browser.submit("/admin/units/reorganise", files={"file": ("reorg.csv", data, "text/csv")})
    assert page.status_code == 422
    assert "Line 3 (<code>old_code</code>): Unknown unit code ct.khong-co." in page.text
    assert "Line 4 (<code>old_code</code>): ct.thot-not is dissolved but units below it stay active" in page.text
    assert counts(app) == before
    assert browser.get("/units/ct.moi").status_code == 404
    missing = browser.submit("/admin/units/reorganise", files={"file": ("empty.csv", b"", "text/csv")})
    assert missing.status_code == 422 and "Choose a CSV file" in missing.text


def test_a_good_reorganisation_upload_shows_the_counts(browser: Browser) -> None:
    english(browser, "admin")
    form = browser.get("/admin/units/reorganise")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text and '<label for="file">' in form.text
    data = (
        HEADER
        + "ct.ninh-kieu.an-hoi,ct.ninh-kieu.tan-an-2024,Phường Tân An,ct.ninh-kieu,ward,phường\n"
        + "ct.ninh-kieu.an-lac,ct.ninh-kieu.tan-an-2024,,,,\n"
        + f"{TAN_AN},ct.ninh-kieu.tan-an-2024,,,,\n"
    ).encode()
    page = browser.submit("/admin/units/reorganise", files={"file": ("nq-1203-2024.csv", data, "text/csv")})
    assert page.status_code == 200, page.text
    assert "1 unit created" in page.text and "3 units merged" in page.text and "nq-1203-2024.csv" in page.text
    successor = browser.get("/units/ct.ninh-kieu.tan-an-2024")
    assert successor.status_code == 200 and "nq-1203-2024.csv" not in successor.text
    assert "ct.ninh-kieu.an-hoi" in successor.text  # its history names what merged into it
