"""Every permission rule, in one place. Views ask these; templates are handed the answers.

A secretary acts for their own unit and every unit below it; an administrator for all.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from server.accounts.models import Role, User
from server.units import service as units
from server.units.models import Unit


def is_admin(user: User | None) -> bool:
    return user is not None and user.active and user.role == Role.admin.value


def can_manage_units(user: User | None) -> bool:
    return is_admin(user)


def can_manage_users(user: User | None) -> bool:
    return is_admin(user)


def can_view_audit(user: User | None) -> bool:
    return is_admin(user)


def can_view_metrics(user: User | None) -> bool:
    return is_admin(user)


def can_act_for_unit(session: Session, user: User | None, unit: Unit) -> bool:
    """May ``user`` schedule and manage things on behalf of ``unit``?"""
    if user is None or not user.active:
        return False
    if is_admin(user):
        return True
    if user.role != Role.secretary.value or unit.id is None:
        return False
    return units.is_within(session, unit.id, user.unit_id)


def can_see_unit_members(session: Session, user: User | None, unit: Unit) -> bool:
    return can_act_for_unit(session, user, unit)


# --- meetings -------------------------------------------------------------------------------


def can_schedule_at_all(user: User | None) -> bool:
    """May ``user`` schedule for some unit (their own)? Asked before a plan is read."""
    return user is not None and user.active and user.role in (Role.admin.value, Role.secretary.value)


def can_schedule_for(session: Session, user: User | None, unit: Unit) -> bool:
    """Create and edit meetings hosted by ``unit``: its secretaries, those above, admins."""
    return can_act_for_unit(session, user, unit)


def meeting_visibility(session: Session, user: User) -> Any:
    """A SQL condition on ``Meeting`` for the meetings ``user`` may see: those they or their
    unit are invited to, and those hosted by a unit they act for (admins see all)."""
    from sqlmodel import col, or_, select, true

    from server.meetings.models import Meeting, MeetingParticipant

    if is_admin(user):
        return true()
    invited = select(MeetingParticipant.meeting_id).where(
        or_(MeetingParticipant.user_id == user.id, MeetingParticipant.unit_id == user.unit_id)
    )
    conditions = [col(Meeting.id).in_(invited)]
    if user.role == Role.secretary.value:
        conditions.append(col(Meeting.host_unit_id).in_(units.descendant_ids(session, user.unit_id)))
    return or_(*conditions)


def can_see_meeting(session: Session, user: User | None, meeting_id: int) -> bool:
    from sqlmodel import select

    from server.meetings.models import Meeting

    if user is None or not user.active:
        return False
    found = session.exec(select(Meeting.id).where(Meeting.id == meeting_id, meeting_visibility(session, user))).first()
    return found is not None
