"""The XSS sweep: hostile text in every text field a person can type into, then every page that
shows it, as the people who see it. Nothing typed may become markup: no element, attribute or
script appears that the page's own templates did not write.

The payloads are the probe's nine; each field gets all nine at once (the fields are long enough),
so one pass covers every payload in every field."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.routing import Route

from tests.security.invitations import answer_links
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

PAYLOADS = [
    "<script>x0()</script>",
    '"><img src=x onerror=x1()>',
    "'><svg onload=x2()>",
    "</textarea><b>x3",
    "<!--<script>x4()",
    '<iframe srcdoc="<b>x5">',
    "{{x6}}{%if 1%}x6b{%endif%}",
    "<a href=javascript:x7()>",
    "\u2028<style>@import'x8'</style>",
]
HOSTILE = "".join(PAYLOADS)
assert len(HOSTILE) <= 200  # the shortest text field (a title) takes it whole
# What would show that a payload became markup: a tag or attribute it carries, raw.
MARKUP = re.compile(r"<script>x\d|<img src=x|<svg onload|<iframe srcdoc|<a href=javascript:|</textarea><b>|<style>@import|<!--<script>x")
TAN_AN = "ct.ninh-kieu.tan-an"


def assert_inert(url: str, response: Any) -> None:
    assert response.status_code < 500, (url, response.status_code)
    found = MARKUP.search(response.text)
    assert found is None, f"{url}: {found.group(0)!r} reached the page as markup"
    evaluated = re.search(r"(?<!%})(?<!%7D)x6b", response.text)  # kept as typed, or URL-encoded in a link
    assert evaluated is None, f"{url}: template syntax in data was evaluated: {response.text[evaluated.start() - 200:evaluated.end() + 50]!r}"


def test_hostile_text_in_every_field_stays_text_on_every_page(app: Starlette, browser: Browser) -> None:
    secretary = api_token(browser, "thuky")
    day = monday()
    body = plan(title=HOSTILE, description=HOSTILE, agenda=[HOSTILE, HOSTILE],
                recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
                participants={"units": ["ct.so-tttt", TAN_AN], "levels": [], "users": ["canbo.tanan"]})
    created = browser.post("/api/meetings", json=body, headers=secretary)
    assert created.status_code == 201, created.text
    meeting_id, first = created.json()["id"], at(day, 8)
    occurrence = quote(first, safe="")
    next_week = day + dt.timedelta(days=7)
    second = at(next_week, 8)

    typed: list[tuple[str, Any]] = []  # (what, response): every field is accepted or refused cleanly
    typed.append(("occurrence title", browser.patch(f"/api/meetings/{meeting_id}/occurrences/{quote(second, safe='')}", json={
        "start": at(next_week, 9), "end": at(next_week, 10),
        "title": HOSTILE, "confirm": True}, headers=secretary)))
    typed.append(("minutes", browser.put(f"/api/meetings/{meeting_id}/occurrences/{occurrence}/minutes", json={
        "version": 0, **{f: HOSTILE for f in ("chair", "attendees", "proceedings", "opinions", "conclusions")}}, headers=secretary)))
    typed.append(("roll-call reason", browser.put(f"/api/meetings/{meeting_id}/occurrences/{occurrence}/roll-call", json={
        "entries": [{"unit": TAN_AN, "status": "absent", "reason": HOSTILE}]}, headers=secretary)))
    typed.append(("link title", browser.post(f"/api/meetings/{meeting_id}/documents", json={
        "url": "https://vanban.cantho.gov.vn/so-1.pdf", "title": HOSTILE}, headers=secretary)))
    typed.append(("file title and name", browser.post(f"/api/meetings/{meeting_id}/documents", data={"title": HOSTILE},
                  files={"file": (HOSTILE + ".pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application/pdf")},
                  headers=secretary)))
    for what, response in typed:
        assert response.status_code in (200, 201, 422), (what, response.status_code, response.text[:500])
    assert [w for w, r in typed if r.status_code == 422] in ([], ["file title and name"]), [(w, r.text) for w, r in typed]
    # A link to javascript: is refused, not stored.
    refused = browser.post(f"/api/meetings/{meeting_id}/documents", json={"url": "javascript:x7()", "title": "x"}, headers=secretary)
    assert refused.status_code == 422

    # An invitee answers through the mail link, naming a hostile deputy.
    links = answer_links(app, meeting_id, f"{TAN_AN}@cantho.gov.vn.test")
    answer_path = links.delegate.split("testserver", 1)[1].split("#")[0]
    with other_browser(app) as invitee:
        form = invitee.get(answer_path)
        assert_inert(answer_path, form)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        answered = invitee.post(answer_path.split("?")[0], data={"answer": "delegate", "comment": HOSTILE, "deputy_name": HOSTILE,
                                                                 "deputy_email": "pho.chu.tich@cantho.gov.vn.test",
                                                                 "csrf_token": token.group(1)})
        assert_inert("rsvp answer", answered)

    # The administrator names a unit, a person and a holiday with it.
    with other_browser(app) as admin:
        admin.login("admin")
        for url, data in [
            ("/admin/units/ct.so-yt/rename", {"name": HOSTILE}),
            ("/admin/users/new", {"username": "xss.test", "full_name": HOSTILE, "email": "xss.test@cantho.gov.vn.test",
                                  "unit": "ct.so-yt", "role": "official", "password": "mat-khau-that-dai-123"}),
            ("/admin/holidays/add", {"day": f"{day.year + 1}-05-19", "name": HOSTILE, "year": str(day.year + 1)}),
        ]:
            response = admin.submit(url, data)
            assert_inert(url, response)

        pages = [
            "/", "/meetings", f"/meetings?q={quote(HOSTILE)}", f"/meetings/{meeting_id}", f"/meetings/{meeting_id}/edit",
            f"/meetings/{meeting_id}/occurrences/{occurrence}", f"/meetings/{meeting_id}/occurrences/{quote(second, safe='')}",
            f"/meetings/{meeting_id}/occurrences/{occurrence}/record",
            f"/meetings/{meeting_id}/occurrences/{occurrence}/record/print",
            f"/meetings/{meeting_id}/occurrences/{occurrence}/record/online",
            f"/meetings/{meeting_id}/documents", f"/meetings/{meeting_id}/room?occurrence={occurrence}", "/agenda",
            "/units", f"/units?q={quote(HOSTILE)}", "/units/ct", "/units/ct.so-yt", "/admin/units/ct.so-yt/edit",
            "/admin/users", f"/admin/users?q={quote(HOSTILE)}", "/admin/users/xss.test", "/admin/audit",
            f"/admin/audit?q={quote(HOSTILE)}", "/admin/outbox", "/admin/replies", f"/admin/holidays?year={day.year + 1}",
            "/calendar/feeds", f"/login?next={quote(HOSTILE)}", f"/nowhere/{quote(HOSTILE)}", "/admin", "/admin/users/new",
            "/admin/users/import", "/admin/units/import", "/admin/units/reorganise", "/meetings/new", "/account/sessions",
            "/connection-test", "/login",
        ]
        # Every HTML page of the app is in the sweep (the rest answer files, feeds or JSON).
        not_html = {"/healthz", "/metrics", "/calendar/{token}.ics", "/rsvp/{token}", "/meetings/{id:int}/documents/{doc_id:int}"}
        for route in app.routes:
            if (isinstance(route, Route) and "GET" in (route.methods or ()) and not route.path.startswith("/api/")
                    and route.path not in not_html and not route.path.endswith(".csv")):
                assert any(route.path_regex.match(url.split("?")[0]) for url in pages), f"{route.path} is not in the sweep"
        for who in (admin, browser.login("thuky"), other_browser(app).login("canbo.tanan")):
            for url in pages:
                assert_inert(url, who.get(url))
        # The shown text is the typed text (escaped, not dropped): the sweep looked at real content.
        shown = admin.get(f"/meetings/{meeting_id}").text
        assert "&lt;script&gt;x0()&lt;/script&gt;" in shown and "{{x6}}" in shown
        assert "&lt;script&gt;x0()" in admin.get("/admin/audit").text
