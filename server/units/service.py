"""Queries and changes of the unit tree. Every query and state change of units lives here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import Session, col, func, or_, select

from server.db import utcnow
from server.errors import NotFound
from server.i18n import N_
from server.text import fold, nfc
from server.units.models import Unit, UnitChange


@dataclass
class UnitNode:
    unit: Unit
    children: list[UnitNode] = field(default_factory=list)

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)


def all_units(session: Session, *, include_inactive: bool = False) -> list[Unit]:
    query = select(Unit)
    if not include_inactive:
        query = query.where(Unit.active == True)  # noqa: E712 - SQL expression
    return list(session.exec(query.order_by(col(Unit.id))).all())


def by_code(session: Session, code: str) -> Unit:
    unit = session.exec(select(Unit).where(Unit.code == code.strip())).first()
    if unit is None:
        raise NotFound(N_("Unknown unit code: {code}", code=code), fields={"unit": "unknown"})
    return unit


def find_by_codes(session: Session, codes: Iterable[str]) -> dict[str, Unit]:
    wanted = {c for c in codes if c}
    if not wanted:
        return {}
    rows = session.exec(select(Unit).where(col(Unit.code).in_(wanted))).all()
    return {u.code: u for u in rows}


def codes_by_id(session: Session) -> dict[int, str]:
    """Every unit's code by id (two columns, no ORM objects: used to render parent codes)."""
    return {uid: code for uid, code in session.exec(select(Unit.id, Unit.code)).all() if uid is not None}


def by_id(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(N_("Unknown unit."))
    return unit


def tree(session: Session, *, include_inactive: bool = False) -> list[UnitNode]:
    """The forest of units, children in data order (the order of the import file)."""
    units = all_units(session, include_inactive=include_inactive)
    nodes = {u.id: UnitNode(u) for u in units}
    roots: list[UnitNode] = []
    for unit in units:
        node = nodes[unit.id]
        parent = nodes.get(unit.parent_id) if unit.parent_id is not None else None
        (parent.children if parent else roots).append(node)
    return roots


def ancestors(session: Session, unit: Unit) -> list[Unit]:
    """From the root down to the unit's parent."""
    chain: list[Unit] = []
    seen = {unit.id}
    current = unit
    while current.parent_id is not None and current.parent_id not in seen:
        parent = session.get(Unit, current.parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
        current = parent
    chain.reverse()
    return chain


def children(session: Session, unit: Unit, *, include_inactive: bool = False) -> list[Unit]:
    query = select(Unit).where(Unit.parent_id == unit.id)
    if not include_inactive:
        query = query.where(Unit.active == True)  # noqa: E712
    return list(session.exec(query.order_by(col(Unit.id))).all())


def descendant_ids(session: Session, unit_id: int, *, include_self: bool = True) -> set[int]:
    """Ids of every unit below ``unit_id`` (all of them, active or not)."""
    by_parent: dict[int, list[int]] = {}
    for uid, parent_id in session.exec(select(Unit.id, Unit.parent_id)).all():
        if parent_id is not None and uid is not None:
            by_parent.setdefault(parent_id, []).append(uid)
    found: set[int] = {unit_id} if include_self else set()
    stack = [unit_id]
    while stack:
        for child in by_parent.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def is_within(session: Session, unit_id: int, ancestor_id: int) -> bool:
    """True when ``unit_id`` is ``ancestor_id`` or lies anywhere below it."""
    seen: set[int] = set()
    current: int | None = unit_id
    while current is not None and current not in seen:
        if current == ancestor_id:
            return True
        seen.add(current)
        current = session.exec(select(Unit.parent_id).where(Unit.id == current)).first()
    return False


def search(
    session: Session,
    *,
    q: str = "",
    level: str = "",
    parent: str = "",
    include_inactive: bool = False,
    offset: int = 0,
    limit: int = 200,
) -> tuple[list[Unit], int]:
    """Units whose name or code contains ``q``, ignoring diacritics and case."""
    query = select(Unit)
    if not include_inactive:
        query = query.where(Unit.active == True)  # noqa: E712
    if q.strip():
        key = fold(q)
        pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(col(Unit.search_key).like(pattern, escape="\\"), col(Unit.code).like(pattern, escape="\\"))
        )
    if level:
        query = query.where(Unit.level == level)
    if parent:
        query = query.where(Unit.parent_id == by_code(session, parent).id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Unit.id)).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def levels(session: Session) -> list[str]:
    """The levels present in the data, in the order they first appear."""
    seen: dict[str, None] = {}
    for level in session.exec(select(Unit.level).order_by(col(Unit.id))).all():
        seen.setdefault(level, None)
    return list(seen)


def level_names(session: Session) -> dict[str, str]:
    """A readable name for each level, from the data itself: the kinds of its units
    ("ward" → "phường / xã / thị trấn"), since level codes are whatever the import said."""
    kinds: dict[str, dict[str, None]] = {}
    for level, kind in session.exec(select(Unit.level, Unit.kind).where(Unit.active == True).order_by(col(Unit.id))).all():  # noqa: E712
        kinds.setdefault(level, {}).setdefault(kind, None)
    return {level: " / ".join(found) for level, found in kinds.items()}


def set_fields(session: Session, unit: Unit, *, actor: str = "", batch: str = "", **values: object) -> bool:
    """Apply changed values and record each change in the unit's history."""
    changed = False
    for name, value in values.items():
        old = getattr(unit, name)
        if old == value:
            continue
        setattr(unit, name, value)
        if name == "name":
            unit.search_key = fold(str(value))
        session.add(
            UnitChange(
                unit_id=unit.id or 0,
                action={"name": "rename", "parent_id": "move"}.get(name, f"edit:{name}"),
                old_value=_describe(session, name, old),
                new_value=_describe(session, name, value),
                actor=actor,
                batch=batch,
            )
        )
        changed = True
    if changed:
        unit.updated_at = utcnow()
        session.add(unit)
    return changed


def _describe(session: Session, name: str, value: object) -> str:
    if name in ("parent_id", "merged_into_id") and isinstance(value, int):
        other = session.get(Unit, value)
        return other.code if other else str(value)
    return "" if value is None else str(value)


def new_unit(
    session: Session,
    *,
    code: str,
    name: str,
    level: str,
    kind: str,
    parent: Unit | None,
    email: str = "",
    actor: str = "",
    batch: str = "",
) -> Unit:
    unit = Unit(
        code=code,
        name=nfc(name),
        search_key=fold(name),
        level=nfc(level),
        kind=nfc(kind),
        parent_id=parent.id if parent else None,
        email=email,
    )
    session.add(unit)
    session.flush()
    session.add(UnitChange(unit_id=unit.id or 0, action="create", new_value=unit.name, actor=actor, batch=batch))
    return unit


def history(session: Session, unit: Unit) -> list[UnitChange]:
    return list(
        session.exec(select(UnitChange).where(UnitChange.unit_id == unit.id).order_by(col(UnitChange.id))).all()
    )
