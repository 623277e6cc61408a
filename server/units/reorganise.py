"""Rename, move, merge and dissolve units, one at a time or from a reorganisation file.

A unit's code names it for good, so a reorganisation never rewrites history: a merged unit
stays as an inactive row with its old name and ``merged_into_id`` set, a dissolved one stays
inactive without it, and every meeting, attendance row and feed that pointed at it still
points at the unit as it was. What changes is recorded twice: in the unit's history
(``UnitChange``, shown on its page) and in the audit log.

A reorganisation file is CSV with the columns ``old_code,new_code`` and optionally
``new_name,new_parent_code,new_level,new_kind,new_email``: one row per existing unit; an
empty ``new_code`` dissolves it, ``new_code == old_code`` changes it in place, another
``new_code`` merges it into that unit (created by the file when it does not exist yet). The
full rules are in :mod:`server.units.reorgfile`, which reads and checks the file; this module
applies it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlmodel import Session, col, select

from server.accounts import service as accounts
from server.accounts.models import Role, User
from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict, InvalidInput
from server.i18n import N_, Text
from server.text import nfc
from server.units import reorgfile, service
from server.units.models import Unit, UnitChange
from server.units.reorgfile import listing

NAME_MAX = 200
CLI_ACTOR = "cli"  # the history's "by" when the command line (no account) made the change


@dataclass(frozen=True)
class MergeOutcome:
    children: list[str] = field(default_factory=list)  # codes of units that moved under the target
    people: list[str] = field(default_factory=list)  # usernames of accounts that moved with it


@dataclass(frozen=True)
class ReorgResult:
    created: int = 0
    merged: int = 0  # old units merged into another (each counts once)
    renamed: int = 0
    moved: int = 0  # units a row gives a new parent; children that follow a merge are not counted
    dissolved: int = 0
    edited: int = 0  # level, kind or mailbox changed in place


# --- one unit at a time -------------------------------------------------------------------


def rename(session: Session, unit: Unit, name: str, *, actor: User | None, ip: str = "") -> bool:
    """Give ``unit`` a new name; returns False when the name was already that."""
    _require_active(unit, "name")
    clean = nfc(name)
    if not clean:
        raise InvalidInput(N_("The unit was not renamed."), fields={"name": N_("The name is empty.")})
    if len(clean) > NAME_MAX:
        raise InvalidInput(N_("The unit was not renamed."), fields={"name": N_("At most {n} characters.", n=NAME_MAX)})
    changed = _rename(session, unit, clean, actor=actor, ip=ip, batch="")
    accounts.sync_endpoint_accounts(session)  # the endpoint account carries the unit's name
    return changed


def move(session: Session, unit: Unit, new_parent: Unit, *, actor: User | None, ip: str = "") -> bool:
    """Put ``unit`` (with everything below it) under ``new_parent``."""
    _require_active(unit, "parent")
    if not new_parent.active:
        raise Conflict(N_("The unit was not moved."), fields={"parent": _inactive(new_parent)})
    if service.is_within(session, new_parent.id or 0, unit.id or 0):
        raise InvalidInput(
            N_("The unit was not moved."),
            fields={"parent": N_("{code} is this unit or lies below it; a unit cannot be moved under itself.", code=new_parent.code)},
        )
    changed = _move(session, unit, new_parent, actor=actor, ip=ip, batch="")
    accounts.sync_endpoint_accounts(session)
    return changed


def merge(session: Session, unit: Unit, into: Unit, *, actor: User | None, ip: str = "") -> MergeOutcome:
    """Merge ``unit`` into ``into``: its active children and its people move to ``into``, and
    it stays as an inactive row pointing at ``into``."""
    _require_active(unit, "into")
    if into.id == unit.id:
        raise InvalidInput(N_("The unit was not merged."), fields={"into": N_("A unit cannot be merged into itself.")})
    if not into.active:
        raise Conflict(N_("The unit was not merged."), fields={"into": _inactive(into)})
    if service.is_within(session, into.id or 0, unit.id or 0):
        raise InvalidInput(
            N_("The unit was not merged."),
            fields={"into": N_("{code} lies below this unit; merge it the other way round or move it first.", code=into.code)},
        )
    outcome = _merge(session, unit, into, actor=actor, ip=ip, batch="", leaving=set())
    accounts.sync_endpoint_accounts(session)  # the merged unit's endpoint account is disabled
    return outcome


def dissolve(session: Session, unit: Unit, *, actor: User | None, ip: str = "") -> None:
    """End ``unit`` without a successor. Refused while anything active still belongs to it,
    so no unit or person is left under a unit that no longer exists."""
    _require_active(unit, "dissolve")
    below = [c.code for c in service.children(session, unit)]
    if below:
        raise Conflict(
            N_("The unit was not dissolved."),
            fields={"dissolve": N_("Units below it are still active: {codes}. Move, merge or dissolve them first.", codes=listing(below))},
        )
    people = [u.username for u in people_of(session, unit, active_only=True)]
    if people:
        raise Conflict(
            N_("The unit was not dissolved."),
            fields={"dissolve": N_("Accounts still belong to it: {names}. Move or disable them first.", names=listing(people))},
        )
    _dissolve(session, unit, actor=actor, ip=ip, batch="")
    accounts.sync_endpoint_accounts(session)


def people_of(session: Session, unit: Unit, *, active_only: bool = False) -> list[User]:
    """The accounts of people (not the unit's own endpoint account) that belong to ``unit``."""
    query = select(User).where(User.unit_id == unit.id, User.role != Role.endpoint.value)
    if active_only:
        query = query.where(User.active == True)  # noqa: E712 - SQL expression
    return list(session.exec(query.order_by(col(User.username))).all())


# --- a reorganisation file ----------------------------------------------------------------


def apply_file(session: Session, data: bytes, *, actor: User | None, batch: str, ip: str = "") -> ReorgResult:
    """Apply a reorganisation file (format in :mod:`server.units.reorgfile`).

    Every row is checked against the database and against the rest of the file first; any
    bad row raises :class:`server.csvfile.ImportFailed` and nothing is written.
    """
    plan = reorgfile.read_plan(session, data)
    batch = batch[:100]
    units = {u.code: u for u in service.all_units(session, include_inactive=True)}
    created = renamed = moved = edited = merged = 0
    # New units first, parents before children (a parent may itself be new in the file).
    pending = [t for t in plan.targets if t.is_new]
    while pending:
        ready = [t for t in pending if t.parent_code in units]
        if not ready:  # pragma: no cover - read_plan refused unknown parents and cycles
            raise RuntimeError("unresolvable parents in a validated reorganisation plan")
        for target in ready:
            units[target.code] = service.new_unit(
                session, code=target.code, name=target.name, level=target.level, kind=target.kind,
                parent=units[target.parent_code], email=target.email, actor=_name(actor), batch=batch,
            )
            created += 1
        pending = [t for t in pending if t.code not in units]
    # Existing units that stay change in place before anything merges into them, so a unit
    # moved out from under a merged parent does not follow that parent.
    for target in plan.targets:
        unit = units[target.code]
        if target.is_new:
            continue
        if target.name and _rename(session, unit, target.name, actor=actor, ip=ip, batch=batch):
            renamed += 1
        if target.parent_code and _move(session, unit, units[target.parent_code], actor=actor, ip=ip, batch=batch):
            moved += 1
        values = {k: v for k, v in (("level", target.level), ("kind", target.kind), ("email", target.email)) if v}
        if values and service.set_fields(session, unit, actor=_name(actor), batch=batch, **values):
            edited += 1
    leaving = plan.leaving_codes()
    for target in plan.targets:
        for source_code in target.sources:
            _merge(session, units[source_code], units[target.code], actor=actor, ip=ip, batch=batch, leaving=leaving)
            merged += 1
    for code in plan.dissolved:
        _dissolve(session, units[code], actor=actor, ip=ip, batch=batch)
    accounts.sync_endpoint_accounts(session)
    result = ReorgResult(created, merged, renamed, moved, len(plan.dissolved), edited)
    audit.record(session, "units_reorganised", actor=actor, target=batch, ip=ip, **asdict(result))
    return result


# --- the changes themselves, without checks (callers have checked) --------------------------


def _rename(session: Session, unit: Unit, name: str, *, actor: User | None, ip: str, batch: str) -> bool:
    old = unit.name
    if not service.set_fields(session, unit, actor=_name(actor), batch=batch, name=name):
        return False
    audit.record(session, "unit_renamed", actor=actor, target=unit.code, ip=ip, old=old, new=name, batch=batch)
    return True


def _move(session: Session, unit: Unit, parent: Unit, *, actor: User | None, ip: str, batch: str) -> bool:
    old = service.by_id(session, unit.parent_id).code if unit.parent_id else ""
    if not service.set_fields(session, unit, actor=_name(actor), batch=batch, parent_id=parent.id):
        return False
    audit.record(session, "unit_moved", actor=actor, target=unit.code, ip=ip, old=old, new=parent.code, batch=batch)
    return True


def _merge(
    session: Session, unit: Unit, into: Unit, *, actor: User | None, ip: str, batch: str, leaving: set[str]
) -> MergeOutcome:
    """``leaving`` names children that other rows of the same file merge or dissolve: they
    end where those rows say, so they do not follow this unit."""
    moved_children = []
    for child in service.children(session, unit):
        if child.code not in leaving:
            service.set_fields(session, child, actor=_name(actor), batch=batch, parent_id=into.id)
            moved_children.append(child.code)
    # Every person moves, disabled ones too, so re-enabling an account never lands it in a
    # unit that no longer exists. Their permissions follow from unit_id on each request.
    moved_people = []
    for person in people_of(session, unit):
        person.unit_id = into.id or 0
        session.add(person)
        moved_people.append(person.username)
    unit.active = False
    unit.merged_into_id = into.id
    _record(session, unit, "merge", actor=actor, batch=batch, old=unit.code, new=into.code)
    _record(session, into, "merge", actor=actor, batch=batch, old=unit.code, new=into.code)
    audit.record(
        session, "unit_merged", actor=actor, target=unit.code, ip=ip, into=into.code, name=unit.name,
        children=moved_children, people=moved_people, batch=batch,
    )
    return MergeOutcome(moved_children, moved_people)


def _dissolve(session: Session, unit: Unit, *, actor: User | None, ip: str, batch: str) -> None:
    unit.active = False
    _record(session, unit, "dissolve", actor=actor, batch=batch, old=unit.name, new="")
    audit.record(session, "unit_dissolved", actor=actor, target=unit.code, ip=ip, name=unit.name, batch=batch)


def _record(session: Session, unit: Unit, action: str, *, actor: User | None, batch: str, old: str, new: str) -> None:
    # One "merge"/"dissolve" row reads better in the history than set_fields' separate
    # edit:active and edit:merged_into_id rows, and the unit's page labels it as such.
    unit.updated_at = utcnow()
    session.add(unit)
    session.add(UnitChange(unit_id=unit.id or 0, action=action, old_value=old, new_value=new, actor=_name(actor), batch=batch))


def _require_active(unit: Unit, field_name: str) -> None:
    if not unit.active:
        raise Conflict(N_("Nothing was changed."), fields={field_name: _inactive(unit)})


def _inactive(unit: Unit) -> Text:
    return N_("The unit {code} was merged or dissolved; it can no longer change.", code=unit.code)


def _name(actor: User | None) -> str:
    return actor.username if actor is not None else CLI_ACTOR
