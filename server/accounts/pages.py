"""Account pages: login, logout, the language switch and a person's own sessions; for
administrators, the accounts (list, create, bulk import, reset a password, disable, end all
sessions)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts import service
from server.accounts.models import Role, User
from server.appstate import app_state
from server.auth import attempt_login, log_in, log_out, page_user
from server.csvfile import ImportFailed
from server.edge import client_ip, query_page, whole_number
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import LANG_COOKIE, LOCALES, N_, Text


def safe_next(target: str | None) -> str:
    """Only paths of this site: never ``//host`` or ``https://host`` (open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_page(request: Request) -> Response:
    pages = app_state(request).pages
    next_url = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if request.state.user is not None:
            return RedirectResponse(next_url, status_code=303)
        return pages.render(request, "login.html", {"next": next_url, "username": "", "error": None})
    form = await request.form()
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")) or next_url)
    error: Text | None
    if not username.strip() or not password:
        error, status = N_("Enter your username and password."), 422
    else:
        result = await attempt_login(request, username, password)
        if result.user is not None:
            await log_in(request, result.user)
            return RedirectResponse(next_url, status_code=303)
        error, status = result.error, 429 if result.retry_after else 401
    response = pages.render(
        request, "login.html", {"next": next_url, "username": username, "error": error}, status_code=status
    )
    if status == 429:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


async def logout(request: Request) -> Response:
    await log_out(request)
    return RedirectResponse("/login", status_code=303)


async def sessions_page(request: Request) -> Response:
    """The person's live sessions and tokens: where and when, which one is this browser."""
    user = page_user(request)
    rows = await app_state(request).sessions.active(user)
    ended = request.query_params.get("ended", "")
    return app_state(request).pages.render(
        request, "accounts/sessions.html",
        {"sessions": rows, "current": request.state.session_id, "ended": whole_number(ended),
         "others": sum(1 for row in rows if row.id != request.state.session_id)},
    )


async def end_session(request: Request) -> Response:
    user = page_user(request)
    session_id = int(request.path_params["session_id"])
    ended = await app_state(request).sessions.end(
        session_id, user=user, reason="ended", ip=client_ip(request), audit_action="session_ended"
    )
    if session_id == request.state.session_id and ended:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(f"/account/sessions?ended={int(ended)}", status_code=303)


async def end_other_sessions(request: Request) -> Response:
    user = page_user(request)
    count = await app_state(request).sessions.end_all(
        user, reason="others", actor=user, ip=client_ip(request), keep=request.state.session_id
    )
    return RedirectResponse(f"/account/sessions?ended={count}", status_code=303)


async def set_language(request: Request) -> Response:
    form = await request.form()
    locale = str(form.get("locale", ""))
    response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
    if locale in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


PAGE_SIZE = 50


def _admin(request: Request) -> User:
    user = page_user(request)
    if not permissions.can_manage_users(user):
        raise Forbidden(N_("Only administrators manage accounts."))
    return user


async def users_page(request: Request) -> Response:
    _admin(request)
    q = request.query_params.get("q", "")[:100]
    role = request.query_params.get("role", "")
    if role not in [r.value for r in Role]:
        role = ""
    page = query_page(request)
    rows, total = await app_state(request).db.run(service.list_users, q=q, role=role, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return app_state(request).pages.render(
        request, "admin/users.html",
        {"rows": rows, "total": total, "q": q, "role": role, "roles": [r.value for r in Role], "page": page,
         "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)},
    )


def _form_values(form: Any) -> service.NewUser:
    return service.NewUser(
        username=str(form.get("username", "")),
        full_name=str(form.get("full_name", "")),
        email=str(form.get("email", "")),
        unit_code=str(form.get("unit", "")),
        role=str(form.get("role", "")),
        password=str(form.get("password", "")),
    )


async def new_user_page(request: Request) -> Response:
    actor = _admin(request)
    pages = app_state(request).pages
    context: dict[str, Any] = {"roles": service.PERSON_ROLES, "values": {}, "errors": {}, "created": None}
    if request.method == "GET":
        return pages.render(request, "admin/user_new.html", context)
    form = await request.form()
    values = _form_values(form)
    context["values"] = {**values.__dict__, "password": ""}
    try:
        user, password = await app_state(request).db.run(service.create_user, values, actor=actor, ip=client_ip(request))
    except InvalidInput as exc:
        context["errors"] = exc.fields
        return pages.render(request, "admin/user_new.html", context, status_code=422)
    context.update(created=user, password=password, values={})
    return pages.render(request, "admin/user_new.html", context, status_code=201)


async def import_users_page(request: Request) -> Response:
    actor = _admin(request)
    pages = app_state(request).pages
    if request.method == "GET":
        return pages.render(request, "admin/users_import.html", {"errors": [], "created": []})
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    await form.close()
    if not data:
        return pages.render(request, "admin/users_import.html", {"errors": [], "created": [], "missing": True}, status_code=422)
    try:
        created = await app_state(request).db.run(service.import_users, data, actor=actor, ip=client_ip(request))
    except ImportFailed as exc:
        return pages.render(request, "admin/users_import.html", {"errors": exc.errors, "created": []}, status_code=422)
    return pages.render(request, "admin/users_import.html", {"errors": [], "created": created})


def _detail(session: Session, username: str) -> dict[str, Any]:
    user = service.by_username(session, username)
    return {"user": user, "unit": service.unit_of(session, user)}


async def _user_context(request: Request, username: str) -> dict[str, Any]:
    """The account page's values: the person, their unit, how many sessions they have live."""
    context = await app_state(request).db.run(_detail, username)
    context["live_sessions"] = len(await app_state(request).sessions.active(context["user"]))
    ended = request.query_params.get("ended", "")
    context.update(password=None, error=None, sessions_ended=whole_number(ended))
    return context


async def user_page(request: Request) -> Response:
    _admin(request)
    context = await _user_context(request, request.path_params["username"])
    return app_state(request).pages.render(request, "admin/user.html", context)


def _reset(session: Session, username: str, actor: User, password: str, ip: str) -> tuple[dict[str, Any], str]:
    user = service.by_username(session, username)
    new_password = service.reset_password(session, user, actor=actor, password=password, ip=ip)
    return {"user": user, "unit": service.unit_of(session, user)}, new_password


async def reset_password(request: Request) -> Response:
    actor = _admin(request)
    form = await request.form()
    pages = app_state(request).pages
    try:
        context, password = await app_state(request).db.run(
            _reset, request.path_params["username"], actor, str(form.get("password", "")), client_ip(request)
        )
    except InvalidInput as exc:
        context = await _user_context(request, request.path_params["username"])
        context.update(error=exc.fields.get("password"))
        return pages.render(request, "admin/user.html", context, status_code=422)
    context.update(password=password, error=None, live_sessions=0, sessions_ended=None)
    return pages.render(request, "admin/user.html", context)


def _set_active(session: Session, username: str, active: bool, actor: User, ip: str) -> None:
    service.set_active(session, service.by_username(session, username), active, actor=actor, ip=ip)


async def set_active(request: Request) -> Response:
    actor = _admin(request)
    form = await request.form()
    active = form.get("active") == "1"
    username = request.path_params["username"]
    try:
        await app_state(request).db.run(_set_active, username, active, actor, client_ip(request))
    except Conflict as exc:
        context = await _user_context(request, username)
        context.update(error=exc.message)
        return app_state(request).pages.render(request, "admin/user.html", context, status_code=409)
    return RedirectResponse(f"/admin/users/{username}", status_code=303)


def _end_all(session: Session, username: str, actor: User, ip: str) -> int:
    return service.end_all_sessions(session, service.by_username(session, username), actor=actor, ip=ip)


async def end_user_sessions(request: Request) -> Response:
    """An administrator's "end all sessions": every browser and token of the person, at once."""
    actor = _admin(request)
    username = request.path_params["username"]
    count = await app_state(request).db.run(_end_all, username, actor, client_ip(request))
    return RedirectResponse(f"/admin/users/{username}?ended={count}", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/lang", set_language, methods=["POST"], name="set_language"),
    Route("/account/sessions", sessions_page, name="account_sessions"),
    Route("/account/sessions/end-others", end_other_sessions, methods=["POST"], name="account_sessions_end_others"),
    Route("/account/sessions/{session_id:int}/end", end_session, methods=["POST"], name="account_session_end"),
    Route("/admin/users", users_page, name="admin_users"),
    Route("/admin/users/new", new_user_page, methods=["GET", "POST"], name="admin_user_new"),
    Route("/admin/users/import", import_users_page, methods=["GET", "POST"], name="admin_users_import"),
    Route("/admin/users/{username}", user_page, name="admin_user"),
    Route("/admin/users/{username}/password", reset_password, methods=["POST"], name="admin_user_password"),
    Route("/admin/users/{username}/active", set_active, methods=["POST"], name="admin_user_active"),
    Route("/admin/users/{username}/sessions/end", end_user_sessions, methods=["POST"], name="admin_user_sessions_end"),
]
