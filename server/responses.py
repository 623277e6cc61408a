"""One place that turns errors into responses: JSON for the API, Vietnamese pages otherwise."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from server.appstate import app_state
from server.errors import DomainError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from server.i18n import LANG_COOKIE, LOCALES, N_, current_translations

log = logging.getLogger("giaoban")


class LoginRequired(Exception):
    """A page needs a logged-in user: send the browser to the login page."""


def wants_json(scope: Scope) -> bool:
    connection = HTTPConnection(scope)
    if connection.url.path.startswith("/api/"):
        return True
    accept = connection.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(scope: Scope, exc: DomainError) -> Response:
    headers = {"Cache-Control": "no-store"}
    if (retry := exc.extra.get("retry_after")) is not None:
        headers["Retry-After"] = str(retry)
    translations = current_translations.get()
    if wants_json(scope):
        return JSONResponse(exc.as_json(translations), status_code=exc.status, headers=headers)
    request = Request(scope)
    pages = app_state(request).pages
    response = pages.render(
        request,
        "error.html",
        {"status": exc.status, "error": exc.as_json(translations)["error"]},
        status_code=exc.status,
    )
    response.headers.update(headers)
    return response


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(request.scope, exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: DomainError
    if exc.status_code == 404:
        error = NotFound(N_("This page does not exist."))
    elif exc.status_code == 405:
        error = DomainError(N_("This method is not allowed here."))
        error.status, error.code = 405, "method_not_allowed"
    elif exc.status_code == 413:
        error = PayloadTooLarge(N_("The request is too large."))
    elif exc.status_code == 403:
        error = Forbidden(N_("You may not do this."))
    elif exc.status_code == 400:  # Starlette's form parser: a malformed multipart body, too many parts
        error = InvalidInput(N_("The request body could not be read."))
    else:
        error = DomainError(str(exc.detail))
        error.status = exc.status_code
    response = error_response(request.scope, error)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request.scope))
    return response


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route takes at this path (RFC 9110 §15.5.6). Starlette's own ``Allow``
    names only the first route that matched the path, and one path often has a route per method."""
    methods: set[str] = set()
    for route in scope["app"].router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def login_required_handler(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = DomainError(N_("Something went wrong on our side. Nothing was changed; please try again."))
    error.status, error.code = 500, "internal"
    # This handler runs outside the request-context middleware, whose locale is gone by now.
    state = app_state(request)
    locale = request.cookies.get(LANG_COOKIE, "")
    reset = current_translations.set(state.catalogues.get(locale if locale in LOCALES else state.settings.default_locale))
    try:
        return error_response(request.scope, error)
    except Exception:  # the error page itself failed: answer plainly
        log.exception("the error page failed")
        return Response("500 Internal Server Error", status_code=500)
    finally:
        current_translations.reset(reset)


def exception_handlers() -> dict[Any, Any]:
    return {
        DomainError: domain_error_handler,
        HTTPException: http_error_handler,
        LoginRequired: login_required_handler,
        Exception: server_error_handler,
    }
