"""Import units from CSV (``code,parent_code,level,kind,name`` and optional ``email``).

Existing codes are updated in place (a re-import of the same file changes nothing); new codes
are created. Every row is checked before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from server.accounts.models import User
from server.csvfile import ImportFailed, Row, RowError, read_rows
from server.i18n import N_
from server.units import service
from server.units.models import Unit

COLUMNS = ("code", "parent_code", "level", "kind", "name")
OPTIONAL = ("email",)
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def import_units(session: Session, data: bytes, *, actor: str = "", batch: str = "import") -> ImportResult:
    rows = read_rows(data, COLUMNS, OPTIONAL)
    errors: list[RowError] = []
    by_code: dict[str, Row] = {}
    for row in rows:
        v = row.values
        code = v["code"].lower()
        v["code"] = code
        v["parent_code"] = v["parent_code"].lower()
        if not code:
            errors.append(RowError(row.line, "code", N_("The code is empty.")))
        elif not CODE_RE.match(code):
            errors.append(
                RowError(row.line, "code", N_("The code {code} may hold only a-z, 0-9, '.', '-' and '_'.", code=code))
            )
        elif code in by_code:
            errors.append(
                RowError(row.line, "code", N_("Duplicate code {code} (first on line {first}).", code=code, first=by_code[code].line))
            )
        else:
            by_code[code] = row
        for column in ("name", "level", "kind"):
            if not v[column]:
                errors.append(RowError(row.line, column, N_("The {column} is empty.", column=column)))
            elif len(v[column]) > {"name": 200, "level": 50, "kind": 100}[column]:
                errors.append(RowError(row.line, column, N_("The {column} is too long.", column=column)))
        email = v.get("email", "")
        if email and not EMAIL_RE.match(email):
            errors.append(RowError(row.line, "email", N_("{email} is not a mail address.", email=email)))

    existing = service.find_by_codes(session, [*by_code, *(r.values["parent_code"] for r in rows)])
    for row in rows:
        parent_code = row.values["parent_code"]
        if not parent_code:
            continue
        if parent_code == row.values["code"]:
            errors.append(RowError(row.line, "parent_code", N_("A unit cannot be its own parent.")))
        elif parent_code not in by_code:
            parent = existing.get(parent_code)
            if parent is None:
                errors.append(RowError(row.line, "parent_code", N_("Unknown parent unit {code}.", code=parent_code)))
            elif not parent.active:
                errors.append(RowError(row.line, "parent_code", N_("The parent unit {code} is no longer active.", code=parent_code)))
    for row in rows:
        old = existing.get(row.values["code"])
        if old is not None and not old.active:
            errors.append(
                RowError(row.line, "code", N_("The unit {code} was merged or dissolved; use a new code.", code=old.code))
            )
    # A unit's code is also its endpoint account's username: it must not be a person's.
    new_codes = [c for c in by_code if c not in existing]
    taken = set(session.exec(select(User.username).where(col(User.username).in_(new_codes))).all()) if new_codes else set()
    for code in sorted(taken):
        errors.append(RowError(by_code[code].line, "code", N_("The code {code} is already a person's username.", code=code)))
    errors.extend(_cycles(rows, by_code, existing))
    if errors:
        raise ImportFailed(sorted(errors, key=lambda e: e.line))
    return _write(session, rows, existing, actor=actor, batch=batch)


def _cycles(rows: list[Row], by_code: dict[str, Row], existing: dict[str, Unit]) -> list[RowError]:
    """Rows whose parent chain (through the file, then the database) comes back to them."""
    errors = []
    for row in rows:
        seen = {row.values["code"]}
        parent = row.values["parent_code"]
        while parent and parent in by_code and parent != row.values["code"]:
            if parent in seen:
                break
            seen.add(parent)
            parent = by_code[parent].values["parent_code"]
        if parent and parent == row.values["code"] and row.values["parent_code"] != row.values["code"]:
            errors.append(RowError(row.line, "parent_code", N_("The parent chain of {code} is a cycle.", code=row.values["code"])))
    return errors


def _write(session: Session, rows: list[Row], existing: dict[str, Unit], *, actor: str, batch: str) -> ImportResult:
    units = dict(existing)
    created = updated = unchanged = 0
    pending = list(rows)
    # Parents first: take rows whose parent is known, until none are left (cycles were refused).
    while pending:
        later = []
        for row in pending:
            v = row.values
            parent = units.get(v["parent_code"]) if v["parent_code"] else None
            if v["parent_code"] and parent is None:
                later.append(row)
                continue
            unit = units.get(v["code"])
            if unit is None:
                units[v["code"]] = service.new_unit(
                    session, code=v["code"], name=v["name"], level=v["level"], kind=v["kind"],
                    parent=parent, email=v.get("email", ""), actor=actor, batch=batch,
                )
                created += 1
            else:
                values: dict[str, object] = {
                    "name": v["name"], "level": v["level"], "kind": v["kind"],
                    "parent_id": parent.id if parent else None,
                }
                if v.get("email"):
                    values["email"] = v["email"]
                if service.set_fields(session, unit, actor=actor, batch=batch, **values):
                    updated += 1
                else:
                    unchanged += 1
        if len(later) == len(pending):  # pragma: no cover - guarded by _cycles
            raise ImportFailed([RowError(r.line, "parent_code", N_("Unresolvable parent.")) for r in later])
        pending = later
    # An update may also close a cycle through units that are only in the database.
    session.flush()
    for code in (r.values["code"] for r in rows):
        unit = units[code]
        if unit.parent_id is not None and service.is_within(session, unit.parent_id, unit.id or 0):
            line = next(r.line for r in rows if r.values["code"] == code)
            raise ImportFailed([RowError(line, "parent_code", N_("The parent chain of {code} is a cycle.", code=code))])
    return ImportResult(created, updated, unchanged)
