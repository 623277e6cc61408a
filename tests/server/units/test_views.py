"""Browsing and searching units, as pages and through the API."""

from __future__ import annotations

import pytest

from tests.support.web import Browser, api_token


def test_pages_need_a_login(browser: Browser) -> None:
    response = browser.get("/units?q=tan+an", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/units%3Fq%3Dtan%2Ban"


def test_the_tree_shows_all_116_units(browser: Browser) -> None:
    page = browser.login("thuky").get("/units")
    assert page.status_code == 200
    assert page.text.count('<a href="/units/ct') == 116
    assert "Phường Tân An" in page.text and "Huyện Cờ Đỏ" in page.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [("tan an", "Phường Tân An"), ("TÂN AN", "Phường Tân An"), ("co do", "Huyện Cờ Đỏ"), ("thot not", "Quận Thốt Nốt")],
)
def test_search_ignores_diacritics_and_case(browser: Browser, query: str, expected: str) -> None:
    page = browser.login("thuky").get("/units", params={"q": query})
    assert expected in page.text


def test_search_by_level_under_the_data_levels(browser: Browser) -> None:
    page = browser.login("thuky").get("/units", params={"level": "department"})
    assert page.text.count("<tr>") == 21 + 1  # header row + 21 departments


def test_a_unit_page_shows_its_place_in_the_tree(browser: Browser) -> None:
    page = browser.login("thuky").get("/units/ct.ninh-kieu.tan-an")
    assert page.status_code == 200
    assert "Quận Ninh Kiều" in page.text and "ct.ninh-kieu.tan-an" in page.text


def test_an_unknown_unit_page_is_a_vietnamese_404(browser: Browser) -> None:
    page = browser.login("thuky").get("/units/ct.khong-co")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "ct.khong-co" in page.text


def test_api_lists_units_as_the_contract_says(browser: Browser) -> None:
    headers = api_token(browser, "thuky")
    body = browser.get("/api/units", headers=headers).json()
    assert body["total"] == 116 and len(body["items"]) == 116
    tan_an = next(u for u in body["items"] if u["code"] == "ct.ninh-kieu.tan-an")
    assert tan_an == {
        "code": "ct.ninh-kieu.tan-an", "parent_code": "ct.ninh-kieu", "level": "ward", "kind": "phường",
        "name": "Phường Tân An", "active": True, "email": "ct.ninh-kieu.tan-an@cantho.gov.vn.test", "merged_into": None,
    }


def test_api_search_and_filters(browser: Browser) -> None:
    headers = api_token(browser, "thuky")
    found = browser.get("/api/units", params={"q": "tan an"}, headers=headers).json()
    assert [u["name"] for u in found["items"]] == ["Phường Tân An"]
    wards = browser.get("/api/units", params={"parent": "ct.ninh-kieu", "level": "ward"}, headers=headers).json()
    assert wards["total"] == 13
    page = browser.get("/api/units", params={"limit": 10, "offset": 110}, headers=headers).json()
    assert (len(page["items"]), page["total"]) == (6, 116)


def test_api_unknown_unit_codes_get_404_in_the_error_format(browser: Browser) -> None:
    headers = api_token(browser, "thuky")
    one = browser.get("/api/units/ct.khong-co", headers=headers)
    assert one.status_code == 404
    assert one.json()["error"]["code"] == "not_found"
    assert "ct.khong-co" in one.json()["error"]["message"]
    under = browser.get("/api/units", params={"parent": "ct.khong-co"}, headers=headers)
    assert under.status_code == 404 and under.json()["error"]["fields"] == {"unit": "unknown"}


def test_api_bad_paging_is_a_422_naming_the_field(browser: Browser) -> None:
    headers = api_token(browser, "thuky")
    response = browser.get("/api/units", params={"limit": "many"}, headers=headers)
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"limit"}


def test_admin_imports_units_from_the_page_and_sees_line_numbered_errors(browser: Browser) -> None:
    browser.login("admin")
    bad = "code,parent_code,level,kind,name\nct.moi,ct.khong-co,ward,phường,Phường Mới\n".encode()
    page = browser.submit("/admin/units/import", files={"file": ("units.csv", bad, "text/csv")})
    assert page.status_code == 422
    assert "ct.khong-co" in page.text and "Dòng 2" in page.text
    assert browser.get("/units/ct.moi").status_code == 404
    good = "code,parent_code,level,kind,name\nct.moi,ct.ninh-kieu,ward,phường,Phường Mới\n".encode()
    page = browser.submit("/admin/units/import", files={"file": ("units.csv", good, "text/csv")})
    assert page.status_code == 200
    assert browser.get("/units/ct.moi").status_code == 200


def test_a_secretary_may_not_import_units(browser: Browser) -> None:
    browser.login("thuky")
    data = "code,parent_code,level,kind,name\nct.moi,ct,ward,phường,Mới\n".encode()
    assert browser.submit("/admin/units/import", files={"file": ("u.csv", data, "text/csv")}).status_code == 403
    assert browser.get("/units/ct.moi").status_code == 404


def test_markup_in_a_unit_name_is_shown_as_text(browser: Browser) -> None:
    browser.login("admin")
    data = "code,parent_code,level,kind,name\nct.xss,ct,ward,phường,<script>alert(1)</script>\n".encode()
    assert browser.submit("/admin/units/import", files={"file": ("u.csv", data, "text/csv")}).status_code == 200
    page = browser.get("/units/ct.xss")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
