"""What the rooms write: the state of an occurrence's room, every join and leave (and the
roll-call they fill in) and the chat. ``server.records.presence`` reads the stays back
as the online-attendance report."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select

from server.db import utcnow
from server.meetings.models import MeetingParticipant
from server.records import service as records
from server.rooms.access import Admission
from server.rooms.models import RoomAttendance, RoomChat, RoomState


def state(session: Session, meeting_id: int, original_start: dt.datetime) -> RoomState:
    found = session.exec(select(RoomState).where(
        RoomState.meeting_id == meeting_id, RoomState.original_start == original_start)).first()
    return found or RoomState(meeting_id=meeting_id, original_start=original_start)


def _save(session: Session, row: RoomState) -> RoomState:
    session.add(row)
    session.flush()
    return row


def set_locked(session: Session, meeting_id: int, original_start: dt.datetime, locked: bool) -> RoomState:
    row = state(session, meeting_id, original_start)
    row.locked = locked
    return _save(session, row)


def remove_person(session: Session, meeting_id: int, original_start: dt.datetime, person: str) -> RoomState:
    row = state(session, meeting_id, original_start)
    if person not in row.removed:
        row.removed = [*row.removed, person]
    return _save(session, row)


def readmit_person(session: Session, meeting_id: int, original_start: dt.datetime, person: str) -> RoomState:
    row = state(session, meeting_id, original_start)
    if person in row.removed:
        row.removed = [p for p in row.removed if p != person]
        _save(session, row)
    return row


def end(session: Session, meeting_id: int, original_start: dt.datetime, by: str) -> RoomState:
    row = state(session, meeting_id, original_start)
    if row.ended_at is None:
        row.ended_at, row.ended_by = utcnow(), by
    return _save(session, row)


# -- attendance ------------------------------------------------------------------------------
def record_join(session: Session, admission: Admission, unit_id: int | None) -> int:
    """A stay begins; an invited unit (its room, or one of its people) counts as present online
    in the roll-call unless the secretary has already recorded it."""
    row = RoomAttendance(
        meeting_id=admission.meeting_id, original_start=admission.occurrence, person=admission.person,
        user_id=admission.user_id, name=admission.name, kind=admission.kind, role=admission.role,
        unit_code=admission.unit_code, unit_name=admission.unit_name,
    )
    session.add(row)
    if unit_id is not None:
        invited = session.exec(select(MeetingParticipant.id).where(
            MeetingParticipant.meeting_id == admission.meeting_id, MeetingParticipant.unit_id == unit_id)).first()
        if invited is not None:
            records.set_status(session, admission.meeting_id, admission.occurrence, unit_id, "present_online", automatic=True)
    session.flush()
    return row.id or 0


def record_leave(session: Session, attendance_id: int, reason: str, rtt_ms: float | None, loss_percent: float | None) -> None:
    row = session.get(RoomAttendance, attendance_id)
    if row is None or row.left_at is not None:
        return
    row.left_at, row.reason, row.rtt_ms, row.loss_percent = utcnow(), reason, rtt_ms, loss_percent
    session.add(row)


def close_open_stays(session: Session) -> int:
    """At start: stays left open by a stopped server end now, as 'dropped'."""
    rows = session.exec(select(RoomAttendance).where(col(RoomAttendance.left_at).is_(None))).all()
    for row in rows:
        row.left_at, row.reason = utcnow(), "dropped"
        session.add(row)
    return len(rows)


# -- chat ------------------------------------------------------------------------------------
def add_chat(session: Session, admission: Admission, text: str) -> RoomChat:
    row = RoomChat(meeting_id=admission.meeting_id, original_start=admission.occurrence, person=admission.person,
                   name=admission.name, unit_name=admission.unit_name, text=text)
    session.add(row)
    session.flush()
    return row


def chat(session: Session, meeting_id: int, original_start: dt.datetime) -> list[RoomChat]:
    return list(session.exec(select(RoomChat).where(
        RoomChat.meeting_id == meeting_id, RoomChat.original_start == original_start).order_by(col(RoomChat.id))).all())
