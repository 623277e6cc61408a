"""Reading and checking a reorganisation file, before anything is written.

The file is UTF-8 CSV (a BOM is fine) with a header. ``old_code`` and ``new_code`` are
required columns; ``new_name``, ``new_parent_code``, ``new_level``, ``new_kind`` and
``new_email`` are optional columns::

    old_code,new_code,new_name,new_parent_code,new_level,new_kind,new_email

Each row names one existing active unit (``old_code``, at most once in the file) and says
what becomes of it:

``new_code`` empty
    the old unit is dissolved. The other columns stay empty. Every active unit below it must
    be merged, moved or dissolved by other rows of the same file, and no active account of a
    person may still belong to it.
``new_code`` equal to ``old_code``
    the unit stays; the ``new_*`` columns given rename it, move it under ``new_parent_code``,
    or change its level, kind or mailbox in place.
``new_code`` another code
    the old unit is merged into ``new_code``: it stays as an inactive row with its old name
    and ``merged_into`` set, its active children that no other row mentions move under
    ``new_code``, and its people's accounts move to ``new_code``. Rows with the same
    ``new_code`` merge all their old units into it.

The ``new_*`` columns always describe the unit ``new_code``, so they may be given on any
one row of its group (repeating the same value on other rows is allowed, a different value
is an error). When ``new_code`` is an existing active unit, it is the merge target and the
columns given change it. When it does not exist, the file creates it, and ``new_name``,
``new_parent_code``, ``new_level`` and ``new_kind`` are required; its parent may be another
unit the same file creates, on any line.

2024 (three wards into a new ward)::

    old_code,new_code,new_name,new_parent_code,new_level,new_kind
    ct.ninh-kieu.an-hoi,ct.ninh-kieu.tan-an-2024,Phường Tân An,ct.ninh-kieu,ward,phường
    ct.ninh-kieu.an-lac,ct.ninh-kieu.tan-an-2024,,,,
    ct.ninh-kieu.tan-an,ct.ninh-kieu.tan-an-2024,,,,

2025 (a district abolished, its wards regrouped into new wards directly under the city; the
file must place every ward of the district, or dissolving it is refused)::

    old_code,new_code,new_name,new_parent_code,new_level,new_kind
    ct.binh-thuy.binh-thuy,ct.binh-thuy-2025,Phường Bình Thủy,ct,ward,phường
    ct.binh-thuy.tra-an,ct.binh-thuy-2025,,,,
    ct.binh-thuy.long-hoa,ct.binh-thuy.long-hoa,,ct,,
    ...
    ct.binh-thuy,,,,,

Codes are lower case (``a-z 0-9 . - _``); text is stored NFC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from server.accounts.models import Role, User
from server.csvfile import ImportFailed, RowError, read_rows
from server.i18n import N_
from server.units import service
from server.units.models import Unit

COLUMNS = ("old_code", "new_code")
OPTIONAL = ("new_name", "new_parent_code", "new_level", "new_kind", "new_email")
REQUIRED_FOR_NEW = ("new_name", "new_parent_code", "new_level", "new_kind")
LIMITS = {"new_name": 200, "new_level": 50, "new_kind": 100, "new_email": 254}
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Target:
    """A ``new_code`` of the file: what the file says about it and which units merge into it."""

    code: str
    line: int  # the first row naming it
    is_new: bool
    values: dict[str, str] = field(default_factory=dict)  # new_* column -> value
    lines: dict[str, int] = field(default_factory=dict)  # new_* column -> the row that gave it
    sources: dict[str, int] = field(default_factory=dict)  # old code merged into it -> its row

    @property
    def name(self) -> str:
        return self.values.get("new_name", "")

    @property
    def parent_code(self) -> str:
        return self.values.get("new_parent_code", "")

    @property
    def level(self) -> str:
        return self.values.get("new_level", "")

    @property
    def kind(self) -> str:
        return self.values.get("new_kind", "")

    @property
    def email(self) -> str:
        return self.values.get("new_email", "")


@dataclass(frozen=True)
class Plan:
    targets: list[Target]  # in file order
    dissolved: list[str]  # old codes, in file order

    def leaving_codes(self) -> set[str]:
        return {code for t in self.targets for code in t.sources} | set(self.dissolved)


def read_plan(session: Session, data: bytes) -> Plan:
    """Parse and check the whole file; raise ``ImportFailed`` listing every bad row."""
    rows = read_rows(data, COLUMNS, OPTIONAL)
    if not rows:
        raise ImportFailed([RowError(1, "", N_("The file has no rows."))])
    units = {u.code: u for u in service.all_units(session, include_inactive=True)}
    errors: list[RowError] = []
    first_line: dict[str, int] = {}  # old code -> first row naming it
    targets: dict[str, Target] = {}
    dissolved: dict[str, int] = {}
    for row in rows:
        values = {c: row.values.get(c, "") for c in (*COLUMNS, *OPTIONAL)}
        old, new = values["old_code"].lower(), values["new_code"].lower()
        values["new_parent_code"] = values["new_parent_code"].lower()
        line = row.line
        old_ok = False
        if not old:
            errors.append(RowError(line, "old_code", N_("The old code is empty.")))
        elif old in first_line:
            errors.append(RowError(line, "old_code", N_("The old code {code} is listed twice (first on line {first}).", code=old, first=first_line[old])))
        elif old not in units:
            errors.append(RowError(line, "old_code", N_("Unknown unit code {code}.", code=old)))
        elif not units[old].active:
            errors.append(RowError(line, "old_code", N_("The unit {code} was already merged or dissolved.", code=old)))
        else:
            old_ok = True
        first_line.setdefault(old, line)
        if old == new and not old_ok:
            continue  # the old code is already reported; it cannot describe a unit in place
        given = {c: values[c] for c in OPTIONAL if values[c]}
        if not new:
            for column in given:
                errors.append(RowError(line, column, N_("Leave {column} empty: an empty new_code dissolves the old unit.", column=column)))
            if old_ok and not given:
                dissolved[old] = line
            continue
        if not CODE_RE.match(new):
            errors.append(RowError(line, "new_code", N_("The code {code} may hold only a-z, 0-9, '.', '-' and '_'.", code=new)))
            continue
        existing = units.get(new)
        if existing is not None and not existing.active:
            errors.append(RowError(line, "new_code", N_("The unit {code} was merged or dissolved; use a new code.", code=new)))
            continue
        target = targets.setdefault(new, Target(new, line, is_new=existing is None))
        if old_ok and old != new:
            target.sources[old] = line
        for column, value in given.items():
            if column not in target.values:
                target.values[column], target.lines[column] = value, line
            elif target.values[column] != value:
                errors.append(RowError(line, column, N_(
                    "{code} already has {column} {value} on line {first}.",
                    code=new, column=column, value=target.values[column], first=target.lines[column],
                )))
    plan = Plan(list(targets.values()), list(dissolved))
    errors.extend(_check_targets(session, plan, units, dissolved))
    errors.extend(_check_tree(plan, units, dissolved))
    if errors:
        raise ImportFailed(sorted(errors, key=lambda e: e.line))
    return plan


def _check_targets(session: Session, plan: Plan, units: dict[str, Unit], dissolved: dict[str, int]) -> list[RowError]:
    errors: list[RowError] = []
    merged_on = {code: line for t in plan.targets for code, line in t.sources.items()}
    leaving = {**merged_on, **dissolved}
    new_codes = [t.code for t in plan.targets if t.is_new]
    taken = set(session.exec(select(User.username).where(col(User.username).in_(new_codes))).all()) if new_codes else set()
    for target in plan.targets:
        code = target.code
        if code in leaving:
            errors.append(RowError(target.line, "new_code", N_(
                "{code} is itself merged or dissolved on line {other}; it cannot take in units.", code=code, other=leaving[code],
            )))
        if target.is_new:
            for column in REQUIRED_FOR_NEW:
                if column not in target.values:
                    errors.append(RowError(target.line, column, N_("The new unit {code} needs a {column}.", code=code, column=column)))
            if code in taken:
                errors.append(RowError(target.line, "new_code", N_("{code} is already the username of an account; choose another code.", code=code)))
        for column, limit in LIMITS.items():
            if len(target.values.get(column, "")) > limit:
                errors.append(RowError(target.lines[column], column, N_("The {column} is too long (at most {n} characters).", column=column, n=limit)))
        if target.email and not EMAIL_RE.match(target.email):
            errors.append(RowError(target.lines["new_email"], "new_email", N_("{email} is not a mail address.", email=target.email)))
        parent = target.parent_code
        if not parent:
            continue
        line = target.lines["new_parent_code"]
        if parent == code:
            errors.append(RowError(line, "new_parent_code", N_("A unit cannot be its own parent.")))
        elif not CODE_RE.match(parent):
            errors.append(RowError(line, "new_parent_code", N_("The code {code} may hold only a-z, 0-9, '.', '-' and '_'.", code=parent)))
        elif parent in new_codes:
            continue
        elif parent not in units:
            errors.append(RowError(line, "new_parent_code", N_("Unknown parent unit {code}.", code=parent)))
        elif not units[parent].active:
            errors.append(RowError(line, "new_parent_code", N_("The parent unit {code} is no longer active.", code=parent)))
        elif parent in leaving:
            errors.append(RowError(line, "new_parent_code", N_(
                "The parent unit {code} is merged or dissolved on line {other}.", code=parent, other=leaving[parent],
            )))
    people = _active_people(session, [units[c] for c in dissolved])
    for code, line in dissolved.items():
        if people.get(code):
            errors.append(RowError(line, "old_code", N_(
                "Accounts still belong to {code}: {names}. Move or disable them first.", code=code, names=listing(people[code]),
            )))
    return errors


def _check_tree(plan: Plan, units: dict[str, Unit], dissolved: dict[str, int]) -> list[RowError]:
    """Work out every active unit's parent after the whole file, then look for units left
    under a dissolved unit and for cycles. Only the end state matters, not the row order."""
    codes = {u.id: u.code for u in units.values()}
    parent_of: dict[str, str | None] = {
        u.code: codes.get(u.parent_id) if u.parent_id else None for u in units.values() if u.active
    }
    merged_into = {source: t.code for t in plan.targets for source in t.sources}
    leaving = set(merged_into) | set(dissolved)
    explicit = {t.code for t in plan.targets if t.parent_code}
    for target in plan.targets:
        if target.parent_code:
            parent_of[target.code] = target.parent_code
    followed: dict[str, str] = {}  # child -> the merged parent it follows
    for code, parent in list(parent_of.items()):
        if code not in leaving and code not in explicit and parent in merged_into:
            parent_of[code] = merged_into[parent]
            followed[code] = parent
    errors: list[RowError] = []
    left_behind: dict[str, list[str]] = {}
    for code, parent in parent_of.items():
        if parent in dissolved and code not in leaving and code not in explicit:
            left_behind.setdefault(parent, []).append(code)
    for parent, children in left_behind.items():
        errors.append(RowError(dissolved[parent], "old_code", N_(
            "{code} is dissolved but units below it stay active: {codes}. Merge, move or dissolve them in this file too.",
            code=parent, codes=listing(children),
        )))
    for target in plan.targets:
        line = target.lines.get("new_parent_code", target.line)
        column = "new_parent_code" if target.parent_code else "new_code"
        if parent_of.get(target.code) == target.code and target.code in followed:
            errors.append(RowError(target.line, "new_code", N_(
                "{code} lies below {old}, which merges into it; give {code} a new_parent_code outside it.",
                code=target.code, old=followed[target.code],
            )))
            continue
        seen: set[str] = set()
        current = parent_of.get(target.code)
        while current is not None and current not in seen:
            if current == target.code:
                errors.append(RowError(line, column, N_("The parent chain of {code} is a cycle.", code=target.code)))
                break
            seen.add(current)
            current = parent_of.get(current)
    return errors


def _active_people(session: Session, dissolved: list[Unit]) -> dict[str, list[str]]:
    """Active accounts of people (not endpoints) by the code of their unit."""
    if not dissolved:
        return {}
    by_id = {u.id: u.code for u in dissolved}
    rows = session.exec(
        select(User.username, User.unit_id).where(
            col(User.unit_id).in_(list(by_id)), User.role != Role.endpoint.value, User.active == True,  # noqa: E712
        ).order_by(col(User.username))
    ).all()
    found: dict[str, list[str]] = {}
    for username, unit_id in rows:
        found.setdefault(by_id[unit_id], []).append(username)
    return found


def listing(items: Iterable[str], limit: int = 10) -> str:
    """``a, b, c`` for a message, cut after ``limit`` items with the count of the rest."""
    values = list(items)
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit})" if len(values) > limit else "")
