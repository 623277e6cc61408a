"""The room's record of an occurrence, read back: online attendance per unit (first join, last
leave, minutes present as the union of its stays, line quality) the chat is read with ``server.rooms.service.chat``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from server.db import utcnow
from server.rooms.models import RoomAttendance


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
