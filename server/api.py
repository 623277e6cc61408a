"""The JSON API's plumbing: described routes, body parsing, list answers.

Each ``/api/`` route is made with :func:`api_route`, which keeps the description that
``server.openapi`` turns into ``/api/openapi.json``; a test checks no route is left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.errors import InvalidInput
from server.i18n import N_, Text

M = TypeVar("M", bound=BaseModel)
ID_MAX = 2**31 - 1  # the largest whole number every id and number column holds (INTEGER: 32 bits in PostgreSQL)


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    type: str = "string"
    where: str = "query"
    required: bool = False
    schema: Mapping[str, Any] = field(default_factory=dict)  # more of its JSON Schema (bounds, format)


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    params: Sequence[Param] = ()
    errors: Sequence[int] = ()
    auth: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def api_route(path: str, endpoint: Callable[..., Any], *, methods: Sequence[str], doc: ApiDoc, name: str | None = None) -> Route:
    route = Route(path, endpoint, methods=list(methods), name=name)
    route.api_doc = doc  # type: ignore[attr-defined]
    return route


def api_doc(route: Any) -> ApiDoc | None:
    return getattr(route, "api_doc", None)


async def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``, or a 422 naming each bad field."""
    raw = await request.body()
    if "application/json" not in request.headers.get("content-type", ""):
        raise InvalidInput(N_("Send the body as JSON (Content-Type: application/json)."))
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise InvalidInput(N_("The body is not valid JSON.")) from None
    if (problem := unstorable(data)) is not None:
        raise InvalidInput(problem)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(N_("Some fields are invalid."), fields=validation_fields(exc)) from None
    except RecursionError:
        raise InvalidInput(N_("The body is not valid JSON.")) from None


def unstorable(data: Any) -> Text | None:
    """What in ``data`` no database column takes, or None: text with NUL (PostgreSQL refuses
    it) or an unpaired surrogate (which JSON's ``\\ud800`` escapes can carry), or a whole
    number no column holds (past ``ID_MAX``). Walked without recursion: how deep the JSON nests is no limit here."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value or (not value.isascii() and _has_surrogate(value)):
                return N_("The body holds text that cannot be stored (a NUL character or an unpaired surrogate).")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -ID_MAX - 1 <= value <= ID_MAX:
                return N_("A number in the body is too large.")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validation_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "body"
        fields.setdefault(key, error["msg"])
    return fields


def json_list(items: Sequence[Any], total: int) -> JSONResponse:
    return JSONResponse({"items": list(items), "total": total})


def query_int(request: Request, name: str, default: int, *, minimum: int = 0, maximum: int = 10_000) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Must be a whole number.")}) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(
            N_("Some fields are invalid."),
            fields={name: N_("Must be between {minimum} and {maximum}.", minimum=minimum, maximum=maximum)},
        )
    return value
