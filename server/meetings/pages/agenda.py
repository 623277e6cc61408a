"""The agenda page: a unit's or a person's meetings, a week (Monday to Sunday) or a day at a
time, with the previous and next ones a link away. Only what the viewer may see is shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from server.accounts import service as accounts
from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import LOCAL, date_text, weekday_name
from server.db import utcnow
from server.errors import NotFound
from server.i18n import N_, Text
from server.meetings import service
from server.meetings.display import OccurrenceRow, occurrence_row
from server.meetings.forms import parse_date
from server.units import service as units
from server.units.models import Unit

VIEWS = ("week", "day")


@dataclass(frozen=True)
class Day:
    iso: str
    date: str
    weekday: Text
    today: bool
    rows: list[OccurrenceRow]


@dataclass(frozen=True)
class Query:
    view: str
    day: dt.date
    unit: str
    person: str

    @property
    def first(self) -> dt.date:
        return self.day - dt.timedelta(days=self.day.weekday()) if self.view == "week" else self.day

    @property
    def days(self) -> int:
        return 7 if self.view == "week" else 1

    def url(self, day: dt.date | None = None, view: str | None = None) -> str:
        params = {"person": self.person} if self.person else {"unit": self.unit} if self.unit else {}
        return "/agenda?" + urlencode({**params, "view": view or self.view, "date": (day or self.day).isoformat()})


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL)


def _subject(session: Session, viewer: User, query: Query) -> tuple[Unit | None, User | None, Text]:
    if query.person:
        person = accounts.by_username(session, query.person)
        return None, person, N_("Agenda of {name}", name=person.full_name)
    unit = units.find_by_codes(session, [query.unit.lower()]).get(query.unit.lower()) if query.unit else units.by_id(session, viewer.unit_id)
    if unit is None:
        raise NotFound(N_("Unknown unit code: {code}", code=query.unit), fields={"unit": N_("Unknown unit code: {code}", code=query.unit)})
    return unit, None, N_("Agenda of {name}", name=unit.name)


def _context(session: Session, viewer: User, query: Query) -> dict[str, Any]:
    unit, person, heading = _subject(session, viewer, query)
    first = query.first
    found = service.list_occurrences(session, viewer, _midnight(first), _midnight(first + dt.timedelta(days=query.days)),
                                     unit=unit, person=person)
    now = utcnow()
    today = now.astimezone(LOCAL).date()
    days = []
    for offset in range(query.days):
        day = first + dt.timedelta(days=offset)
        rows = [occurrence_row(o, now=now) for o in found if o.start.astimezone(LOCAL).date() == day]
        days.append(Day(day.isoformat(), date_text(day), weekday_name(day), day == today, rows))
    step = dt.timedelta(days=query.days)
    own = units.by_id(session, viewer.unit_id)
    return {
        "heading": heading,
        "days": days,
        "view": query.view,
        "period": date_text(first) if query.days == 1 else f"{date_text(first)} – {date_text(first + step - dt.timedelta(days=1))}",
        "previous_url": query.url(first - step),
        "next_url": query.url(first + step),
        "today_url": query.url(today),
        "week_url": query.url(view="week"),
        "day_url": query.url(view="day"),
        "own_unit_url": Query(query.view, query.day, own.code, "").url(),
        "own_person_url": Query(query.view, query.day, "", viewer.username).url(),
        "unit": query.unit or ("" if person else own.code),
        "person": query.person,
        "date": query.day.isoformat(),
        "units": units.all_units(session),
        "total": len(found),
    }


async def agenda_page(request: Request) -> Response:
    viewer = page_user(request)
    params = request.query_params
    view = params.get("view", "week")
    query = Query(
        view=view if view in VIEWS else "week",
        day=parse_date(params.get("date", "")[:20]) or dt.datetime.now(LOCAL).date(),
        unit=params.get("unit", "").strip()[:100],
        person=params.get("person", "").strip()[:100],
    )
    state = app_state(request)
    context = await state.db.run(_context, viewer, query)
    return state.pages.render(request, "meetings/agenda.html", context)
