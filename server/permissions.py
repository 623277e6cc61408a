"""Every permission rule, in one place. Views ask these; templates are handed the answers.

A secretary acts for their own unit and every unit below it; an administrator for all.
"""

from __future__ import annotations

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
