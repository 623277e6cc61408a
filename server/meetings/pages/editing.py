"""The meeting form pages: plan a new meeting, change one. "Check" shows who the choice reaches
and every conflict, saving nothing; "Save" saves, refusing hard conflicts (409) until the
secretary ticks "Save anyway"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server import permissions
from server.accounts import service as accounts
from server.accounts.models import Role, User
from server.appstate import app_state
from server.auth import page_user
from server.clock import date_text
from server.edge import client_ip
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_, Text
from server.mail.invitations import notifier
from server.meetings import service
from server.meetings.display import NO_CONFLICTS, Conflicts, conflict_rows
from server.meetings.forms import QUICK_SEPARATOR, REPEAT_LABELS, REPEATS, Parsed, PlanForm
from server.meetings.participants import level_counts
from server.units import service as units
from server.units.models import Unit

PEOPLE_LIMIT = 2000  # the chair's and the people's suggestions
KIND_CHOICES: tuple[tuple[str, Text], ...] = (("regular", N_("Regular")), ("ad_hoc", N_("Ad hoc")))
# Where each field's error is shown: the element the summary at the top links to. An error
# of any other key is listed in the summary only.
FIELD_ANCHORS = {
    "title": "title", "kind": "kind-regular", "host_unit": "host_unit", "chair": "chair", "date": "date",
    "start": "start_time", "end": "end_time", "recurrence": "repeat", "agenda": "agenda", "description": "description",
    "participants": "participants", "participants.units": "units_text", "participants.levels": "level-0-level",
    "participants.users": "users", "version": "title",
}


@dataclass(frozen=True)
class UnitGroup:
    """One block of unit checkboxes: a unit's children (and a root unit itself)."""

    title: str
    units: list[Unit]
    chosen: int


@dataclass(frozen=True)
class QuickLevel:
    under_code: str
    under: str  # the unit's name
    level: str
    count: int

    @property
    def value(self) -> str:
        return f"{self.under_code}{QUICK_SEPARATOR}{self.level}"


@dataclass(frozen=True)
class Person:
    username: str
    full_name: str
    unit: str


@dataclass(frozen=True)
class CheckView:
    """Who the plan reaches and what it clashes with (the "Check" answer)."""

    units: int
    people: int
    by_level: list[tuple[str, int]]
    occurrences: int
    first: str
    last: str
    conflicts: Conflicts


# --- what the form offers -----------------------------------------------------------------


def _hosts(session: Session, actor: User, active: list[Unit]) -> list[Unit]:
    """The units ``actor`` may schedule for (the permission rule decides; the tree only
    narrows the candidates)."""
    if permissions.is_admin(actor):
        return active
    own = units.descendant_ids(session, actor.unit_id)
    return [u for u in active if u.id in own and permissions.can_schedule_for(session, actor, u)]


def _groups(forest: list[units.UnitNode], chosen: set[str]) -> list[UnitGroup]:
    groups: list[UnitGroup] = []

    def visit(node: units.UnitNode, root: bool) -> None:
        if node.children:
            members = ([node.unit] if root else []) + [child.unit for child in node.children]
            groups.append(UnitGroup(node.unit.name, members, sum(1 for u in members if u.code in chosen)))
        for child in node.children:
            visit(child, False)

    for root in forest:
        if root.children:
            visit(root, True)
        else:
            groups.append(UnitGroup(root.unit.name, [root.unit], int(root.unit.code in chosen)))
    return groups


def _quick(session: Session, hosts: list[Unit], active: list[Unit], levels: list[str]) -> list[QuickLevel]:
    """"Every unit of level L under U" for the top units the actor schedules for."""
    host_ids = {u.id for u in hosts}
    found: list[QuickLevel] = []
    for top in (u for u in hosts if u.parent_id not in host_ids and u.id is not None):
        below = units.descendant_ids(session, top.id or 0, include_self=False)
        counts: dict[str, int] = {}
        for unit in active:
            if unit.id in below:
                counts[unit.level] = counts.get(unit.level, 0) + 1
        found += [QuickLevel(top.code, top.name, level, counts[level]) for level in levels if level in counts]
    return found


def _people(session: Session) -> list[Person]:
    rows, _ = accounts.list_users(session, limit=PEOPLE_LIMIT)
    return [Person(u.username, u.full_name, unit.name) for u, unit in rows if u.active and u.role != Role.endpoint.value]


def _require_planner(session: Session, actor: User, own: Unit) -> None:
    if not permissions.can_schedule_for(session, actor, own):
        raise Forbidden(N_("Only secretaries and administrators schedule meetings."))


def _context(session: Session, actor: User, meeting_id: int | None, form: PlanForm | None) -> dict[str, Any]:
    own = units.by_id(session, actor.unit_id)
    active = units.all_units(session)
    forest = units.tree(session)
    levels = units.levels(session)
    hosts = _hosts(session, actor, active)
    quick = _quick(session, hosts, active, levels)
    meeting = None
    if meeting_id is not None:
        meeting = service.get_editable(session, actor, meeting_id)
        if form is None:
            form = PlanForm.from_input(service.as_input(session, meeting), checkable={u.code for u in active},
                                       quick={(q.under_code, q.level) for q in quick}, version=meeting.version)
    else:
        _require_planner(session, actor, own)
        host_codes = [u.code for u in hosts]
        form = form or PlanForm(host_unit=own.code if own.code in host_codes else next(iter(host_codes), ""))
    assert form is not None
    parents = {u.parent_id for u in active}
    level_roots = [u for u in active if u.id in parents]
    return {
        "form": form,
        "meeting": meeting,
        "action_url": f"/meetings/{meeting_id}/edit" if meeting_id else "/meetings/new",
        "cancel_url": f"/meetings/{meeting_id}" if meeting_id else "/meetings",
        "hosts": hosts,
        "kinds": KIND_CHOICES,
        "repeats": [(value, REPEAT_LABELS[value]) for value in REPEATS],
        "groups": _groups(forest, set(form.units)),
        "chosen_units": set(form.units),
        "quick": quick,
        "quick_chosen": set(form.quick_levels),
        "level_roots": level_roots,
        "level_root_codes": {u.code for u in level_roots},
        "levels": levels,
        "level_names": units.level_names(session),
        "level_rows": form.rows_to_show(),
        "people": _people(session),
    }


# --- check and save -----------------------------------------------------------------------


def _readable(session: Session, parsed: Parsed) -> None:
    """Refuse a form that could not be read, naming the service's other bad fields too."""
    if not parsed.errors:
        return
    try:
        service.prepare(session, parsed.data)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fields=parsed.merge(exc.fields)) from None
    raise InvalidInput(N_("The meeting was not saved: some fields are invalid."), fields=dict(parsed.errors))


def _check(session: Session, actor: User, parsed: Parsed, meeting_id: int | None, version: int | None, max_endpoints: int) -> CheckView:
    if meeting_id is not None:
        service.get_editable(session, actor, meeting_id, version)
    _readable(session, parsed)
    result = service.check(session, actor, parsed.data, max_endpoints=max_endpoints, meeting_id=meeting_id)
    expansion = result.prepared.expansion
    counts = level_counts(expansion)
    order = units.levels(session)
    starts = result.prepared.starts
    return CheckView(
        units=len(expansion.units), people=len(expansion.people),
        by_level=sorted(counts.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)),
        occurrences=len(starts), first=date_text(starts[0]), last=date_text(starts[-1]),
        conflicts=conflict_rows(result.conflicts),
    )


def _save(session: Session, actor: User, parsed: Parsed, meeting_id: int | None, version: int | None, confirm: bool,
          max_endpoints: int, ip: str, notify: service.Notifier | None = None) -> int:
    _readable(session, parsed)
    if meeting_id is None:
        meeting, _ = service.create(session, actor, parsed.data, max_endpoints=max_endpoints, confirm=confirm, ip=ip, notify=notify)
    else:
        if version is None:
            raise InvalidInput(N_("The meeting was not saved: some fields are invalid."),
                               fields={"version": N_("Changed since you read it: reload.")})
        meeting, _ = service.update(session, actor, meeting_id, parsed.data, version=version, max_endpoints=max_endpoints,
                                    confirm=confirm, ip=ip, notify=notify)
    return meeting.id or 0


# --- the pages ----------------------------------------------------------------------------


async def _render(request: Request, actor: User, meeting_id: int | None, form: PlanForm | None = None, *,
                  status_code: int = 200, errors: dict[str, Text | str] | None = None, message: Text | str | None = None,
                  check: CheckView | None = None, conflicts: Conflicts | None = None) -> Response:
    state = app_state(request)
    context = await state.db.run(_context, actor, meeting_id, form)
    errors = errors or {}
    shown = conflicts or (check.conflicts if check else NO_CONFLICTS)
    context.update(
        errors=errors, error_summary=[(FIELD_ANCHORS.get(k, ""), m) for k, m in errors.items()], message=message,
        check=check, conflicts=shown, show_confirm=bool(shown.hard), stale="version" in errors,
    )
    return state.pages.render(request, "meetings/form.html", context, status_code=status_code)


async def _page(request: Request, meeting_id: int | None) -> Response:
    actor = page_user(request)
    if request.method == "GET":
        return await _render(request, actor, meeting_id)
    # The permission first (404/403), before the plan is read and checked field by field.
    if meeting_id is None:
        service.require_scheduler(actor)
    else:
        await app_state(request).db.run(service.require_editor, actor, meeting_id)
    raw = await request.form()
    form = PlanForm.from_form(raw)
    action = raw.get("action")
    await raw.close()
    parsed = form.to_input()
    state = app_state(request)
    max_endpoints = state.settings.max_endpoints
    try:
        if action == "save":
            saved = await state.db.run(_save, actor, parsed, meeting_id, form.version, form.confirm, max_endpoints, client_ip(request),
                                       notifier(state.settings, state.catalogues))
            state.outbox_sender.wake()
            return RedirectResponse(f"/meetings/{saved}?saved=1", status_code=303)
        check = await state.db.run(_check, actor, parsed, meeting_id, form.version, max_endpoints)
    except (InvalidInput, Conflict, Forbidden) as exc:
        hard = exc.extra.get("conflicts") if isinstance(exc, Conflict) else None
        return await _render(request, actor, meeting_id, form, status_code=exc.status, errors=exc.fields, message=exc.message,
                             conflicts=conflict_rows(hard) if hard else None)
    return await _render(request, actor, meeting_id, form, check=check)


async def new_page(request: Request) -> Response:
    return await _page(request, None)


async def edit_page(request: Request) -> Response:
    return await _page(request, int(request.path_params["id"]))
