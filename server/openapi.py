"""``/api/openapi.json``: OpenAPI 3.1 built from the descriptions kept on the API routes."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server.api import ID_MAX, ApiDoc, api_doc
from server.appstate import app_state

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}
ERROR_TEXT = {
    401: "Not logged in, or the token is invalid or expired",
    403: "Visible, but you may not change it; or a session without its CSRF token",
    404: "Missing, or not visible to you (an id that names nothing, too)",
    409: "Conflict or stale version",
    413: "Request body too large",
    422: "Invalid input",
    429: "Too many attempts",
}


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def error_codes(doc: ApiDoc, method: str) -> set[int]:
    """Every error status an operation can answer, whatever its own description lists: 401
    without credentials; 403 for an unsafe method (the CSRF check of a session or a form);
    404 when the path names something (an id that names nothing matches no route); 413 and
    422 when it reads a body; 422 when it reads parameters."""
    codes = set(doc.errors)
    if doc.auth:
        codes.add(401)
    if method not in SAFE_METHODS:
        codes.add(403)
    if any(p.where == "path" for p in doc.params):
        codes.add(404)
    if doc.body is not None:
        codes |= {413, 422}
    if doc.params:
        codes.add(422)
    return codes


def build_spec(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route in routes:
        doc = api_doc(route)
        if doc is None or not isinstance(route, Route):
            continue
        path = CONVERTOR.sub(r"{\1}", route.path)  # /api/meetings/{id:int} is /api/meetings/{id}
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": doc.summary,
                "tags": [doc.tag],
                "operationId": f"{(route.name or route.path)}_{method.lower()}",
                "parameters": [
                    {"name": p.name, "in": p.where, "required": p.required or p.where == "path", "description": p.description,
                     "schema": {"type": p.type, **p.schema}}
                    for p in doc.params
                ],
                "responses": {},
            }
            if doc.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(doc.body, schemas)}},
                }
            ok: dict[str, Any] = {"description": "Success"}
            if doc.response is not None:
                ok["content"] = {"application/json": {"schema": _ref(doc.response, schemas)}}
            operation["responses"][str(doc.status)] = ok
            for code in sorted(error_codes(doc, method)):
                operation["responses"][str(code)] = {
                    "description": ERROR_TEXT.get(code, "Error"),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            if not doc.auth:
                operation["security"] = []
            operation.update(doc.extra)
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Giao Ban API", "version": version, "description": "JSON API of Giao Ban. Errors: {\"error\": {\"code\", \"message\", \"fields\"}}."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "From POST /api/auth/token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "giaoban_session", "description": "Browser session; unsafe methods also need the X-CSRF-Token header"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _ref(model: Any, schemas: dict[str, Any]) -> dict[str, str]:
    schema = _bounded(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


async def openapi_view(request: Request) -> JSONResponse:
    return JSONResponse(app_state(request).openapi)


def _bounded(schema: Any) -> Any:
    """Every whole number a body carries is within ``ID_MAX`` (``server.api.parse_body`` refuses
    larger ones: no column holds them), and the description says so."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            schema.setdefault("minimum", -ID_MAX - 1)
            schema.setdefault("maximum", ID_MAX)
        for value in schema.values():
            _bounded(value)
    elif isinstance(schema, list):
        for value in schema:
            _bounded(value)
    return schema
