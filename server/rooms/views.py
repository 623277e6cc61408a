"""The room's records for an occurrence: the online-attendance report (printable, CSV) and the
chat (CSV). Whoever may see the meeting may read them; the minutes print carries both."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import LOCAL
from server.i18n import N_, Translations, current_translations, render
from server.meetings import records
from server.meetings.records_views import RECORD, csv_cell, occurrence_in, record_url
from server.rooms import service
from server.rooms.models import RoomChat
from server.rooms.service import Presence


def _local(moment: dt.datetime | None) -> str:
    return moment.astimezone(LOCAL).strftime("%H:%M:%S %d/%m/%Y") if moment else ""


def presence_rows(presence: list[Presence]) -> list[dict[str, Any]]:
    return [{
        "unit": p.unit_name, "code": p.unit_code, "people": ", ".join(p.people), "first_join": _local(p.first_join),
        "last_leave": _local(p.last_leave), "minutes": p.minutes, "stays": p.stays,
        "rtt": "" if p.rtt_ms is None else f"{p.rtt_ms:.0f}", "loss": "" if p.loss_percent is None else f"{p.loss_percent:.1f}",
    } for p in presence]


def _report(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> dict[str, Any]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return {"occurrence": current, "meeting": current.meeting,
            "rows": presence_rows(service.report(session, meeting_id, current.original_start)),
            "back": record_url(meeting_id, current.original_start)}


async def presence_page(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    state = app_state(request)
    context = await state.db.run(_report, user, meeting_id, original)
    return state.pages.render(request, "rooms/presence_print.html", context)


def _csv_response(rows: list[list[str]], name: str) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def presence_csv_rows(rows: list[dict[str, Any]], translations: Translations) -> list[list[str]]:
    head = [N_("Unit or person"), N_("Unit code"), N_("People"), N_("First join"), N_("Last leave"), N_("Minutes present"),
            N_("Stays"), N_("Round-trip time (ms)"), N_("Loss (per cent)")]
    out = [[render(h, translations) for h in head]]
    for r in rows:
        out.append([csv_cell(r["unit"]), csv_cell(r["code"]), csv_cell(r["people"]), r["first_join"], r["last_leave"], str(r["minutes"]),
                    str(r["stays"]), r["rtt"], r["loss"]])
    return out


async def presence_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    context = await app_state(request).db.run(_report, user, meeting_id, original)
    day = context["occurrence"].start.astimezone(LOCAL).strftime("%Y-%m-%d")
    return _csv_response(presence_csv_rows(context["rows"], current_translations.get()), f"tham-du-truc-tuyen-{meeting_id}-{day}.csv")


def chat_rows(chat: list[RoomChat], translations: Translations) -> list[list[str]]:
    out = [[render(h, translations) for h in (N_("Time"), N_("Name"), N_("Unit"), N_("Message"))]]
    out += [[_local(c.at), csv_cell(c.name), csv_cell(c.unit_name), csv_cell(c.text)] for c in chat]
    return out


def _chat(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> tuple[list[RoomChat], str]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return service.chat(session, meeting_id, current.original_start), current.start.astimezone(LOCAL).strftime("%Y-%m-%d")


async def chat_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    chat, day = await app_state(request).db.run(_chat, user, meeting_id, original)
    return _csv_response(chat_rows(chat, current_translations.get()), f"tro-chuyen-{meeting_id}-{day}.csv")


routes = [
    Route(f"{RECORD}/online", presence_page, methods=["GET"], name="occurrence_presence"),
    Route(f"{RECORD}/online.csv", presence_csv, methods=["GET"], name="occurrence_presence_csv"),
    Route(f"{RECORD}/chat.csv", chat_csv, methods=["GET"], name="occurrence_chat_csv"),
]
