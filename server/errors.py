"""Domain errors raised by services, mapped to HTTP (JSON and HTML) in ``server.responses``.

The codes and statuses follow the contract in DESIGN.md: 422 invalid input, 401 not logged
in, 403 a visible resource you may not change, 404 missing or not visible, 409 conflict.
Messages are :class:`server.i18n.Text` so that they reach each reader in their language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.i18n import Text, Translations, render


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: Text | str, *, fields: Mapping[str, Text | str] | None = None, **extra: Any
    ) -> None:
        super().__init__(str(message))
        self.message = message
        self.fields = dict(fields or {})
        self.extra = extra

    def as_json(self, translations: Translations) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": render(self.message, translations),
            "fields": {k: render(v, translations) for k, v in self.fields.items()},
        }
        body.update(self.extra)
        return {"error": body}


class InvalidInput(DomainError):
    status = 422
    code = "invalid"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"


class PayloadTooLarge(DomainError):
    status = 413
    code = "too_large"
