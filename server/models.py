"""Every table, imported in one place so that ``SQLModel.metadata`` is complete (Alembic)."""

from __future__ import annotations

from sqlmodel import SQLModel

from server.accounts.models import AuthSession, User
from server.audit.models import AuditEntry
from server.calendar.models import FeedToken
from server.documents.models import MeetingDocument
from server.mail.models import OutboxMessage
from server.meetings.models import Meeting, MeetingParticipant, MeetingSelection, OccurrenceOverride
from server.records.models import Minutes, RollCall
from server.rooms.models import RoomAttendance, RoomChat, RoomState
from server.units.models import Unit, UnitChange
from server.workdays.models import Holiday

metadata = SQLModel.metadata

__all__ = [
    "AuditEntry", "AuthSession", "FeedToken", "Holiday", "Meeting", "MeetingDocument", "MeetingParticipant", "MeetingSelection", "Minutes",
    "OccurrenceOverride", "OutboxMessage", "RollCall", "RoomAttendance", "RoomChat", "RoomState", "Unit", "UnitChange", "User", "metadata",
]
