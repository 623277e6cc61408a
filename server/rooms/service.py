"""What the rooms write: the state of an occurrence's room, every join and leave (and the
roll-call they fill in), the chat, and the attendance report read from them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from server.db import utcnow
from server.meetings import records
from server.meetings.models import MeetingParticipant
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


# -- the report --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Presence:
    """One unit (or one person without an invited unit) at one occurrence."""

    key: str
    unit_code: str
    unit_name: str
    people: tuple[str, ...]
    first_join: dt.datetime
    last_leave: dt.datetime | None  # None: still in the room
    minutes: int  # the union of its stays, so two windows at once count once
    stays: int
    rtt_ms: float | None
    loss_percent: float | None


def _union_minutes(spans: list[tuple[dt.datetime, dt.datetime]]) -> int:
    total = dt.timedelta()
    current: tuple[dt.datetime, dt.datetime] | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += current[1] - current[0]
    return int(total.total_seconds() // 60)


def report(session: Session, meeting_id: int, original_start: dt.datetime, now: dt.datetime | None = None) -> list[Presence]:
    now = now or utcnow()
    rows = session.exec(select(RoomAttendance).where(
        RoomAttendance.meeting_id == meeting_id, RoomAttendance.original_start == original_start).order_by(col(RoomAttendance.joined_at))).all()
    groups: dict[str, list[RoomAttendance]] = {}
    for row in rows:
        groups.setdefault(row.unit_code or row.person, []).append(row)
    found = []
    for key, stays in groups.items():
        open_stay = any(s.left_at is None for s in stays)
        rtts = [s.rtt_ms for s in stays if s.rtt_ms is not None]
        losses = [s.loss_percent for s in stays if s.loss_percent is not None]
        found.append(Presence(
            key=key, unit_code=stays[0].unit_code, unit_name=stays[0].unit_name or stays[0].name,
            people=tuple(dict.fromkeys(s.name for s in stays)), first_join=stays[0].joined_at,
            last_leave=None if open_stay else max(s.left_at for s in stays if s.left_at is not None),
            minutes=_union_minutes([(s.joined_at, s.left_at or now) for s in stays]), stays=len(stays),
            rtt_ms=round(sum(rtts) / len(rtts), 1) if rtts else None,
            loss_percent=round(max(losses), 2) if losses else None,
        ))
    return sorted(found, key=lambda p: (p.unit_name, p.key))
