"""``/api/openapi.json``: OpenAPI 3.1 built from the descriptions kept on the API routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server.api import api_doc
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
    403: "Visible, but you may not change it",
    404: "Missing, or not visible to you",
    409: "Conflict or stale version",
    413: "Request body too large",
    422: "Invalid input",
    429: "Too many attempts",
}


def build_spec(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route in routes:
        doc = api_doc(route)
        if doc is None or not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": doc.summary,
                "tags": [doc.tag],
                "operationId": f"{(route.name or route.path)}_{method.lower()}",
                "parameters": [
                    {"name": p.name, "in": p.where, "required": p.required or p.where == "path", "description": p.description, "schema": {"type": p.type}}
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
            codes = set(doc.errors) | ({401} if doc.auth else set()) | ({422, 413} if doc.body else set())
            for code in sorted(codes):
                operation["responses"][str(code)] = {
                    "description": ERROR_TEXT.get(code, "Error"),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            if not doc.auth:
                operation["security"] = []
            operation.update(doc.extra)
            paths.setdefault(route.path, {})[method.lower()] = operation
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
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


async def openapi_view(request: Request) -> JSONResponse:
    return JSONResponse(app_state(request).openapi)
