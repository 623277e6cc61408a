"""Input at the edges never reaches a 500: ids past what a column holds are 404s (API, pages, queries),
times and dates past what the calendar holds are 422s, bodies nested too deep or holding
text no database stores are 422s, malformed forms are refused; 405s name every allowed
method. And who may not change something is told so (403/404) before anything of what they
sent is checked, so that no field names leak to them (issue #17, items 4 and 7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from server.api import ID_MAX
from server.edge import IdConvertor, digits_up_to
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

BIG = 2**63  # far past the largest id a column holds (ID_MAX: 2^31 - 1, PostgreSQL's INTEGER)
START = quote(at(monday(), 8), safe="")


@pytest.fixture
def meeting(browser: Browser) -> int:
    """A meeting of the city office (host ct): canbo.tanan's ward is invited, thuky.ninhkieu's
    district is not (their secretary sees only what their units host or are invited to)."""
    response = browser.post("/api/meetings", json=plan(), headers=api_token(browser, "thuky"))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


# --- ids past a column -----------------------------------------------------------------------


def _routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    found: list[BaseRoute] = []
    for route in routes:
        found.append(route)
        if isinstance(route, Mount):
            found += _routes(list(route.routes))
    return found


def test_every_whole_number_in_a_path_is_bounded(app: Starlette) -> None:
    numbered = [(route, convertor) for route in _routes(app.routes)
                for convertor in getattr(route, "param_convertors", {}).values() if "0-9" in convertor.regex]
    assert len(numbered) >= 10
    for route, convertor in numbered:
        assert isinstance(convertor, IdConvertor), getattr(route, "path", route)


def test_the_id_pattern_takes_exactly_the_numbers_a_column_holds() -> None:
    import re

    pattern = re.compile(digits_up_to(ID_MAX))
    for n in (0, 7, 10**9, ID_MAX - 1, ID_MAX, ID_MAX - 10**9):
        assert pattern.fullmatch(str(n)), n
    assert pattern.fullmatch("0007")
    for n in (ID_MAX + 1, ID_MAX + 10**8, 10**10, 2**63, 10**40):
        assert not pattern.fullmatch(str(n)), n
    # the same construction for other limits, against the plain comparison
    for limit in (5, 10, 99, 100, 307, 1000):
        small = re.compile(digits_up_to(limit))
        assert [n for n in range(2000) if small.fullmatch(str(n))] == list(range(limit + 1)), limit


def test_an_id_past_64_bits_is_a_404_on_the_api(browser: Browser, meeting: int) -> None:
    secretary = api_token(browser, "thuky")
    for method, path in [("GET", f"/api/meetings/{BIG}"), ("GET", f"/api/meetings/{ID_MAX}"),
                         ("GET", f"/api/meetings/{BIG}/documents"), ("DELETE", f"/api/meetings/{meeting}/documents/{BIG}"),
                         ("PUT", f"/api/meetings/{BIG}/occurrences/{START}/minutes"), ("GET", f"/api/meetings/{BIG}{BIG}/ics")]:
        response = browser.request(method, path, headers=secretary, json={"version": 0})
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    # a PATCH that carried the id into the service used to overflow deep in the driver (a 500)
    patched = browser.patch(f"/api/meetings/{BIG * 10**5}/occurrences/{START}", headers=secretary,
                            json={"start": at(monday(), 9), "end": at(monday(), 10), "scope": "series"})
    assert patched.status_code == 404


def test_an_id_past_64_bits_is_a_404_page(browser: Browser, meeting: int) -> None:
    browser.login("thuky")
    for path in (f"/meetings/{BIG}", f"/meetings/{ID_MAX}", f"/meetings/{BIG}/edit", f"/meetings/{meeting}/documents/{BIG}",
                 f"/meetings/{BIG}/occurrences/{START}/record"):
        page = browser.get(path)
        assert page.status_code == 404 and "text/html" in page.headers["content-type"], path
        assert "Không tìm thấy" in page.text
    assert browser.submit(f"/meetings/{BIG}/cancel", {"confirm": "1"}).status_code == 404


def test_numbers_past_64_bits_in_a_query_are_bounded(browser: Browser) -> None:
    secretary = api_token(browser, "thuky")
    browser.login("admin")
    for path in ("/admin/audit", "/admin/outbox", "/admin/users"):
        assert browser.get(f"{path}?page={BIG}").status_code == 200, path  # the last page there could be: empty
    offset = browser.get(f"/api/units?offset={BIG}", headers=secretary)
    assert offset.status_code == 422 and "offset" in offset.json()["error"]["fields"]


def test_numbers_in_forms_are_ascii_whole_numbers_a_column_holds(browser: Browser, meeting: int) -> None:
    browser.login("thuky")
    record = f"/meetings/{meeting}/occurrences/{START}/record"
    # "²".isdigit() is true and int("²") fails; "٣" is an Arabic three; past 4,300 digits int() refuses
    for version in ("²", "٣", str(BIG), "9" * 5000):
        page = browser.submit(record, {"section": "minutes", "version": version, "chair": "x"})
        assert page.status_code in (409, 422), (version, page.status_code)
    delete = browser.submit(f"/meetings/{meeting}/documents", {"action": "delete", "document": str(BIG)})
    assert delete.status_code == 404
    revoke = browser.submit("/calendar/feeds", {"action": "revoke", "token": str(BIG)})
    for ended in ("²", "9" * 5000):  # the count a page shows after "end sessions"
        assert browser.get(f"/account/sessions?ended={ended}").status_code == 200
    assert revoke.status_code == 422
    times = browser.submit("/meetings/new", {"action": "check", "date": monday().isoformat(), "start_time": "08:00",
                                             "end_time": "10:00", "repeat": "weekly", "repeat_end": "count", "repeat_count": "²"})
    assert times.status_code == 422


def test_times_past_the_calendar_are_422_not_500(browser: Browser, meeting: int) -> None:
    secretary = api_token(browser, "thuky")
    # 0001-01-01 at +14:00 has no UTC; a week after 9999-12-31 does not exist
    early = browser.get("/api/meetings", params={"start": "0001-01-01T00:00:00+14:00", "end": "0001-01-02T00:00:00+14:00"},
                        headers=secretary)
    assert early.status_code == 422 and "start" in early.json()["error"]["fields"]
    late = browser.get(f"/api/meetings/{meeting}/occurrences/{quote('9999-12-31T23:59:59+00:00', safe='')}", headers=secretary)
    assert late.status_code == 422
    for start, end in [("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"), ("9999-12-31T20:00:00-10:00", "9999-12-31T21:00:00-10:00")]:
        body = browser.post("/api/meetings/check", json=plan(start=start, end=end), headers=secretary)
        assert body.status_code == 422 and "start" in body.json()["error"]["fields"], body.text
    browser.login("thuky")
    assert browser.get(f"/meetings/{meeting}/occurrences/{quote('9999-12-31T23:59:59+00:00', safe='')}").status_code == 422
    assert browser.get("/agenda?date=9999-12-31").status_code == 200  # an unreadable date: this week
    assert browser.get("/meetings?from=9999-12-31").status_code == 422


# --- bodies ---------------------------------------------------------------------------------


def test_json_nested_too_deep_is_a_422_even_before_login(browser: Browser) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    token = browser.post("/api/auth/token", content=deep, headers={"content-type": "application/json"})
    assert token.status_code == 422 and token.json()["error"]["code"] == "invalid"
    # deep, but not too deep to read: the fields are checked as usual
    nested = '{"username": ' + "[" * 900 + "]" * 900 + ', "password": "x"}'
    field = browser.post("/api/auth/token", content=nested, headers={"content-type": "application/json"})
    assert field.status_code == 422 and "username" in field.json()["error"]["fields"]


def test_json_nested_too_deep_is_a_422_when_logged_in(browser: Browser) -> None:
    secretary = {**api_token(browser, "thuky"), "content-type": "application/json"}
    body = '{"title": "x", "agenda": ' + "[" * 50_000 + "]" * 50_000 + "}"
    for path in ("/api/meetings", "/api/meetings/check"):
        response = browser.post(path, content=body, headers=secretary)
        assert response.status_code == 422, (path, response.text[:300])
        assert response.json()["error"]["code"] == "invalid"


def test_text_no_database_stores_is_refused(browser: Browser) -> None:
    secretary = api_token(browser, "thuky")
    nul = browser.post("/api/meetings/check", json=plan(title="Giao ban\x00"), headers=secretary)
    assert nul.status_code == 422 and "NUL" in nul.json()["error"]["message"]
    lone = browser.post("/api/meetings/check", content=b'{"title": "\\ud800"}',
                        headers={**secretary, "content-type": "application/json"})
    assert lone.status_code == 422
    huge = browser.post("/api/meetings/check", json={**plan(), "version": BIG}, headers=secretary)
    assert huge.status_code == 422


def test_a_multipart_body_without_boundary_is_refused_not_a_500(browser: Browser, meeting: int) -> None:
    broken = {"content-type": "multipart/form-data"}
    anonymous = browser.post("/api/auth/token", content=b"--x\r\n", headers=broken)
    assert anonymous.status_code == 403 and anonymous.json()["error"]["code"] == "csrf"
    upload = browser.post(f"/api/meetings/{meeting}/documents", content=b"--x\r\n", headers={**api_token(browser, "thuky"), **broken})
    assert upload.status_code == 422 and upload.json()["error"]["code"] == "invalid"


def test_a_405_names_every_method_of_the_path(browser: Browser) -> None:
    token = api_token(browser, "thuky")
    for path, allowed in [("/api/meetings", "GET, HEAD, POST"), ("/api/meetings/1", "GET, HEAD, PATCH"),
                          (f"/api/meetings/1/occurrences/{START}/minutes", "GET, HEAD, PUT")]:
        response = browser.options(path, headers=token)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (path, response.headers)
    # /api/meetings/check is not a meeting id: PATCH there is a wrong method, not a bad id
    check = browser.patch("/api/meetings/check", json={}, headers=token)
    assert check.status_code == 405 and check.headers["allow"] == "POST"


# --- authorisation before validation --------------------------------------------------------

BAD_API_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("PUT", "/api/meetings/{id}/occurrences/{start}/roll-call", {"entries": "không phải danh sách"}),
    ("PUT", "/api/meetings/{id}/occurrences/{start}/minutes", {"version": "abc", "chair": 5}),
    ("PATCH", "/api/meetings/{id}", {"version": "abc", "title": 5}),
    ("POST", "/api/meetings/{id}/cancel", {"version": "abc", "scope": 5}),
    ("PATCH", "/api/meetings/{id}/occurrences/{start}", {"start": "abc", "version": "abc"}),
    ("POST", "/api/meetings/{id}/occurrences/{start}/cancel", {"scope": 5, "version": "abc"}),
    ("POST", "/api/meetings/{id}/documents", {"url": 5, "title": []}),
]


@pytest.mark.parametrize(("username", "status"), [("thuky.ninhkieu", 404), ("canbo.tanan", 403)])
def test_the_api_refuses_who_may_not_change_it_before_reading_the_body(browser: Browser, meeting: int, username: str,
                                                                       status: int) -> None:
    """thuky.ninhkieu does not see the meeting (404); canbo.tanan sees it but may not change it (403)."""
    token = api_token(browser, username)
    for method, template, body in BAD_API_BODIES:
        path = template.format(id=meeting, start=START)
        response = browser.request(method, path, json=body, headers=token)
        assert response.status_code == status, (username, method, path, response.text)
        error = response.json()["error"]
        assert error["fields"] == {}, (method, path, error)
        assert not any(name in error["message"] for name in body), error["message"]
    # the host's secretary, with the same bodies, is told what is wrong with them
    secretary = api_token(browser, "thuky")
    method, template, body = BAD_API_BODIES[1]
    told = browser.request(method, template.format(id=meeting, start=START), json=body, headers=secretary)
    assert told.status_code == 422 and "version" in told.json()["error"]["fields"]


def test_planning_is_refused_before_the_plan_is_read_to_whoever_schedules_for_no_unit(browser: Browser) -> None:
    official = api_token(browser, "canbo.tanan")
    for path in ("/api/meetings", "/api/meetings/check"):
        response = browser.post(path, json={"title": 5, "start": "abc"}, headers=official)
        assert response.status_code == 403 and response.json()["error"]["fields"] == {}, response.text
    browser.login("canbo.tanan")
    page = browser.submit("/meetings/new", {"action": "save", "title": "", "date": "abc"})
    assert page.status_code == 403


BAD_FORMS: list[tuple[str, dict[str, str], str]] = [
    ("/meetings/{id}/occurrences/{start}/record", {"section": "minutes", "version": "abc"}, "version"),
    ("/meetings/{id}/occurrences/{start}/record", {"section": "roll_call", "status-ct.ninh-kieu.tan-an": "abc"}, "abc"),
    ("/meetings/{id}/cancel", {"version": "abc"}, "confirm"),
    ("/meetings/{id}/edit", {"action": "save", "title": "", "date": "abc"}, "title"),
    ("/meetings/{id}/occurrences/{start}", {"action": "move", "date": "abc"}, "date"),
    ("/meetings/{id}/documents", {"action": "link", "url": "abc"}, "url"),
]


@pytest.mark.parametrize(("username", "status"), [("thuky.ninhkieu", 404), ("canbo.tanan", 403)])
def test_the_forms_refuse_who_may_not_change_it_before_reading_the_form(app: Starlette, meeting: int, username: str,
                                                                        status: int) -> None:
    with other_browser(app) as person:
        person.login(username)
        for template, form, _field in BAD_FORMS:
            path = template.format(id=meeting, start=START)
            page = person.submit(path, form)
            assert page.status_code == status, (username, path, page.status_code)
            assert 'class="field-error"' not in page.text and "abc" not in page.text, path
    with other_browser(app) as host:  # the host's secretary sees the errors of the same forms
        host.login("thuky")
        first, form, _field = BAD_FORMS[0]
        assert host.submit(first.format(id=meeting, start=START), form).status_code == 422


def test_on_postgresql_an_id_just_past_its_integer_is_a_404_not_a_driver_error(postgres_server: Any, tmp_path: Any) -> None:
    """PostgreSQL's INTEGER stops at 2^31 - 1 (SQLite's at 2^63 - 1): the bound is the smaller,
    or ``/api/meetings/2147483648`` reaches the driver as "integer out of range" (a 500)."""
    from server import demo
    from server.app import create_app
    from server.db import Database
    from server.migrate import upgrade_to_head
    from server.settings import load_settings
    from server.workdays import service as workdays

    url = postgres_server.new_database("bounds")
    upgrade_to_head(url)
    database = Database(url)
    with database.session() as session:
        workdays.seed_if_empty(session)
        demo.load(session, "giaoban-demo", meetings=False)
    database.dispose()
    app = create_app(load_settings(database_url=url, demo=True, var_dir=tmp_path / "var", demo_password="giaoban-demo"))
    with Browser(app, raise_server_exceptions=False) as client:
        secretary = api_token(client, "thuky")
        created = client.post("/api/meetings", json=plan(), headers=secretary)
        assert created.status_code == 201, created.text
        for path in (f"/api/meetings/{ID_MAX + 1}", f"/api/meetings/{ID_MAX}", f"/api/meetings/{ID_MAX + 1}/documents"):
            assert client.get(path, headers=secretary).status_code == 404, path
        stale = client.put(f"/api/meetings/{created.json()['id']}/occurrences/{START}/minutes", headers=secretary,
                           json={"version": ID_MAX + 1, "chair": "x"})
        assert stale.status_code == 422, stale.text
        client.login("thuky")
        assert client.get(f"/meetings/{ID_MAX + 1}").status_code == 404
    app.state.giaoban.db.dispose()
