"""Who a choice invites: units by code, every unit of a level under a unit, people by username.

"Level L under unit U" means every active unit at level L anywhere below U. The expansion is
stored when the meeting is saved and changes only when the secretary edits the meeting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from server.accounts.models import Role, User
from server.i18n import N_, Text
from server.units import service as units
from server.units.models import Unit

MAX_CHOICES = 500


@dataclass(frozen=True)
class LevelChoice:
    under: str
    level: str


@dataclass(frozen=True)
class Choice:
    units: tuple[str, ...] = ()
    levels: tuple[LevelChoice, ...] = ()
    users: tuple[str, ...] = ()


@dataclass
class Expansion:
    units: list[Unit] = field(default_factory=list)
    people: list[User] = field(default_factory=list)
    errors: dict[str, Text] = field(default_factory=dict)
    selections: list[tuple[str, Unit | None, str, User | None]] = field(default_factory=list)  # (kind, unit, level, user)

    @property
    def endpoints(self) -> int:
        return len(self.units) + len(self.people)


def _names(values: list[str]) -> str:
    shown = ", ".join(values[:5])
    return shown + (f" (+{len(values) - 5})" if len(values) > 5 else "")


def expand(session: Session, choice: Choice, chair: User | None) -> Expansion:
    """Resolve ``choice``; the chair is always one of the people. Errors name each bad entry."""
    result = Expansion()
    if len(choice.units) + len(choice.levels) + len(choice.users) > MAX_CHOICES:
        result.errors["participants"] = N_("At most {max} choices.", max=MAX_CHOICES)
        return result
    wanted_codes = [c.strip().lower() for c in choice.units if c.strip()]
    level_roots = [lv.under.strip().lower() for lv in choice.levels]
    found = units.find_by_codes(session, [*wanted_codes, *level_roots])
    chosen: dict[int, Unit] = {}

    unknown = [c for c in wanted_codes if c not in found]
    inactive = [c for c in wanted_codes if c in found and not found[c].active]
    if unknown:
        result.errors["participants.units"] = N_("Unknown unit codes: {codes}", codes=_names(unknown))
    elif inactive:
        result.errors["participants.units"] = N_("No longer active (merged or dissolved): {codes}", codes=_names(inactive))
    for code in wanted_codes:
        unit = found.get(code)
        if unit is not None and unit.active and unit.id is not None:
            chosen.setdefault(unit.id, unit)
            result.selections.append(("unit", unit, "", None))

    level_errors: list[str] = []
    all_units = units.all_units(session)
    for choice_level, root_code in zip(choice.levels, level_roots, strict=True):
        root = found.get(root_code)
        if root is None or not root.active or root.id is None:
            level_errors.append(root_code)
            continue
        below = units.descendant_ids(session, root.id, include_self=False)
        matches = [u for u in all_units if u.id in below and u.level == choice_level.level.strip()]
        if not matches:
            result.errors["participants.levels"] = N_(
                "No active unit at level {level} under {unit}.", level=choice_level.level, unit=root.name
            )
            continue
        for unit in matches:
            chosen.setdefault(unit.id or 0, unit)
        result.selections.append(("level", root, choice_level.level.strip(), None))
    if level_errors:
        result.errors["participants.levels"] = N_("Unknown unit codes: {codes}", codes=_names(level_errors))

    usernames = [u.strip().lower() for u in choice.users if u.strip()]
    people = {u.username: u for u in session.exec(select(User).where(col(User.username).in_(usernames))).all()} if usernames else {}
    unknown_people = [u for u in usernames if u not in people or not people[u].active]
    endpoints = [u for u in usernames if u in people and people[u].role == Role.endpoint.value]
    if unknown_people:
        result.errors["participants.users"] = N_("Unknown or disabled accounts: {names}", names=_names(unknown_people))
    elif endpoints:
        result.errors["participants.users"] = N_(
            "{names} are meeting rooms: invite their units instead.", names=_names(endpoints)
        )
    invited: dict[int, User] = {}
    if chair is not None and chair.id is not None:
        invited[chair.id] = chair
    for name in usernames:
        person = people.get(name)
        if person is not None and person.active and person.role != Role.endpoint.value and person.id is not None:
            invited.setdefault(person.id, person)
            result.selections.append(("user", None, "", person))

    result.units = sorted(chosen.values(), key=lambda u: u.id or 0)
    result.people = list(invited.values())
    return result


def level_counts(expansion: Expansion) -> dict[str, int]:
    """How many units of each level a choice reaches (the page shows it before saving)."""
    counts: dict[str, int] = {}
    for unit in expansion.units:
        counts[unit.level] = counts.get(unit.level, 0) + 1
    return counts
