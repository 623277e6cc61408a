"""The administrators' page of public holidays: a year's list, add a day, remove a day, import
a CSV file. The rules live in :mod:`server.workdays.service`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import LOCAL, date_text, weekday_name
from server.csvfile import ImportFailed
from server.edge import client_ip
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_, Text
from server.workdays import service
from server.workdays.models import Holiday


@dataclass(frozen=True)
class HolidayRow:
    """One line of the list, with everything the template shows already worked out."""

    iso: str
    date: str
    weekday: Text
    weekend: bool
    name: str
    observed: bool


def _admin(request: Request) -> User:
    user = page_user(request)
    if not permissions.is_admin(user):
        raise Forbidden(N_("Only administrators manage public holidays."))
    return user


def _this_year() -> int:
    return dt.datetime.now(LOCAL).year


def _year(value: str | None) -> int:
    """The year asked for, or this year when the value is missing or not a sensible year."""
    if value and value.isdigit() and service.FIRST_YEAR <= int(value) <= service.LAST_YEAR:
        return int(value)
    return _this_year()


def _row(holiday: Holiday) -> HolidayRow:
    return HolidayRow(
        iso=holiday.day.isoformat(),
        date=date_text(holiday.day),
        weekday=weekday_name(holiday.day),
        weekend=holiday.day.weekday() >= 5,
        name=holiday.name,
        observed=holiday.observed,
    )


def _context(session: Session, year: int) -> dict[str, Any]:
    years = sorted({*service.years(session), _this_year(), year})
    return {
        "year": year,
        "years": years,
        "rows": [_row(h) for h in service.list_holidays(session, year)],
        "values": {"day": "", "name": "", "observed": False},
        "add_errors": {},
        "errors": [],
        "missing": False,
        "result": None,
    }


async def _render(request: Request, year: int, status_code: int = 200, **extra: Any) -> Response:
    context = await app_state(request).db.run(_context, year)
    context.update(extra)
    return app_state(request).pages.render(request, "admin/holidays.html", context, status_code=status_code)


def _redirect(day: dt.date) -> Response:
    return RedirectResponse(f"/admin/holidays?year={day.year}", status_code=303)


async def holidays_page(request: Request) -> Response:
    _admin(request)
    return await _render(request, _year(request.query_params.get("year")))


async def add_holiday(request: Request) -> Response:
    actor = _admin(request)
    form = await request.form()
    typed, name, observed = str(form.get("day", "")).strip()[:20], str(form.get("name", ""))[:400], form.get("observed") == "1"
    shown_year = _year(str(form.get("year", "")))
    await form.close()
    day = service.parse_day(typed, typed=True)
    values = {"day": typed, "name": name, "observed": observed}
    try:
        if day is None:
            raise InvalidInput(N_("Nothing was changed."), fields={"day": N_("Enter a date as dd/mm/yyyy.")})
        await app_state(request).db.run(service.add, day, name, actor=actor, observed=observed, ip=client_ip(request))
    except (InvalidInput, Conflict) as exc:
        year = day.year if day is not None and service.FIRST_YEAR <= day.year <= service.LAST_YEAR else shown_year
        return await _render(request, year, exc.status, values=values, add_errors=exc.fields)
    return _redirect(day)


async def remove_holiday(request: Request) -> Response:
    actor = _admin(request)
    form = await request.form()
    day = service.parse_day(str(form.get("day", "")))
    await form.close()
    if day is None:
        raise InvalidInput(N_("Nothing was changed."), fields={"day": N_("Enter a date as dd/mm/yyyy.")})
    await app_state(request).db.run(service.remove, day, actor=actor, ip=client_ip(request))
    return _redirect(day)


async def import_holidays(request: Request) -> Response:
    actor = _admin(request)
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    replace_years = form.get("replace") == "1"
    year = _year(str(form.get("year", "")))
    await form.close()
    if not data:
        return await _render(request, year, 422, missing=True)
    try:
        result = await app_state(request).db.run(
            service.import_file, data, actor=actor, replace_years=replace_years, ip=client_ip(request)
        )
    except ImportFailed as exc:
        return await _render(request, year, 422, errors=exc.errors)
    # Show the first year the file changed, so the administrator sees the result at once.
    return await _render(request, result.years[0], result=result)


routes = [
    Route("/admin/holidays", holidays_page, methods=["GET"], name="admin_holidays"),
    Route("/admin/holidays/add", add_holiday, methods=["POST"], name="admin_holiday_add"),
    Route("/admin/holidays/remove", remove_holiday, methods=["POST"], name="admin_holiday_remove"),
    Route("/admin/holidays/import", import_holidays, methods=["POST"], name="admin_holidays_import"),
]
