"""Scheduling: create, change and cancel meetings and their occurrences, list what a person
may see, and check a plan for conflicts before it is saved. Every query and state change of
meetings lives here (documents and records have their own modules)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from server import permissions
from server.accounts.models import User
from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.i18n import N_, Text
from server.meetings import recurrence
from server.meetings.conflicts import Conflict as PlanConflict
from server.meetings.conflicts import Slot, day_off_conflicts, find_conflicts, notice_conflicts
from server.meetings.models import Meeting, MeetingParticipant, MeetingSelection, OccurrenceOverride
from server.meetings.participants import Choice, Expansion, expand
from server.records.models import Minutes, RollCall
from server.text import fold, nfc
from server.units import service as units
from server.units.models import Unit
from server.workdays import service as workdays
from server.workdays.calendar import WorkingCalendar

KINDS = ("regular", "ad_hoc")
MAX_DURATION = dt.timedelta(hours=12)
TITLE_MAX = 200
DESCRIPTION_MAX = 5000
AGENDA_MAX_ITEMS = 50
AGENDA_ITEM_MAX = 500


@dataclass(frozen=True)
class MeetingInput:
    """A whole plan, as the API and the pages give it (times aware, any offset)."""

    title: str
    start: dt.datetime
    end: dt.datetime
    host_unit: str
    chair: str
    kind: str = "regular"
    description: str = ""
    agenda: tuple[str, ...] = ()
    participants: Choice = field(default_factory=Choice)
    recurrence: str = ""


@dataclass
class Prepared:
    data: MeetingInput
    host: Unit
    chair: User
    expansion: Expansion
    rule: str
    starts: list[dt.datetime]

    @property
    def duration(self) -> dt.timedelta:
        return self.data.end - self.data.start


@dataclass(frozen=True)
class Invitee:
    """Someone who gets the invitation mail: an invited person, or an invited unit's mailbox."""

    email: str
    name: str


class Notifier(Protocol):
    """Told of every change, inside its transaction (the mail outbox is one; tests need none)."""

    def saved(self, session: Session, meeting: Meeting, *, previous: Mapping[str, Invitee], created: bool) -> None: ...

    def cancelled(self, session: Session, meeting: Meeting) -> None: ...

    def occurrence_changed(self, session: Session, meeting: Meeting, original_start: dt.datetime, *, cancelled: bool) -> None: ...


def invitees(session: Session, meeting: Meeting) -> dict[str, Invitee]:
    """Who gets mail about ``meeting`` now, by lower-case address, once each."""
    found: dict[str, Invitee] = {}
    for p in participants(session, meeting):
        if p.email.strip():
            found.setdefault(p.email.strip().lower(), Invitee(p.email.strip(), p.name))
    return found


@dataclass(frozen=True)
class Occurrence:
    meeting: Meeting
    original_start: dt.datetime
    start: dt.datetime
    end: dt.datetime
    title: str
    cancelled: bool = False
    changed: bool = False


@dataclass(frozen=True)
class CheckResult:
    prepared: Prepared
    conflicts: list[PlanConflict]

    @property
    def hard(self) -> list[PlanConflict]:
        return [c for c in self.conflicts if c.severity == "hard"]


# --- validation ---------------------------------------------------------------------------


def prepare(session: Session, data: MeetingInput) -> Prepared:
    """Check every field of a plan; raise one 422 naming every bad field."""
    errors: dict[str, Text | str] = {}
    title = nfc(data.title)
    if not title:
        errors["title"] = N_("The title is empty.")
    elif len(title) > TITLE_MAX:
        errors["title"] = N_("At most {n} characters.", n=TITLE_MAX)
    description = data.description.strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = N_("At most {n} characters.", n=DESCRIPTION_MAX)
    agenda = tuple(nfc(item) for item in data.agenda if nfc(item))
    if len(agenda) > AGENDA_MAX_ITEMS:
        errors["agenda"] = N_("At most {n} agenda items.", n=AGENDA_MAX_ITEMS)
    elif any(len(item) > AGENDA_ITEM_MAX for item in agenda):
        errors["agenda"] = N_("An agenda item has at most {n} characters.", n=AGENDA_ITEM_MAX)
    if data.kind not in KINDS:
        errors["kind"] = N_("The kind is regular or ad_hoc.")
    for name, value in (("start", data.start), ("end", data.end)):
        if value.tzinfo is None:
            errors[name] = N_("Give the time with its offset, e.g. 2026-12-07T08:00:00+07:00.")
    if "start" not in errors and "end" not in errors:
        if data.end <= data.start:
            errors["end"] = N_("The end must be after the start.")
        elif data.end - data.start > MAX_DURATION:
            errors["end"] = N_("A meeting lasts at most 12 hours.")
    host = units.find_by_codes(session, [data.host_unit.strip().lower()]).get(data.host_unit.strip().lower())
    if host is None:
        errors["host_unit"] = N_("Unknown unit code: {code}", code=data.host_unit)
    elif not host.active:
        errors["host_unit"] = N_("The unit {code} is no longer active.", code=host.code)
    chair = session.exec(select(User).where(User.username == data.chair.strip().lower())).first()
    if chair is None or not chair.active:
        errors["chair"] = N_("Unknown or disabled account: {username}", username=data.chair)
        chair = None
    elif chair.role == "endpoint":
        errors["chair"] = N_("The chair is a person, not a meeting room.")
    expansion = expand(session, data.participants, chair)
    errors.update(expansion.errors)
    rule = ""
    starts: list[dt.datetime] = []
    if "start" not in errors:
        start = data.start.astimezone(dt.UTC)
        if data.recurrence.strip():
            try:
                rule = recurrence.normalise(data.recurrence, start)
                starts = recurrence.starts(start, rule)
            except InvalidInput as exc:
                errors.update(exc.fields)
        else:
            starts = [start]
    if errors:
        raise InvalidInput(N_("The meeting was not saved: some fields are invalid."), fields=errors)
    assert host is not None and chair is not None
    clean = replace(
        data, title=title, description=description, agenda=agenda,
        start=data.start.astimezone(dt.UTC), end=data.end.astimezone(dt.UTC),
    )
    return Prepared(clean, host, chair, expansion, rule, starts)


# --- conflicts ----------------------------------------------------------------------------


def _slots_of_plan(prepared: Prepared, skip: set[dt.datetime] | None = None) -> list[Slot]:
    unit_ids = frozenset(u.id for u in prepared.expansion.units if u.id is not None)
    user_ids = frozenset(p.id for p in prepared.expansion.people if p.id is not None)
    return [
        Slot(None, prepared.data.title, s, s + prepared.duration, unit_ids, user_ids,
             prepared.chair.id or 0, prepared.expansion.endpoints)
        for s in prepared.starts
        if not skip or s not in skip
    ]


def _existing_slots(session: Session, start: dt.datetime, end: dt.datetime, exclude: set[int]) -> list[Slot]:
    """Occurrences of other scheduled meetings that run between ``start`` and ``end``."""
    meetings = session.exec(
        select(Meeting).where(
            Meeting.status == "scheduled", col(Meeting.start) < end, col(Meeting.series_end) > start,
            col(Meeting.id).not_in(exclude or {-1}),
        )
    ).all()
    if not meetings:
        return []
    ids = [m.id for m in meetings]
    unit_ids: dict[int, set[int]] = {}
    user_ids: dict[int, set[int]] = {}
    for meeting_id, unit_id, user_id in session.exec(
        select(MeetingParticipant.meeting_id, MeetingParticipant.unit_id, MeetingParticipant.user_id).where(
            col(MeetingParticipant.meeting_id).in_(ids)
        )
    ).all():
        if unit_id is not None:
            unit_ids.setdefault(meeting_id, set()).add(unit_id)
        if user_id is not None:
            user_ids.setdefault(meeting_id, set()).add(user_id)
    slots = []
    for occurrence in _expand(session, list(meetings), start, end):
        meeting = occurrence.meeting
        if occurrence.cancelled or meeting.id is None:
            continue
        slots.append(
            Slot(meeting.id, occurrence.title, occurrence.start, occurrence.end,
                 frozenset(unit_ids.get(meeting.id, ())), frozenset(user_ids.get(meeting.id, ())),
                 meeting.chair_id, meeting.endpoints)
        )
    return slots


def conflicts_of(
    session: Session, prepared: Prepared, *, max_endpoints: int, exclude: set[int] | None = None,
    skip: set[dt.datetime] | None = None, announced_at: dt.datetime | None = None,
) -> list[PlanConflict]:
    """Every conflict of every occurrence of the plan, hard ones first."""
    candidate = _slots_of_plan(prepared, skip)
    if not candidate:
        return []
    first = min(s.start for s in candidate)
    last = max(s.end for s in candidate)
    existing = _existing_slots(session, first, last, exclude or set())
    names = {u.id: u.name for u in units.all_units(session, include_inactive=True) if u.id is not None}
    people_ids = {i for s in existing for i in s.user_ids} | {prepared.chair.id or 0}
    people = {u.id: u.full_name for u in session.exec(select(User).where(col(User.id).in_(people_ids))).all() if u.id}
    found = find_conflicts(candidate, existing, max_endpoints=max_endpoints, unit_names=names, user_names=people)
    holidays = {h.day: h.name for h in workdays.list_holidays(session, None)}
    calendar = WorkingCalendar(holidays)
    if prepared.data.kind == "regular":
        found += notice_conflicts(candidate, announced_at=announced_at or utcnow(), calendar=calendar)
    found += day_off_conflicts(candidate, calendar=calendar, holiday_names=holidays)
    return sorted(found, key=lambda c: (c.severity != "hard", c.occurrence, c.kind))


def check(session: Session, actor: User, data: MeetingInput, *, max_endpoints: int, meeting_id: int | None = None) -> CheckResult:
    prepared = prepare(session, data)
    _require_scheduler(session, actor, prepared.host)
    if not meeting_id:
        return CheckResult(prepared, conflicts_of(session, prepared, max_endpoints=max_endpoints))
    moved = {o.original_start for o in _overrides(session, [meeting_id]).get(meeting_id, [])}
    return CheckResult(prepared, conflicts_of(session, prepared, max_endpoints=max_endpoints, exclude={meeting_id}, skip=moved))


def _refuse_hard(conflicts: Sequence[PlanConflict], confirm: bool) -> None:
    hard = [c for c in conflicts if c.severity == "hard"]
    if hard and not confirm:
        raise Conflict(
            N_("The plan has {count} conflict(s). Change it, or confirm to save it anyway.", count=len(hard)),
            conflicts=hard,
        )


# --- saving -------------------------------------------------------------------------------


def _require_scheduler(session: Session, actor: User, host: Unit) -> None:
    if not permissions.can_schedule_for(session, actor, host):
        raise Forbidden(
            N_("Only secretaries of {unit} or of a unit above it schedule its meetings.", unit=host.name),
            fields={"host_unit": N_("You do not act for this unit.")},
        )


def _write_participants(session: Session, meeting: Meeting, prepared: Prepared) -> None:
    """Replace the expansion, keeping the answers of those still invited."""
    assert meeting.id is not None
    # Deputies named in answers (no unit, no account) are not part of the secretary's choice:
    # an edit keeps them.
    old = {(p.unit_id, p.user_id): p for p in session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id)).all()
           if p.unit_id is not None or p.user_id is not None}
    session.exec(delete(MeetingSelection).where(col(MeetingSelection.meeting_id) == meeting.id))
    for kind, unit, level, user in prepared.expansion.selections:
        session.add(MeetingSelection(meeting_id=meeting.id, kind=kind, unit_id=unit.id if unit else None, level=level, user_id=user.id if user else None))
    keep: set[tuple[int | None, int | None]] = set()
    parents = {u.id: u.name for u in units.all_units(session, include_inactive=True)}
    key: tuple[int | None, int | None]
    for unit in prepared.expansion.units:
        key = (unit.id, None)
        keep.add(key)
        row = old.get(key) or MeetingParticipant(meeting_id=meeting.id, unit_id=unit.id, code=unit.code, name=unit.name)
        row.code, row.name, row.email = unit.code, unit.name, unit.email
        row.parent_name = parents.get(unit.parent_id, "") if unit.parent_id else ""
        session.add(row)
    for person in prepared.expansion.people:
        key = (None, person.id)
        keep.add(key)
        row = old.get(key) or MeetingParticipant(meeting_id=meeting.id, user_id=person.id, code=person.username, name=person.full_name)
        row.code, row.name, row.email = person.username, person.full_name, person.email
        row.parent_name = parents.get(person.unit_id, "")
        row.role = "chair" if person.id == prepared.chair.id else "participant"
        session.add(row)
    for old_key, old_row in old.items():
        if old_key not in keep:
            session.delete(old_row)


def _apply(meeting: Meeting, prepared: Prepared) -> None:
    data = prepared.data
    meeting.title = data.title
    meeting.search_key = fold(data.title)
    meeting.description = data.description
    meeting.agenda = list(data.agenda)
    meeting.kind = data.kind
    meeting.host_unit_id = prepared.host.id or 0
    meeting.host_unit_name = prepared.host.name
    meeting.chair_id = prepared.chair.id or 0
    meeting.chair_name = prepared.chair.full_name
    meeting.start = data.start
    meeting.end = data.end
    meeting.rrule = prepared.rule
    meeting.series_end = prepared.starts[-1] + prepared.duration
    meeting.endpoints = prepared.expansion.endpoints


def create(
    session: Session, actor: User, data: MeetingInput, *, max_endpoints: int, confirm: bool = False, ip: str = "",
    notify: Notifier | None = None,
) -> tuple[Meeting, list[PlanConflict]]:
    result = check(session, actor, data, max_endpoints=max_endpoints)
    _refuse_hard(result.conflicts, confirm)
    meeting = Meeting(
        uid=f"{uuid.uuid4()}@giaoban", title="", kind="", host_unit_id=0, host_unit_name="", chair_id=0,
        chair_name="", start=data.start, end=data.end, series_end=data.end, created_by_id=actor.id,
    )
    _apply(meeting, result.prepared)
    session.add(meeting)
    session.flush()
    _write_participants(session, meeting, result.prepared)
    audit.record(session, "meeting_created", actor=actor, target=str(meeting.id), ip=ip, title=meeting.title,
                 occurrences=len(result.prepared.starts), confirmed_conflicts=len(result.hard))
    session.flush()
    if notify is not None:
        notify.saved(session, meeting, previous={}, created=True)
    return meeting, result.conflicts


def get(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(N_("No such meeting."))
    return meeting


def get_visible(session: Session, viewer: User, meeting_id: int) -> Meeting:
    """The meeting, or 404 when it is missing or not visible to ``viewer`` (never 403: the
    existence of a meeting one may not see is not told)."""
    if not permissions.can_see_meeting(session, viewer, meeting_id):
        raise NotFound(N_("No such meeting."))
    return get(session, meeting_id)


def get_editable(session: Session, actor: User, meeting_id: int, version: int | None = None) -> Meeting:
    meeting = get_visible(session, actor, meeting_id)
    _require_scheduler(session, actor, units.by_id(session, meeting.host_unit_id))
    if meeting.status == "cancelled":
        raise Conflict(N_("This meeting was cancelled; it can no longer be changed."))
    if version is not None and version != meeting.version:
        raise Conflict(
            N_("Someone else changed this meeting after you opened it (version {theirs}, yours {yours}). Reload it and make your change again.",
               theirs=meeting.version, yours=version),
            fields={"version": N_("Changed since you read it: reload.")},
        )
    return meeting


def require_scheduler(actor: User) -> None:
    """The permission part of planning, asked before the plan is read: whoever can schedule for
    no unit gets 403 whatever they send (the plan's host unit is checked when it is read)."""
    if not permissions.can_schedule_at_all(actor):
        raise Forbidden(N_("Only secretaries and administrators schedule meetings."))


def require_editor(session: Session, actor: User, meeting_id: int, original_start: dt.datetime | None = None) -> None:
    """The permission part of a change, asked before the request's body is read: 404 when the
    meeting (or that occurrence of it) is missing or not visible, 403 when the actor may not
    change it. So a caller without the right learns nothing of what the body should hold."""
    meeting = get_visible(session, actor, meeting_id)
    host = units.by_id(session, meeting.host_unit_id)
    if not permissions.can_schedule_for(session, actor, host):
        raise Forbidden(N_("Only secretaries of {unit} or of a unit above it schedule its meetings.", unit=host.name))
    if original_start is not None:
        occurrence(session, meeting, original_start)


def _refuse_if_recorded(session: Session, meeting_id: int, since: dt.datetime | None = None) -> None:
    """Roll-call and minutes belong to an occurrence's original start; changing which
    occurrences exist would leave them pointing at nothing, so such a change is refused."""
    for model in (RollCall, Minutes):
        query = select(model.id).where(model.meeting_id == meeting_id)
        if since is not None:
            query = query.where(col(model.original_start) >= since)
        if session.exec(query).first() is not None:
            raise Conflict(N_(
                "Occurrences of this meeting already have a roll-call or minutes, so its times cannot change. "
                "Move single occurrences instead, or change the following ones from a later occurrence."
            ))


def _claim(session: Session, meeting: Meeting, version: int | None) -> None:
    """Take the next version with one compare-and-set UPDATE, so that of two secretaries
    saving the same meeting at once exactly one wins: the other's UPDATE finds the version
    already moved on (PostgreSQL waits on the row lock, then sees it) and gets 409."""
    expected = meeting.version if version is None else version
    result = session.execute(
        sa.update(Meeting).where(col(Meeting.id) == meeting.id, col(Meeting.version) == expected).values(version=expected + 1)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            N_("Someone else changed this meeting after you opened it (version {theirs}, yours {yours}). Reload it and make your change again.",
               theirs=expected + 1, yours=expected),
            fields={"version": N_("Changed since you read it: reload.")},
        )
    meeting.version = expected + 1
    session.add(meeting)


def as_input(session: Session, meeting: Meeting) -> MeetingInput:
    """The stored plan, as a whole input (PATCH fills in what it does not change)."""
    from server.meetings.participants import LevelChoice

    rows = session.exec(select(MeetingSelection).where(MeetingSelection.meeting_id == meeting.id).order_by(col(MeetingSelection.id))).all()
    codes = units.codes_by_id(session)
    names = {u.id: u.username for u in session.exec(select(User).where(col(User.id).in_([r.user_id for r in rows if r.user_id]))).all()}
    choice = Choice(
        units=tuple(codes.get(r.unit_id or 0, "") for r in rows if r.kind == "unit"),
        levels=tuple(LevelChoice(codes.get(r.unit_id or 0, ""), r.level) for r in rows if r.kind == "level"),
        users=tuple(names.get(r.user_id or 0, "") for r in rows if r.kind == "user"),
    )
    chair = session.get(User, meeting.chair_id)
    return MeetingInput(
        title=meeting.title, start=meeting.start, end=meeting.end, host_unit=codes.get(meeting.host_unit_id, ""),
        chair=chair.username if chair else "", kind=meeting.kind, description=meeting.description,
        agenda=tuple(meeting.agenda or ()), participants=choice, recurrence=meeting.rrule,
    )


def update(
    session: Session, actor: User, meeting_id: int, data: MeetingInput, *, version: int, max_endpoints: int,
    confirm: bool = False, ip: str = "", notify: Notifier | None = None,
) -> tuple[Meeting, list[PlanConflict]]:
    meeting = get_editable(session, actor, meeting_id, version)
    prepared = prepare(session, data)
    _require_scheduler(session, actor, prepared.host)
    overrides = _overrides(session, [meeting_id])
    moved = {o.original_start for o in overrides.get(meeting_id, [])}
    conflicts = conflicts_of(session, prepared, max_endpoints=max_endpoints, exclude={meeting_id}, skip=moved)
    _refuse_hard(conflicts, confirm)
    times_changed = (meeting.start, meeting.end, meeting.rrule) != (prepared.data.start, prepared.data.end, prepared.rule)
    if times_changed:
        _refuse_if_recorded(session, meeting_id)
    _claim(session, meeting, version)
    _apply(meeting, prepared)
    if times_changed:  # the occurrences are new ones: old exceptions no longer name any of them
        session.exec(delete(OccurrenceOverride).where(col(OccurrenceOverride.meeting_id) == meeting_id))
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    session.add(meeting)
    previous = invitees(session, meeting)
    _write_participants(session, meeting, prepared)
    audit.record(session, "meeting_updated", actor=actor, target=str(meeting_id), ip=ip, version=meeting.version)
    session.flush()
    if notify is not None:
        notify.saved(session, meeting, previous=previous, created=False)
    return meeting, conflicts


def cancel(
    session: Session, actor: User, meeting_id: int, *, version: int | None = None, ip: str = "", notify: Notifier | None = None,
) -> Meeting:
    meeting = get_editable(session, actor, meeting_id, version)
    _claim(session, meeting, version)
    meeting.status = "cancelled"
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    session.add(meeting)
    audit.record(session, "meeting_cancelled", actor=actor, target=str(meeting_id), ip=ip, title=meeting.title)
    session.flush()
    if notify is not None:
        notify.cancelled(session, meeting)
    return meeting


# --- occurrences --------------------------------------------------------------------------


def _overrides(session: Session, meeting_ids: Sequence[int | None]) -> dict[int, list[OccurrenceOverride]]:
    found: dict[int, list[OccurrenceOverride]] = {}
    ids = [i for i in meeting_ids if i is not None]
    if ids:
        for row in session.exec(select(OccurrenceOverride).where(col(OccurrenceOverride.meeting_id).in_(ids))).all():
            found.setdefault(row.meeting_id, []).append(row)
    return found


def _expand(session: Session, meetings: Sequence[Meeting], start: dt.datetime, end: dt.datetime) -> list[Occurrence]:
    """Occurrences of ``meetings`` running in [start, end), with their exceptions applied."""
    overrides = _overrides(session, [m.id for m in meetings])
    found: list[Occurrence] = []
    for meeting in meetings:
        duration = meeting.end - meeting.start
        exceptions = {o.original_start: o for o in overrides.get(meeting.id or 0, [])}
        for original in recurrence.starts(meeting.start, meeting.rrule, after=start - duration, before=end):
            if original in exceptions:
                continue
            if original + duration > start:
                found.append(Occurrence(meeting, original, original, original + duration, meeting.title))
        for o in exceptions.values():
            if o.start < end and o.end > start:
                found.append(Occurrence(meeting, o.original_start, o.start, o.end, o.title or meeting.title, o.cancelled, True))
    return sorted(found, key=lambda o: (o.start, o.meeting.id or 0))


def occurrences_of(session: Session, meeting: Meeting, start: dt.datetime, end: dt.datetime) -> list[Occurrence]:
    """``meeting``'s occurrences running in [start, end), cancelled ones included."""
    return _expand(session, [meeting], start, end)


def list_occurrences(
    session: Session, viewer: User, start: dt.datetime, end: dt.datetime, *, unit: Unit | None = None,
    person: User | None = None, q: str = "", include_cancelled: bool = True,
) -> list[Occurrence]:
    """What ``viewer`` may see between ``start`` and ``end``; optionally only what ``unit`` or
    ``person`` takes part in (as host or invitee), or titles containing ``q``."""
    if end <= start:
        raise InvalidInput(N_("The end must be after the start."), fields={"end": N_("The end must be after the start.")})
    if end - start > dt.timedelta(days=400):
        raise InvalidInput(N_("Ask for at most 400 days at a time."), fields={"end": N_("Ask for at most 400 days at a time.")})
    query = select(Meeting).where(
        col(Meeting.start) < end, col(Meeting.series_end) > start, permissions.meeting_visibility(session, viewer)
    )
    if unit is not None:
        invited = select(MeetingParticipant.meeting_id).where(MeetingParticipant.unit_id == unit.id)
        query = query.where((col(Meeting.id).in_(invited)) | (Meeting.host_unit_id == unit.id))
    if person is not None:
        invited = select(MeetingParticipant.meeting_id).where(MeetingParticipant.user_id == person.id)
        query = query.where(col(Meeting.id).in_(invited))
    if q.strip():
        key = fold(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(Meeting.search_key).like(f"%{key}%", escape="\\"))
    meetings = list(session.exec(query).all())
    found = _expand(session, meetings, start, end)
    return [o for o in found if include_cancelled or not (o.cancelled or o.meeting.status == "cancelled")]


def occurrence(session: Session, meeting: Meeting, original_start: dt.datetime) -> Occurrence:
    original_start = original_start.astimezone(dt.UTC)
    if original_start not in recurrence.starts(meeting.start, meeting.rrule, after=original_start, before=original_start + dt.timedelta(seconds=1)):
        raise NotFound(N_("This meeting has no occurrence starting at {time}.", time=original_start.isoformat()))
    override = session.exec(
        select(OccurrenceOverride).where(OccurrenceOverride.meeting_id == meeting.id, OccurrenceOverride.original_start == original_start)
    ).first()
    duration = meeting.end - meeting.start
    if override is None:
        return Occurrence(meeting, original_start, original_start, original_start + duration, meeting.title)
    return Occurrence(meeting, original_start, override.start, override.end, override.title or meeting.title, override.cancelled, True)


def _copy_for_following(session: Session, meeting: Meeting, start: dt.datetime, end: dt.datetime, rule: str, title: str) -> Meeting:
    """The meeting that continues a series from one occurrence on ("this and the following")."""
    follower = Meeting(
        uid=f"{uuid.uuid4()}@giaoban", title=title, search_key=fold(title), description=meeting.description, agenda=list(meeting.agenda or []),
        kind=meeting.kind, host_unit_id=meeting.host_unit_id, host_unit_name=meeting.host_unit_name,
        chair_id=meeting.chair_id, chair_name=meeting.chair_name, start=start, end=end, rrule=rule,
        series_end=recurrence.last_start(start, rule) + (end - start), endpoints=meeting.endpoints,
        previous_id=meeting.id, created_by_id=meeting.created_by_id,
    )
    session.add(follower)
    session.flush()
    for row in session.exec(select(MeetingSelection).where(MeetingSelection.meeting_id == meeting.id)).all():
        session.add(MeetingSelection(meeting_id=follower.id or 0, kind=row.kind, unit_id=row.unit_id, level=row.level, user_id=row.user_id))
    for p in session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id)).all():
        session.add(MeetingParticipant(**p.model_dump(exclude={"id", "meeting_id", "response", "responded_at", "delegated_to", "comment"}), meeting_id=follower.id or 0))
    return follower


def _end_series_before(session: Session, meeting: Meeting, at: dt.datetime) -> str:
    """Cut the series before ``at``; returns the rule of what would follow."""
    old_rule, new_rule = recurrence.split(meeting.rrule, meeting.start, at)
    meeting.rrule = old_rule
    meeting.series_end = recurrence.last_start(meeting.start, old_rule) + (meeting.end - meeting.start)
    session.exec(delete(OccurrenceOverride).where(col(OccurrenceOverride.meeting_id) == meeting.id, col(OccurrenceOverride.original_start) >= at))
    return new_rule



def _override(session: Session, meeting_id: int, original_start: dt.datetime, start: dt.datetime, end: dt.datetime) -> OccurrenceOverride:
    """The occurrence's override row, or a new one at ``start``–``end`` (not added yet)."""
    found = session.exec(select(OccurrenceOverride).where(
        OccurrenceOverride.meeting_id == meeting_id, OccurrenceOverride.original_start == original_start)).first()
    return found or OccurrenceOverride(meeting_id=meeting_id, original_start=original_start, start=start, end=end)


def change_occurrence(
    session: Session, actor: User, meeting_id: int, original_start: dt.datetime, *, start: dt.datetime,
    end: dt.datetime, title: str = "", scope: str = "this", version: int | None = None, max_endpoints: int,
    confirm: bool = False, ip: str = "", notify: Notifier | None = None,
) -> tuple[Meeting, list[PlanConflict]]:
    """Move or retitle one occurrence, or this one and the following (the series ends, a new
    meeting begins). Returns the meeting that now holds the occurrence and the conflicts."""
    meeting = get_editable(session, actor, meeting_id, version)
    current = occurrence(session, meeting, original_start)
    if current.cancelled:
        raise Conflict(N_("This occurrence was cancelled; it can no longer be changed."))
    base = as_input(session, meeting)
    if not meeting.rrule or (scope == "following" and current.original_start == meeting.start):
        scope = "series"  # a one-off meeting, or a series changed from its first occurrence
    if scope == "series":
        shift = start - current.start
        whole = replace(base, start=meeting.start + shift, end=meeting.start + shift + (end - start), title=title or base.title)
        return update(session, actor, meeting_id, whole, version=meeting.version, max_endpoints=max_endpoints, confirm=confirm,
                      ip=ip, notify=notify)
    if scope not in ("this", "following"):
        raise InvalidInput(N_("The scope is this, following or series."), fields={"scope": N_("The scope is this, following or series.")})
    planned = replace(base, start=start, end=end, title=title or meeting.title, recurrence="")
    prepared = prepare(session, planned)
    if scope == "following":
        rule_after = recurrence.split(meeting.rrule, meeting.start, current.original_start)[1]
        try:
            follower_rule = recurrence.normalise(rule_after, start.astimezone(dt.UTC))
        except InvalidInput as exc:
            raise InvalidInput(N_("The following occurrences cannot move there: {detail}", detail=str(exc.fields.get("recurrence", ""))),
                               fields={"start": exc.fields.get("recurrence", N_("The following occurrences cannot move there."))}) from None
        prepared.rule, prepared.starts = follower_rule, recurrence.starts(prepared.data.start, follower_rule)
    conflicts = conflicts_of(session, prepared, max_endpoints=max_endpoints, exclude={meeting_id})
    _refuse_hard(conflicts, confirm)
    if scope == "following":
        _refuse_if_recorded(session, meeting_id, since=current.original_start)
    _claim(session, meeting, version)
    meeting.updated_at = utcnow()
    if scope == "this":
        override = _override(session, meeting_id, current.original_start, start, end)
        override.start, override.end = prepared.data.start, prepared.data.end
        override.title = prepared.data.title if prepared.data.title != meeting.title else ""
        override.sequence += 1
        override.updated_at = utcnow()
        session.add(override)
        audit.record(session, "occurrence_changed", actor=actor, target=f"{meeting_id}@{current.original_start.isoformat()}", ip=ip)
        session.add(meeting)
        session.flush()
        if notify is not None:
            notify.occurrence_changed(session, meeting, current.original_start, cancelled=False)
        return meeting, conflicts
    _end_series_before(session, meeting, current.original_start)
    meeting.sequence += 1
    session.add(meeting)
    follower = _copy_for_following(session, meeting, prepared.data.start, prepared.data.end, prepared.rule, prepared.data.title)
    audit.record(session, "series_split", actor=actor, target=str(meeting_id), ip=ip, follower=follower.id,
                 at=current.original_start.isoformat())
    session.flush()
    if notify is not None:  # the old series now ends earlier; the new one is a new invitation
        everyone = invitees(session, meeting)
        notify.saved(session, meeting, previous=everyone, created=False)
        notify.saved(session, follower, previous={}, created=True)
    return follower, conflicts


def cancel_occurrence(
    session: Session, actor: User, meeting_id: int, original_start: dt.datetime, *, scope: str = "this",
    version: int | None = None, ip: str = "", notify: Notifier | None = None,
) -> Meeting:
    meeting = get_editable(session, actor, meeting_id, version)
    current = occurrence(session, meeting, original_start)
    if not meeting.rrule or scope == "series" or (scope == "following" and current.original_start == meeting.start):
        return cancel(session, actor, meeting_id, ip=ip, notify=notify)
    if scope not in ("this", "following"):
        raise InvalidInput(N_("The scope is this, following or series."), fields={"scope": N_("The scope is this, following or series.")})
    _claim(session, meeting, version)
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    if scope == "following":
        _refuse_if_recorded(session, meeting_id, since=current.original_start)
        _end_series_before(session, meeting, current.original_start)
        audit.record(session, "series_ended", actor=actor, target=str(meeting_id), ip=ip, at=current.original_start.isoformat())
    else:
        override = _override(session, meeting_id, current.original_start, current.start, current.end)
        override.cancelled = True
        override.sequence += 1
        override.updated_at = utcnow()
        session.add(override)
        audit.record(session, "occurrence_cancelled", actor=actor, target=f"{meeting_id}@{current.original_start.isoformat()}", ip=ip)
    session.add(meeting)
    session.flush()
    if notify is not None:
        if scope == "following":
            notify.saved(session, meeting, previous=invitees(session, meeting), created=False)
        else:
            notify.occurrence_changed(session, meeting, current.original_start, cancelled=True)
    return meeting


# --- reading ------------------------------------------------------------------------------


def participants(session: Session, meeting: Meeting) -> list[MeetingParticipant]:
    return list(session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id).order_by(col(MeetingParticipant.id))).all())


def can_edit(session: Session, actor: User, meeting: Meeting) -> bool:
    return meeting.status == "scheduled" and permissions.can_schedule_for(session, actor, units.by_id(session, meeting.host_unit_id))
