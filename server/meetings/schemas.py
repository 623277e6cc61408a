"""The JSON shapes of meetings (API input, and output built from the models)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from server.clock import LOCAL, TIME_SCHEMA, YEARS
from server.i18n import Translations, render
from server.meetings.conflicts import Conflict as PlanConflict
from server.meetings.models import Meeting, MeetingParticipant
from server.meetings.participants import Choice, Expansion, LevelChoice, level_counts
from server.meetings.service import MeetingInput, Occurrence


def _in_years(value: dt.datetime) -> dt.datetime:
    if value.year not in YEARS:
        raise PydanticCustomError("time_range", "Give a time between the years 1900 and 8999.")
    return value


# A time in a body: ISO 8601, in the years the calendar can add days and zones to.
Moment = Annotated[dt.datetime, AfterValidator(_in_years), WithJsonSchema(TIME_SCHEMA)]


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    under: str = Field(max_length=100)
    level: str = Field(max_length=50)


class ParticipantsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    units: list[str] = Field(default_factory=list, max_length=500)
    levels: list[LevelIn] = Field(default_factory=list, max_length=50)
    users: list[str] = Field(default_factory=list, max_length=500)

    def choice(self) -> Choice:
        return Choice(tuple(self.units), tuple(LevelChoice(lv.under, lv.level) for lv in self.levels), tuple(self.users))


class MeetingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=1000)
    start: Moment
    end: Moment
    host_unit: str = Field(max_length=100)
    chair: str = Field(max_length=100)
    kind: Literal["regular", "ad_hoc"] = "regular"
    description: str = Field(default="", max_length=20000)
    agenda: list[str] = Field(default_factory=list, max_length=200)
    participants: ParticipantsIn = Field(default_factory=ParticipantsIn)
    recurrence: str | None = Field(default=None, max_length=500)
    confirm: bool = False

    def as_input(self) -> MeetingInput:
        return MeetingInput(
            title=self.title, start=self.start, end=self.end, host_unit=self.host_unit, chair=self.chair,
            kind=self.kind, description=self.description, agenda=tuple(self.agenda),
            participants=self.participants.choice(), recurrence=self.recurrence or "",
        )


class MeetingPatch(BaseModel):
    """A change: the ``version`` that was read, and only the fields that change."""

    model_config = ConfigDict(extra="forbid")
    version: int
    title: str | None = Field(default=None, max_length=1000)
    start: Moment | None = None
    end: Moment | None = None
    host_unit: str | None = Field(default=None, max_length=100)
    chair: str | None = Field(default=None, max_length=100)
    kind: Literal["regular", "ad_hoc"] | None = None
    description: str | None = Field(default=None, max_length=20000)
    agenda: list[str] | None = Field(default=None, max_length=200)
    participants: ParticipantsIn | None = None
    recurrence: str | None = Field(default=None, max_length=500)
    confirm: bool = False


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = None
    scope: Literal["this", "following", "series"] = "this"


class OccurrencePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Moment
    end: Moment
    title: str | None = Field(default=None, max_length=1000)
    scope: Literal["this", "following", "series"] = "this"
    version: int | None = None
    confirm: bool = False


class ConflictOut(BaseModel):
    kind: str
    severity: Literal["hard", "warning"]
    message: str
    occurrence: str
    meeting: int | None = None
    title: str = ""
    units: list[str] = []
    endpoints: int = 0


class MeetingOut(BaseModel):
    """The shape of a meeting in answers (documented for OpenAPI)."""

    id: int
    uid: str
    title: str
    description: str
    agenda: list[str]
    kind: str
    host_unit: str
    host_unit_name: str
    chair: str
    chair_name: str
    start: str
    end: str
    recurrence: str | None
    status: str
    version: int
    participants: list[dict[str, Any]]
    counts: dict[str, Any]
    conflicts: list[ConflictOut] = []
    join_url: str
    ics_url: str
    previous_id: int | None = None


class OccurrenceOut(BaseModel):
    meeting: int
    uid: str
    title: str
    original_start: str
    start: str
    end: str
    status: str
    kind: str
    host_unit_name: str
    changed: bool


class OccurrenceList(BaseModel):
    items: list[OccurrenceOut]
    total: int


class CheckOut(BaseModel):
    counts: dict[str, Any]
    occurrences: int
    conflicts: list[ConflictOut]


def iso(value: dt.datetime) -> str:
    """ISO 8601 with the local offset (+07:00), the way the city reads times."""
    return value.astimezone(LOCAL).isoformat()


def conflict_out(conflict: PlanConflict, translations: Translations, codes: dict[int, str]) -> dict[str, Any]:
    return ConflictOut(
        kind=conflict.kind, severity=conflict.severity, message=render(conflict.message, translations),  # type: ignore[arg-type]
        occurrence=iso(conflict.occurrence), meeting=conflict.other_meeting_id, title=conflict.other_title,
        units=[codes.get(u, str(u)) for u in conflict.units], endpoints=conflict.endpoints,
    ).model_dump()


def counts_out(units: int, people: int, by_level: dict[str, int]) -> dict[str, Any]:
    return {"units": units, "people": people, "endpoints": units + people, "by_level": by_level}


def expansion_counts(expansion: Expansion) -> dict[str, Any]:
    return counts_out(len(expansion.units), len(expansion.people), level_counts(expansion))


def participant_out(p: MeetingParticipant) -> dict[str, Any]:
    key = "unit" if p.unit_id is not None else "user"
    return {key: p.code, "name": p.name, "email": p.email, "parent": p.parent_name, "role": p.role,
            "response": p.response, "delegated_to": p.delegated_to or None}


def meeting_out(meeting: Meeting, participants: list[MeetingParticipant], host_code: str, chair_username: str,
                public_url: str, levels: dict[str, int]) -> dict[str, Any]:
    unit_rows = [p for p in participants if p.unit_id is not None]
    return {
        "id": meeting.id, "uid": meeting.uid, "title": meeting.title, "description": meeting.description,
        "agenda": list(meeting.agenda or []), "kind": meeting.kind, "host_unit": host_code,
        "host_unit_name": meeting.host_unit_name, "chair": chair_username, "chair_name": meeting.chair_name,
        "start": iso(meeting.start), "end": iso(meeting.end), "recurrence": meeting.rrule or None,
        "status": meeting.status, "version": meeting.version,
        "participants": [participant_out(p) for p in participants],
        "counts": counts_out(len(unit_rows), len(participants) - len(unit_rows), levels),
        "join_url": f"{public_url}/meetings/{meeting.id}/room", "ics_url": f"{public_url}/api/meetings/{meeting.id}/ics",
        "previous_id": meeting.previous_id,
    }


def occurrence_out(o: Occurrence) -> dict[str, Any]:
    status = "cancelled" if o.cancelled or o.meeting.status == "cancelled" else "scheduled"
    return {
        "meeting": o.meeting.id, "uid": o.meeting.uid, "title": o.title, "original_start": iso(o.original_start),
        "start": iso(o.start), "end": iso(o.end), "status": status, "kind": o.meeting.kind,
        "host_unit_name": o.meeting.host_unit_name, "changed": o.changed,
    }
