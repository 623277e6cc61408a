"""What an occurrence records: the roll-call (điểm danh) of each invited unit and the minutes
(biên bản). Secretaries who may edit the meeting write them; whoever may see it reads them.

The status setter :func:`set_status` takes plain values and no permission, so that presence
can later be filled in automatically from joins; a secretary's own entry is never overwritten
by an automatic one.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.accounts.models import User
from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict, InvalidInput
from server.i18n import N_, Text, Translations, render
from server.meetings import service
from server.meetings.models import Meeting, MeetingParticipant
from server.meetings.service import Occurrence
from server.records.models import Minutes, RollCall
from server.text import nfc

STATUSES = ("present_in_person", "present_online", "absent", "unknown")
STATUS_LABELS: dict[str, Text] = {
    "present_in_person": N_("Present in person"),
    "present_online": N_("Present online"),
    "absent": N_("Absent"),
    "unknown": N_("Not recorded"),
}
REASON_MAX = 500
CHAIR_MAX = 200
ATTENDEES_MAX = 5000
TEXT_MAX = 50000
MINUTES_FIELDS = {"chair": CHAIR_MAX, "attendees": ATTENDEES_MAX, "proceedings": TEXT_MAX, "opinions": TEXT_MAX,
                  "conclusions": TEXT_MAX}


@dataclass(frozen=True)
class Attendance:
    """One invited unit's line of the roll-call."""

    unit_id: int
    code: str
    name: str
    parent_name: str
    status: str
    reason: str
    automatic: bool
    updated_at: dt.datetime | None

    @property
    def label(self) -> Text:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class StatusChange:
    unit: str  # the unit's code
    status: str
    reason: str = ""


@dataclass(frozen=True)
class MinutesInput:
    chair: str
    attendees: str
    proceedings: str
    opinions: str
    conclusions: str


@dataclass(frozen=True)
class MinutesView:
    chair: str
    attendees: str
    proceedings: str
    opinions: str
    conclusions: str
    version: int  # 0: not saved yet (the fields are the defaults)
    updated_at: dt.datetime | None
    updated_by: str


# --- the occurrence -------------------------------------------------------------------------


def visible_occurrence(session: Session, viewer: User, meeting_id: int, original_start: dt.datetime) -> Occurrence:
    return service.occurrence(session, service.get_visible(session, viewer, meeting_id), original_start)


def _editable_occurrence(session: Session, actor: User, meeting_id: int, original_start: dt.datetime) -> Occurrence:
    current = service.occurrence(session, service.get_editable(session, actor, meeting_id), original_start)
    if current.cancelled:
        raise Conflict(N_("This occurrence was cancelled; its records can no longer be changed."))
    return current


def require_recorder(session: Session, actor: User, meeting_id: int, original_start: dt.datetime) -> None:
    """The permission to write this occurrence's records, asked before a request's body is read
    (404 not visible, 403 not the host's secretary), so that a caller without it learns nothing
    of the fields. (A cancelled occurrence is refused when the records are written.)"""
    service.require_editor(session, actor, meeting_id, original_start)


def can_record(session: Session, actor: User, current: Occurrence) -> bool:
    return not current.cancelled and service.can_edit(session, actor, current.meeting)


# --- roll-call ------------------------------------------------------------------------------


def _invited_units(session: Session, meeting: Meeting) -> list[MeetingParticipant]:
    return [p for p in service.participants(session, meeting) if p.unit_id is not None]


def _rows(session: Session, meeting_id: int, original_start: dt.datetime) -> dict[int, RollCall]:
    rows = session.exec(select(RollCall).where(RollCall.meeting_id == meeting_id, RollCall.original_start == original_start)).all()
    return {r.unit_id: r for r in rows}


def attendance(session: Session, current: Occurrence) -> list[Attendance]:
    """Every invited unit with its status (``unknown`` until recorded)."""
    meeting = current.meeting
    rows = _rows(session, meeting.id or 0, current.original_start)
    found = []
    for p in _invited_units(session, meeting):
        row = rows.get(p.unit_id or 0)
        found.append(Attendance(
            unit_id=p.unit_id or 0, code=p.code, name=p.name, parent_name=p.parent_name,
            status=row.status if row else "unknown", reason=row.reason if row else "",
            automatic=row.automatic if row else False, updated_at=row.updated_at if row else None,
        ))
    return found


def _check_status(status: str, reason: str) -> tuple[str, Text | None]:
    """The reason to keep, and the error of this pair (or None)."""
    reason = nfc(reason)
    if status not in STATUSES:
        return reason, N_("Unknown status {status}: use present_in_person, present_online, absent or unknown.", status=status[:50])
    if status == "absent" and not reason:
        return reason, N_("Give the reason for the absence.")
    if len(reason) > REASON_MAX:
        return reason, N_("A reason has at most {n} characters.", n=REASON_MAX)
    return (reason if status == "absent" else ""), None


def set_status(
    session: Session, meeting_id: int, original_start: dt.datetime, unit_id: int, status: str, reason: str = "", *,
    automatic: bool = False, actor_id: int | None = None,
) -> RollCall:
    """Record one invited unit's presence at one occurrence. Neither the permission nor the
    occurrence is checked here (callers do: ``original_start`` must be an occurrence's original
    start). An automatic entry never replaces one a person made."""
    reason, error = _check_status(status, reason)
    if error is not None:
        raise InvalidInput(N_("The roll-call was not saved."), fields={"status" if status not in STATUSES else "reason": error})
    invited = session.exec(select(MeetingParticipant.id).where(
        MeetingParticipant.meeting_id == meeting_id, MeetingParticipant.unit_id == unit_id)).first()
    if invited is None:
        raise InvalidInput(N_("The roll-call was not saved."), fields={"unit": N_("This unit is not invited to the meeting.")})
    original_start = original_start.astimezone(dt.UTC)
    row = session.exec(select(RollCall).where(
        RollCall.meeting_id == meeting_id, RollCall.original_start == original_start, RollCall.unit_id == unit_id)).first()
    if row is not None and automatic and not row.automatic and row.status != "unknown":
        return row
    row = row or RollCall(meeting_id=meeting_id, original_start=original_start, unit_id=unit_id)
    row.status, row.reason, row.automatic = status, reason, automatic
    row.updated_by_id, row.updated_at = actor_id, utcnow()
    session.add(row)
    return row


def record_roll_call(
    session: Session, actor: User, meeting_id: int, original_start: dt.datetime, changes: Sequence[StatusChange], *,
    ip: str = "",
) -> list[Attendance]:
    """A secretary's roll-call: every change is checked first (errors keyed by unit code),
    then those that differ from what is stored are written; nothing when any is wrong."""
    current = _editable_occurrence(session, actor, meeting_id, original_start)
    invited = {p.code: p for p in _invited_units(session, current.meeting)}
    stored = {a.code: a for a in attendance(session, current)}
    errors: dict[str, Text | str] = {}
    seen: set[str] = set()
    clean: list[tuple[MeetingParticipant, str, str]] = []
    for change in changes:
        code = change.unit.strip().lower()
        if code in seen:
            errors[code] = N_("This unit is listed twice.")
            continue
        seen.add(code)
        participant = invited.get(code)
        if participant is None:
            errors[code or "unit"] = N_("{code} is not a unit invited to this meeting.", code=change.unit[:100])
            continue
        reason, error = _check_status(change.status, change.reason)
        if error is not None:
            errors[code] = error
            continue
        clean.append((participant, change.status, reason))
    if errors:
        raise InvalidInput(N_("The roll-call was not saved: some entries are invalid."), fields=errors)
    written = 0
    for participant, status, reason in clean:
        before = stored[participant.code]
        if (before.status, before.reason) == (status, reason):
            continue  # unchanged: an automatic entry stays automatic
        set_status(session, meeting_id, current.original_start, participant.unit_id or 0, status, reason, actor_id=actor.id)
        written += 1
    if written:
        audit.record(session, "roll_call_recorded", actor=actor, target=f"{meeting_id}@{current.original_start.isoformat()}",
                     ip=ip, units=written)
    session.flush()
    return attendance(session, current)


def attendees_summary(roll: Sequence[Attendance], translations: Translations) -> str:
    """The default "attendees" of the minutes, one line per status, from the roll-call."""
    lines = []
    for status, message in (
        ("present_in_person", N_("Present in person ({count}): {names}.")),
        ("present_online", N_("Present online ({count}): {names}.")),
        ("absent", N_("Absent ({count}): {names}.")),
        ("unknown", N_("Not recorded ({count}): {names}.")),
    ):
        entries = [a for a in roll if a.status == status]
        if not entries:
            continue
        names = ", ".join(
            render(N_("{name} (reason: {reason})", name=a.name, reason=a.reason), translations) if a.reason else a.name
            for a in entries
        )
        lines.append(render(replace(message, params={"count": len(entries), "names": names}), translations))
    return "\n".join(lines)[:ATTENDEES_MAX]


# --- minutes --------------------------------------------------------------------------------


def _stored_minutes(session: Session, meeting_id: int, original_start: dt.datetime) -> Minutes | None:
    return session.exec(select(Minutes).where(Minutes.meeting_id == meeting_id, Minutes.original_start == original_start)).first()


def _view(session: Session, row: Minutes) -> MinutesView:
    by = session.get(User, row.updated_by_id) if row.updated_by_id else None
    return MinutesView(row.chair, row.attendees, row.proceedings, row.opinions, row.conclusions, row.version,
                       row.updated_at, by.full_name if by else "")


def minutes(session: Session, current: Occurrence, translations: Translations) -> MinutesView:
    """The saved minutes, or the defaults: the meeting's chair and attendees from the roll-call."""
    row = _stored_minutes(session, current.meeting.id or 0, current.original_start)
    if row is not None:
        return _view(session, row)
    summary = attendees_summary(attendance(session, current), translations)
    return MinutesView(current.meeting.chair_name, summary, "", "", "", 0, None, "")


def _clean_text(value: str, *, single_line: bool) -> str:
    if single_line:
        return nfc(value)
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _stale(theirs: int, yours: int) -> Conflict:
    return Conflict(
        N_("Someone else saved these minutes after you opened them (version {theirs}, yours {yours}). "
           "Copy your text, reload the page and make your change again.", theirs=theirs, yours=yours),
        fields={"version": N_("Changed since you read it: reload.")},
    )


def save_minutes(
    session: Session, actor: User, meeting_id: int, original_start: dt.datetime, data: MinutesInput, *, version: int,
    ip: str = "",
) -> MinutesView:
    """Save the minutes read at ``version`` (0 when they were not saved yet); a stale version
    is a 409 and nothing is overwritten."""
    current = _editable_occurrence(session, actor, meeting_id, original_start)
    values = {name: _clean_text(getattr(data, name), single_line=name == "chair") for name in MINUTES_FIELDS}
    errors: dict[str, Text | str] = {
        name: N_("At most {n} characters.", n=limit) for name, limit in MINUTES_FIELDS.items() if len(values[name]) > limit
    }
    if errors:
        raise InvalidInput(N_("The minutes were not saved: some fields are too long."), fields=errors)
    row = _stored_minutes(session, meeting_id, current.original_start)
    stale = (row.version if row else 0) != version
    if not stale and row is None:
        row = Minutes(meeting_id=meeting_id, original_start=current.original_start, version=1, updated_by_id=actor.id)
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        try:
            session.flush()
        except sa.exc.IntegrityError:  # first saved by someone else at the same moment
            raise _stale(1, version) from None
    elif not stale and row is not None:
        # Compare-and-set on the version, so two saves of the same version cannot both win.
        result = session.execute(
            sa.update(Minutes).where(col(Minutes.id) == row.id, col(Minutes.version) == version)
            .values(version=version + 1, updated_by_id=actor.id, updated_at=utcnow(), **values)
        )
        stale = result.rowcount != 1  # type: ignore[attr-defined]
        session.refresh(row)
    if stale:
        now = _stored_minutes(session, meeting_id, current.original_start)
        raise _stale(now.version if now else 0, version)
    assert row is not None
    audit.record(session, "minutes_saved", actor=actor, target=f"{meeting_id}@{current.original_start.isoformat()}",
                 ip=ip, version=row.version)
    session.flush()
    return _view(session, row)
