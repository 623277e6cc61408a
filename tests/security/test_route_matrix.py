"""The route × role matrix: every route of the API description and every page, asked by each
kind of person the city has, with the status each must get. A route added without a row here,
or a cell that changes, fails the suite: authorization is decided here, in one table.

The bodies are empty (``{}`` or an empty form with its CSRF token): whoever may act gets a
validation answer (422, or the form again with its errors), whoever may not gets 403 or 404
*before* the body is looked at, and nobody gets a 5xx. State-changing requests that would end
the session or the meeting run last, in their own order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from server.mail.models import OutboxMessage
from tests.security.invitations import answer_links
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, other_browser

ROLES = {
    "anonymous": None,
    "ward official": "canbo.tanan",  # Phường Tân An, invited
    "uninvited ward room": "ct.cai-rang.le-binh",  # an endpoint account whose unit is not invited
    "district secretary": "thuky.ninhkieu",
    "city secretary": "thuky",
    "administrator": "admin",
}
TAN_AN = "ct.ninh-kieu.tan-an"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# Requests that end something run last, in this order (each role has its own database).
LAST = [
    "DELETE /api/meetings/{id:int}/documents/{doc_id:int}", "POST /api/meetings/{id:int}/occurrences/{original_start}/cancel",
    "POST /api/meetings/{id:int}/cancel", "POST /meetings/{id:int}/cancel", "POST /admin/users/{username}/active",
    "POST /admin/users/{username}/sessions/end", "DELETE /api/auth/sessions/{id:int}", "DELETE /api/auth/token",
    "POST /account/sessions/{session_id:int}/end", "POST /account/sessions/end-others", "POST /logout",
]


@dataclass
class World:
    meeting: int
    occurrence: str
    document: int
    feed_token: str
    rsvp_token: str
    outbox: int
    session: str


def build_world(app: Starlette, secretary: Browser) -> World:
    headers = token_of(secretary, "thuky")
    body = plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
                participants={"units": ["ct.so-tttt", TAN_AN], "levels": [], "users": ["canbo.tanan"]})
    meeting = secretary.post("/api/meetings", json=body, headers=headers)
    assert meeting.status_code == 201, meeting.text
    meeting_id = meeting.json()["id"]
    document = secretary.post(f"/api/meetings/{meeting_id}/documents", data={"title": "Báo cáo"}, headers=headers,
                              files={"file": ("bao-cao.pdf", PDF, "application/pdf")})
    assert document.status_code == 201, document.text
    links = answer_links(app, meeting_id, f"{TAN_AN}@cantho.gov.vn.test")
    with app.state.giaoban.db.session() as session:
        outbox = session.exec(select(OutboxMessage)).first()
        assert outbox is not None and outbox.id is not None
    secretary.login("thuky")
    made = secretary.submit("/calendar/feeds", {"action": "create", "unit": ""})
    feed = re.search(r"/calendar/([A-Za-z0-9_-]{16,})\.ics", made.text)
    assert feed, made.text[:3000]
    sessions = secretary.get("/api/auth/sessions", headers=headers)
    assert sessions.status_code == 200, sessions.text
    return World(meeting=meeting_id, occurrence=quote(at(monday(), 8), safe=""), document=document.json()["id"],
                 feed_token=feed.group(1), rsvp_token=links.accept.split("/rsvp/")[1].split("?")[0], outbox=outbox.id,
                 session=str(sessions.json()["items"][0]["id"]))


def token_of(client: Browser, username: str) -> dict[str, str]:
    response = client.post("/api/auth/token", json={"username": username, "password": "giaoban-demo"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def concrete(path: str, world: World) -> str:
    values = {
        "id": str(world.meeting), "id:int": str(world.meeting), "original_start": world.occurrence,
        "doc_id": str(world.document), "doc_id:int": str(world.document), "code": TAN_AN, "username": "canbo.tanan",
        "token": world.feed_token, "outbox_id:int": str(world.outbox), "session_id:int": world.session,
    }
    if path.startswith("/rsvp/"):
        values["token"] = world.rsvp_token
    if path.startswith("/api/auth/sessions/"):
        values["id:int"] = world.session
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)


def cells(app: Starlette) -> list[str]:
    """``METHOD /path`` of every route, pages and API (not the static files and sockets)."""
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [f"{m} {route.path}" for m in sorted((route.methods or set()) - {"HEAD"})]
        else:
            assert isinstance(route, Mount | WebSocketRoute), route
    ordered = [c for c in found if c not in LAST] + [c for c in LAST if c in found]
    assert len(ordered) == len(found), set(LAST) - set(found)
    return ordered


def ask(client: Browser, cell: str, world: World, bearer: dict[str, str]) -> int:
    method, path = cell.split(" ", 1)
    url = concrete(path, world)
    if path.startswith("/api/"):
        kwargs: dict[str, Any] = {"headers": bearer, "follow_redirects": False}
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {}
        return client.request(method, url, **kwargs).status_code
    if method == "GET":
        return client.get(url, follow_redirects=False).status_code
    token = client.csrf()
    return client.request(method, url, data={"csrf_token": token}, follow_redirects=False).status_code


@pytest.fixture
def world(app: Starlette) -> Iterator[World]:
    with other_browser(app) as secretary:
        yield build_world(app, secretary)


def test_the_table_covers_every_operation_of_the_api_description(app: Starlette, browser: Browser) -> None:
    spec = browser.get("/api/openapi.json").json()
    described = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    in_table = {re.sub(r":int}", "}", cell) for cell in EXPECTED}
    assert described <= in_table, described - in_table


@pytest.mark.parametrize("role", list(ROLES))
def test_every_route_answers_each_role_as_the_table_says(app: Starlette, browser: Browser, world: World, role: str) -> None:
    username = ROLES[role]
    bearer: dict[str, str] = {}
    if username is not None:
        bearer = token_of(browser, username)  # before the cookie: a cookie's POST needs the form's CSRF token
        browser.login(username)
    answers = {cell: ask(browser, cell, world, bearer) for cell in cells(app)}
    assert all(status < 500 for status in answers.values()), {c: s for c, s in answers.items() if s >= 500}
    assert set(EXPECTED) == set(answers), {"without a row": set(answers) - set(EXPECTED), "stale rows": set(EXPECTED) - set(answers)}
    expected = {cell: row[list(ROLES).index(role)] for cell, row in EXPECTED.items()}
    wrong = {cell: (expected.get(cell), got) for cell, got in answers.items() if expected.get(cell) != got}
    assert not wrong, f"{role}: cell: (expected, got): {wrong}"


# anonymous · ward official (invited) · uninvited ward room · district secretary (not invited: only a
# ward below is) · city secretary (the host's) · administrator. 303 for a person is the login page
# (anonymous) or where a form goes after it acted; 401 is the API's "who are you". Someone who may
# not see a meeting gets 404 (its pages and API alike), someone who may see it but not change it
# 403, before the body is read. The room page says 403 "not invited" (a ward following a colleague's
# link is told why), as the socket does (4403).
EXPECTED: dict[str, tuple[int, int, int, int, int, int]] = {
    'GET /': (303, 200, 200, 200, 200, 200),
    'GET /admin': (303, 403, 403, 403, 403, 200),
    'GET /healthz': (200, 200, 200, 200, 200, 200),
    'GET /metrics': (403, 403, 403, 403, 403, 200),
    'GET /login': (200, 303, 303, 303, 303, 303),
    'POST /login': (422, 422, 422, 422, 422, 422),
    'POST /lang': (303, 303, 303, 303, 303, 303),
    'GET /account/sessions': (303, 200, 200, 200, 200, 200),
    'GET /admin/users': (303, 403, 403, 403, 403, 200),
    'GET /admin/users/new': (303, 403, 403, 403, 403, 200),
    'POST /admin/users/new': (303, 403, 403, 403, 403, 422),
    'GET /admin/users/import': (303, 403, 403, 403, 403, 200),
    'POST /admin/users/import': (303, 403, 403, 403, 403, 422),
    'GET /admin/users/{username}': (303, 403, 403, 403, 403, 200),
    'POST /admin/users/{username}/password': (303, 403, 403, 403, 403, 200),
    'POST /api/auth/token': (422, 422, 422, 422, 422, 422),
    'GET /api/auth/sessions': (401, 200, 200, 200, 200, 200),
    'GET /api/me': (401, 200, 200, 200, 200, 200),
    'GET /units': (303, 200, 200, 200, 200, 200),
    'GET /units/{code}': (303, 200, 200, 200, 200, 200),
    'GET /admin/units/import': (303, 403, 403, 403, 403, 200),
    'POST /admin/units/import': (303, 403, 403, 403, 403, 422),
    'GET /admin/units/reorganise': (303, 403, 403, 403, 403, 200),
    'POST /admin/units/reorganise': (303, 403, 403, 403, 403, 422),
    'GET /admin/units/{code}/edit': (303, 403, 403, 403, 403, 200),
    'POST /admin/units/{code}/rename': (303, 403, 403, 403, 403, 422),
    'POST /admin/units/{code}/move': (303, 403, 403, 403, 403, 422),
    'POST /admin/units/{code}/merge': (303, 403, 403, 403, 403, 422),
    'POST /admin/units/{code}/dissolve': (303, 403, 403, 403, 403, 422),
    'GET /api/units': (401, 200, 200, 200, 200, 200),
    'GET /api/units/{code}': (401, 200, 200, 200, 200, 200),
    'GET /admin/audit': (303, 403, 403, 403, 403, 200),
    'GET /api/meetings': (401, 422, 422, 422, 422, 422),
    'POST /api/meetings': (401, 403, 403, 422, 422, 422),
    'POST /api/meetings/check': (401, 403, 403, 422, 422, 422),
    'GET /api/meetings/{id:int}': (401, 200, 404, 404, 200, 200),
    'PATCH /api/meetings/{id:int}': (401, 403, 404, 404, 422, 422),
    'GET /api/meetings/{id:int}/occurrences/{original_start}': (401, 200, 404, 404, 200, 200),
    'PATCH /api/meetings/{id:int}/occurrences/{original_start}': (401, 403, 404, 404, 422, 422),
    'GET /meetings/{id:int}/documents': (303, 200, 404, 404, 200, 200),
    'POST /meetings/{id:int}/documents': (303, 403, 404, 404, 422, 422),
    'GET /meetings/{id:int}/documents/{doc_id:int}': (303, 200, 404, 404, 200, 200),
    'GET /api/meetings/{id:int}/documents': (401, 200, 404, 404, 200, 200),
    'POST /api/meetings/{id:int}/documents': (401, 403, 404, 404, 422, 422),
    'GET /meetings/{id:int}/occurrences/{original_start}/record': (303, 200, 404, 404, 200, 200),
    'POST /meetings/{id:int}/occurrences/{original_start}/record': (303, 403, 404, 404, 422, 422),
    'GET /meetings/{id:int}/occurrences/{original_start}/record/print': (303, 200, 404, 404, 200, 200),
    'GET /meetings/{id:int}/occurrences/{original_start}/record/attendance.csv': (303, 200, 404, 404, 200, 200),
    'GET /meetings/{id:int}/occurrences/{original_start}/record/online': (303, 200, 404, 404, 200, 200),
    'GET /meetings/{id:int}/occurrences/{original_start}/record/online.csv': (303, 200, 404, 404, 200, 200),
    'GET /meetings/{id:int}/occurrences/{original_start}/record/chat.csv': (303, 200, 404, 404, 200, 200),
    'GET /api/meetings/{id:int}/occurrences/{original_start}/roll-call': (401, 200, 404, 404, 200, 200),
    'PUT /api/meetings/{id:int}/occurrences/{original_start}/roll-call': (401, 403, 404, 404, 422, 422),
    'GET /api/meetings/{id:int}/occurrences/{original_start}/minutes': (401, 200, 404, 404, 200, 200),
    'PUT /api/meetings/{id:int}/occurrences/{original_start}/minutes': (401, 403, 404, 404, 422, 422),
    'GET /meetings': (303, 200, 200, 200, 200, 200),
    'GET /meetings/new': (303, 403, 403, 200, 200, 200),
    'POST /meetings/new': (303, 403, 403, 422, 422, 422),
    'GET /meetings/{id:int}': (303, 200, 404, 404, 200, 200),
    'GET /meetings/{id:int}/edit': (303, 403, 404, 404, 200, 200),
    'POST /meetings/{id:int}/edit': (303, 403, 404, 404, 422, 422),
    'GET /meetings/{id:int}/occurrences/{original_start}': (303, 200, 404, 404, 200, 200),
    'POST /meetings/{id:int}/occurrences/{original_start}': (303, 403, 404, 404, 422, 422),
    'GET /agenda': (303, 200, 200, 200, 200, 200),
    'GET /admin/holidays': (303, 403, 403, 403, 403, 200),
    'POST /admin/holidays/add': (303, 403, 403, 403, 403, 422),
    'POST /admin/holidays/remove': (303, 403, 403, 403, 403, 422),
    'POST /admin/holidays/import': (303, 403, 403, 403, 403, 422),
    'GET /calendar/feeds': (303, 200, 200, 200, 200, 200),
    'POST /calendar/feeds': (303, 422, 422, 422, 422, 422),
    'GET /calendar/{token}.ics': (200, 200, 200, 200, 200, 200),
    'GET /api/meetings/{id:int}/ics': (401, 200, 404, 404, 200, 200),
    'GET /rsvp/{token}': (200, 200, 200, 200, 200, 200),
    'POST /rsvp/{token}': (422, 422, 422, 422, 422, 422),
    'GET /admin/replies': (303, 403, 403, 403, 403, 200),
    'POST /admin/replies': (303, 403, 403, 403, 403, 422),
    'GET /admin/outbox': (303, 403, 403, 403, 403, 200),
    'POST /admin/outbox/{outbox_id:int}/resend': (303, 403, 403, 403, 403, 303),
    'GET /meetings/{id}/room': (303, 200, 403, 403, 200, 200),
    'GET /connection-test': (303, 200, 200, 200, 200, 200),
    'GET /api/openapi.json': (200, 200, 200, 200, 200, 200),
    'DELETE /api/meetings/{id:int}/documents/{doc_id:int}': (401, 403, 404, 404, 204, 204),
    'POST /api/meetings/{id:int}/occurrences/{original_start}/cancel': (401, 403, 404, 404, 200, 200),
    'POST /api/meetings/{id:int}/cancel': (401, 403, 404, 404, 200, 200),
    'POST /meetings/{id:int}/cancel': (303, 403, 404, 404, 422, 422),
    'POST /admin/users/{username}/active': (303, 403, 403, 403, 403, 303),
    'POST /admin/users/{username}/sessions/end': (303, 403, 403, 403, 403, 303),
    'DELETE /api/auth/sessions/{id:int}': (401, 404, 404, 404, 204, 404),
    'DELETE /api/auth/token': (401, 204, 204, 204, 204, 204),
    'POST /account/sessions/{session_id:int}/end': (303, 303, 303, 303, 303, 303),
    'POST /account/sessions/end-others': (303, 303, 303, 303, 303, 303),
    'POST /logout': (303, 303, 303, 303, 303, 303),
}
