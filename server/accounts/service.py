"""Accounts: login, people and endpoint accounts, bulk import, resets.

Every change here is recorded in the audit log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, func, or_, select

from server.accounts import sessions
from server.accounts.models import Role, User
from server.accounts.passwords import MIN_LENGTH, hash_password, verify_password
from server.audit import service as audit
from server.csvfile import ImportFailed, RowError, read_rows
from server.db import utcnow
from server.errors import Conflict, InvalidInput, NotFound
from server.i18n import N_, Text
from server.text import fold, nfc
from server.units import service as units
from server.units.models import Unit

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UNUSABLE_PASSWORD = "!"
PERSON_ROLES = (Role.admin.value, Role.secretary.value, Role.official.value)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: Text | None = None
    retry_after: int = 0


def authenticate(session: Session, username: str, password: str, *, ip: str, now: dt.datetime | None = None) -> LoginResult:
    """Check a login; failures are audited, the caller commits either way. An unknown name
    costs one hash like a known one (``verify_password``) and gets the same answer.

    Throttling is not here: it belongs to the account *and* address together
    (server/ratelimit.py, in ``server.auth.attempt_login``), so a guesser elsewhere never locks
    the owner out. ``User.failed_logins`` and ``locked_until`` are no longer read or written
    by logins (the columns stay until a migration drops them)."""
    now = now or dt.datetime.now(dt.UTC)
    name = username.strip().lower()
    user = session.exec(select(User).where(User.username == name)).first()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        audit.record(session, "login_failed", target=name, ip=ip, reason="disabled" if user and ok else "credentials")
        if user is not None and ok and not user.active:
            return LoginResult(None, N_("This account is disabled. Ask your administrator."))
        return LoginResult(None, N_("Wrong username or password."))
    user.last_login_at = now
    session.add(user)
    audit.record(session, "login", actor=user, target=name, ip=ip)
    return LoginResult(user)


def by_username(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise NotFound(N_("Unknown user: {username}", username=username))
    return user


def unit_of(session: Session, user: User) -> Unit:
    return units.by_id(session, user.unit_id)


def list_users(
    session: Session, *, q: str = "", unit: str = "", role: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[tuple[User, Unit]], int]:
    query = select(User, Unit).join(Unit, col(User.unit_id) == col(Unit.id))
    if q.strip():
        pattern = f"%{fold(q)}%"
        query = query.where(or_(col(User.username).like(pattern), func.lower(User.full_name).like(f"%{q.strip().lower()}%")))
    if unit:
        query = query.where(Unit.code == unit)
    if role:
        query = query.where(User.role == role)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(User.role) == Role.endpoint.value, col(User.username)).offset(offset).limit(limit)).all()
    return [(u, n) for u, n in rows], int(total)


@dataclass(frozen=True)
class NewUser:
    username: str
    full_name: str
    email: str
    unit_code: str
    role: str
    password: str = ""


def _validate_new_user(session: Session, data: NewUser) -> tuple[dict[str, Text], Unit | None]:
    errors: dict[str, Text] = {}
    username = data.username.strip().lower()
    if not USERNAME_RE.match(username):
        errors["username"] = N_("2–100 characters: a-z, 0-9, '.', '-', '_'.")
    elif session.exec(select(User.id).where(User.username == username)).first() is not None:
        errors["username"] = N_("The username {username} is taken.", username=username)
    elif units.find_by_codes(session, [username]):
        errors["username"] = N_("The username {username} is a unit code, kept for that unit's endpoint.", username=username)
    if not nfc(data.full_name):
        errors["full_name"] = N_("The full name is empty.")
    elif len(nfc(data.full_name)) > 200:
        errors["full_name"] = N_("The full name is too long.")
    if not EMAIL_RE.match(data.email.strip()):
        errors["email"] = N_("Enter a mail address such as name@cantho.gov.vn.")
    if data.role not in PERSON_ROLES:
        errors["role"] = N_("Choose a role: admin, secretary or official.")
    if data.password and len(data.password) < MIN_LENGTH:
        errors["password"] = N_("At least {n} characters.", n=MIN_LENGTH)
    unit = units.find_by_codes(session, [data.unit_code.strip()]).get(data.unit_code.strip())
    if not data.unit_code.strip():
        errors["unit"] = N_("Enter the unit code, for example ct.ninh-kieu.")
    elif unit is None:
        errors["unit"] = N_("Unknown unit code: {code}", code=data.unit_code)
    elif not unit.active:
        errors["unit"] = N_("The unit {code} is no longer active.", code=unit.code)
    return errors, unit


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(session: Session, data: NewUser, *, actor: User | None, ip: str = "") -> tuple[User, str]:
    """Create a person's account; returns it with its initial password (generated if empty)."""
    errors, unit = _validate_new_user(session, data)
    if errors or unit is None:
        raise InvalidInput(N_("The account was not created."), fields=errors)
    password = data.password or generate_password()
    user = User(
        username=data.username.strip().lower(),
        full_name=nfc(data.full_name),
        email=data.email.strip().lower(),
        unit_id=unit.id or 0,
        role=data.role,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, "user_created", actor=actor, target=user.username, ip=ip, role=user.role, unit=unit.code)
    return user, password


USER_COLUMNS = ("username", "full_name", "email", "unit_code")
USER_OPTIONAL = ("role",)


def import_users(session: Session, data: bytes, *, actor: User | None, ip: str = "") -> list[tuple[User, str]]:
    """Create officials in bulk from CSV (``username,full_name,email,unit_code[,role]``)."""
    rows = read_rows(data, USER_COLUMNS, USER_OPTIONAL)
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row in rows:
        v = row.values
        candidate = NewUser(v["username"], v["full_name"], v["email"], v["unit_code"], v.get("role") or Role.official.value)
        problems, _ = _validate_new_user(session, candidate)
        name = v["username"].strip().lower()
        if name in seen:
            problems["username"] = N_("Duplicate username {username} (first on line {first}).", username=name, first=seen[name])
        seen.setdefault(name, row.line)
        errors.extend(RowError(row.line, column, message) for column, message in problems.items())
    if errors:
        raise ImportFailed(errors)
    created = []
    for row in rows:
        v = row.values
        created.append(
            create_user(
                session,
                NewUser(v["username"], v["full_name"], v["email"], v["unit_code"], v.get("role") or Role.official.value),
                actor=actor,
                ip=ip,
            )
        )
    audit.record(session, "users_imported", actor=actor, ip=ip, count=len(created))
    return created


def reset_password(session: Session, user: User, *, actor: User | None, password: str = "", ip: str = "") -> str:
    """Set a new password; every session and token of the user ends."""
    if password and len(password) < MIN_LENGTH:
        raise InvalidInput(N_("The password was not changed."), fields={"password": N_("At least {n} characters.", n=MIN_LENGTH)})
    password = password or generate_password()
    user.password_hash = hash_password(password)
    user.auth_version += 1
    user.failed_logins = 0
    user.locked_until = None
    user.is_demo = False
    session.add(user)
    ended = _end_sessions(session, user, "password")
    audit.record(session, "password_reset", actor=actor, target=user.username, ip=ip, sessions_ended=ended)
    return password


def set_active(session: Session, user: User, active: bool, *, actor: User | None, ip: str = "") -> None:
    if actor is not None and actor.id == user.id and not active:
        raise Conflict(N_("You cannot disable your own account."))
    if user.active == active:
        return
    user.active = active
    user.auth_version += 1
    session.add(user)
    ended = _end_sessions(session, user, "enabled" if active else "disabled")
    audit.record(session, "user_enabled" if active else "user_disabled", actor=actor, target=user.username, ip=ip, sessions_ended=ended)


def _end_sessions(session: Session, user: User, reason: str) -> int:
    """Every session and token of ``user`` ends, in the transaction of the change that ends
    them (the ``auth_version`` bump beside it ends them too, whatever the store)."""
    return sessions.end_all(session, user.id, reason=reason, now=utcnow()) if user.id is not None else 0


def end_all_sessions(session: Session, user: User, *, actor: User, ip: str = "") -> int:
    """An administrator's "end all sessions": the person stays enabled, and logs in again."""
    ended = _end_sessions(session, user, "admin")
    audit.record(session, "sessions_ended", actor=actor, target=user.username, ip=ip, count=ended, reason="admin")
    return ended


def sync_endpoint_accounts(session: Session, *, password_hash: str = UNUSABLE_PASSWORD, is_demo: bool = False) -> int:
    """Give every active unit its endpoint account (username = unit code) and disable the
    endpoint accounts of merged or dissolved units. Returns how many accounts changed."""
    changed = 0
    endpoints = {u.username: u for u in session.exec(select(User).where(User.role == Role.endpoint.value)).all()}
    taken = set(session.exec(select(User.username)).all())
    for unit in units.all_units(session, include_inactive=True):
        account = endpoints.get(unit.code)
        if unit.active and account is None and unit.code not in taken:
            session.add(
                User(
                    username=unit.code,
                    full_name=unit.name,
                    email=unit.email,
                    unit_id=unit.id or 0,
                    role=Role.endpoint.value,
                    password_hash=password_hash,
                    is_demo=is_demo,
                )
            )
            changed += 1
        elif account is not None and (
            account.active != unit.active or account.full_name != unit.name or account.email != unit.email
        ):
            if account.active != unit.active:
                account.auth_version += 1
                _end_sessions(session, account, "disabled")
            account.active = unit.active
            account.full_name = unit.name
            account.email = unit.email
            session.add(account)
            changed += 1
    session.flush()
    return changed


def active_demo_accounts(session: Session) -> int:
    return int(session.exec(select(func.count()).where(User.is_demo == True, User.active == True)).one())  # noqa: E712
