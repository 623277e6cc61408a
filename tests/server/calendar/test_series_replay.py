"""A calendar that applies every mail of a changed series, in order, ends with the server's
calendar: each invitee's mails (REQUEST, one-occurrence REQUEST/CANCEL, the new series of
"this and following") are applied the way a client does, the result is expanded by Mozilla's
ical.js, and it is compared occurrence by occurrence with the meetings API."""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Callable
from email.policy import default as default_policy
from typing import Any
from urllib.parse import quote

import icalendar
from sqlmodel import Session, col, select

from server.mail.models import OutboxMessage
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token

INVITEE = "canbo.tanan@cantho.gov.vn.test"


def _utc(text: str) -> str:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClientCalendar:
    """What a mail client keeps from iMIP messages, applied in order (RFC 5546)."""

    def __init__(self) -> None:
        self.timezones: dict[str, icalendar.Timezone] = {}
        self.masters: dict[str, icalendar.Event] = {}
        self.overrides: dict[str, dict[str, icalendar.Event]] = {}
        self.cancelled: dict[str, set[str]] = {}

    def apply(self, data: bytes) -> None:
        cal = icalendar.Calendar.from_ical(data)
        method = str(cal.get("METHOD"))
        for tz in cal.walk("VTIMEZONE"):
            self.timezones[str(tz["TZID"])] = tz
        for event in cal.walk("VEVENT"):
            uid = str(event["UID"])
            rid = event.get("RECURRENCE-ID")
            key = rid.dt.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if rid is not None else None
            if method == "REQUEST" and key is None:
                self.masters[uid] = event
            elif method == "REQUEST":
                self.overrides.setdefault(uid, {})[key or ""] = event
            elif method == "CANCEL" and key is None:
                self.masters.pop(uid, None)
                self.overrides.pop(uid, None)
            elif method == "CANCEL":
                self.cancelled.setdefault(uid, set()).add(key or "")

    def occurrences(self, icaljs: Callable[..., dict[str, Any]]) -> list[tuple[str, str]]:
        found = []
        for uid, master in self.masters.items():
            cal = icalendar.Calendar()
            cal.add("PRODID", "-//replay//")
            cal.add("VERSION", "2.0")
            for tz in self.timezones.values():
                cal.add_component(tz)
            cal.add_component(master)
            for event in self.overrides.get(uid, {}).values():
                cal.add_component(event)
            parsed = icaljs(cal.to_ical(), 60)
            for o in parsed["occurrences"][uid]:
                if o["recurrence_id"] not in self.cancelled.get(uid, set()):
                    found.append((_utc(o["start"]), o["summary"]))
        return sorted(found)


def test_a_client_applying_the_mails_in_order_ends_with_the_servers_calendar(
    browser: Browser, app: Any, icaljs: Callable[..., dict[str, Any]],
) -> None:
    secretary = api_token(browser, "thuky")
    day = monday()
    body = plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=6", participants={"units": [], "levels": [], "users": ["canbo.tanan"]})
    meeting = browser.post("/api/meetings", json={**body, "confirm": True}, headers=secretary).json()
    base = f"/api/meetings/{meeting['id']}/occurrences"

    def week(n: int, hour: int) -> str:
        return at(day + dt.timedelta(weeks=n), hour)

    steps = [
        ("PATCH", f"{base}/{quote(week(1, 8))}", {"start": week(1, 14), "end": week(1, 16), "scope": "this", "confirm": True}),
        ("POST", f"{base}/{quote(week(3, 8))}/cancel", {"scope": "this"}),
        ("PATCH", f"{base}/{quote(week(2, 8))}", {"start": week(2, 8), "end": week(2, 10), "title": "Giao ban — đổi tên",
                                                  "scope": "this", "confirm": True}),
        ("PATCH", f"{base}/{quote(week(4, 8))}", {"start": week(4, 9), "end": week(4, 11), "scope": "following", "confirm": True}),
    ]
    for method, url, payload in steps:
        response = browser.request(method, url, json=payload, headers=secretary)
        assert response.status_code == 200, response.text

    with Session(app.state.giaoban.db.engine) as session:
        mails = session.exec(select(OutboxMessage).where(OutboxMessage.recipient == INVITEE).order_by(col(OutboxMessage.id))).all()
        bodies = [m.body for m in mails]
    client = ClientCalendar()
    for raw in bodies:
        message = email.message_from_string(raw, policy=default_policy)
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        client.apply(payload)

    listed = browser.get("/api/meetings", params={"start": at(day, 0), "end": at(day + dt.timedelta(weeks=7), 0)},
                         headers=secretary).json()["items"]
    server = sorted((_utc(o["start"]), o["title"]) for o in listed if o["status"] != "cancelled")
    # the invitation, three one-occurrence changes, and "this and following": the old series
    # ended (an update) and the new one invited
    assert len(bodies) == 6
    replayed = client.occurrences(icaljs)
    assert replayed == server and len(server) == 5, (replayed, server)
