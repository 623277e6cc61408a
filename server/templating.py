"""Jinja pages: autoescaped, ``StrictUndefined``, translated through the request's locale.

Templates display and never decide: views hand them every value and permission they show.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

from server.clock import moment_text
from server.i18n import Catalogues, Text, current_translations, render
from server.labels import label
from server.permissions import is_admin

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"

def _gettext(message: str) -> str:
    return current_translations.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return current_translations.get().ngettext(singular, plural, n)


def _text(value: Text | str) -> str:
    return render(value, current_translations.get())


def _pager_query(params: Any, page: int) -> str:
    """The current query string with ``page`` replaced (links of a paged list)."""
    from urllib.parse import urlencode

    pairs = [(k, v) for k, v in params.multi_items() if k != "page"]
    return urlencode([*pairs, ("page", str(page))])


_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> Markup:
    """``value`` as JSON that is safe inside any ``<script>`` element: ``<``, ``>`` and ``&`` are
    written as ``\\u003c`` … so no text (``</script>``, ``<!--<script>``) can end or re-open the
    element, and ``JSON.parse`` reads back exactly the same value. The one way pages embed data."""
    return Markup(json.dumps(value, ensure_ascii=False).translate(_SCRIPT_UNSAFE))


def make_environment(directory: Path = TEMPLATES_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_datetime"] = moment_text
    env.filters["text"] = _text
    env.filters["pager_query"] = _pager_query
    env.filters["label"] = lambda value, group: _text(label(value, group))
    env.filters["script_json"] = script_json
    return env


def csrf_token(connection: HTTPConnection) -> str:
    """The session's CSRF token, created on first use."""
    if "session" not in connection.scope:
        return ""
    token = connection.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        connection.session["csrf"] = token
    return token


class Pages:
    """Renders pages with the values every page needs (user, unit, locale, CSRF token)."""

    def __init__(self, catalogues: Catalogues, directory: Path = TEMPLATES_DIR) -> None:
        self.env = make_environment(directory)
        self.catalogues = catalogues

    def render(self, request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
        values: dict[str, Any] = {
            "request": request,
            "current_user": getattr(request.state, "user", None),
            "current_unit": getattr(request.state, "unit", None),
            "locale": getattr(request.state, "locale", "vi"),
            "csrf_token": csrf_token(request),
            "nav": {"admin": is_admin(getattr(request.state, "user", None))},
        }
        values.update(context or {})
        html = self.env.get_template(name).render(values)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
