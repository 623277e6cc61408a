"""The web edge: what every view shares, in one place.

A view parses a request, asks a service and answers; what it reads from the request (the
client's address, a time or an id in the path, which occurrence a page names) and what it
writes back besides pages and JSON (occurrence addresses, CSV downloads) is written here once.
Views of one domain never import another domain's views; they import this module.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from server.api import Param
from server.errors import InvalidInput
from server.i18n import N_

ID = Param("id", "Meeting id", "integer", where="path")
ORIGINAL = Param("original_start", "The occurrence's original start, ISO 8601 with offset", where="path")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def client_ip(connection: HTTPConnection) -> str:
    """The address the request came from (what the audit log and the login throttle record)."""
    return connection.client.host if connection.client else ""


def parse_time(raw: str | None, name: str) -> dt.datetime:
    """An ISO 8601 time from a query or path (a '+' that a URL turned into a space is restored)."""
    if not raw:
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Required.")})
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Give an ISO 8601 time with its offset.")}) from None
    if value.tzinfo is None:
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Give an ISO 8601 time with its offset.")})
    return value


def path_int(request: Request, name: str = "id") -> int:
    """A whole number named in the path (a meeting id, a document id)."""
    raw = str(request.path_params[name])
    if not raw.isdigit():
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Must be a whole number.")})
    return int(raw)


def occurrence_in(request: Request) -> tuple[int, dt.datetime]:
    """The meeting id and occurrence (original start) an occurrence's path names."""
    return path_int(request), parse_time(request.path_params["original_start"], "original_start")


def original_key(original_start: dt.datetime) -> str:
    """An occurrence's name in addresses: its original start in UTC, ISO 8601."""
    return original_start.astimezone(dt.UTC).isoformat()


def occurrence_path(meeting_id: int, original_start: dt.datetime, page: str = "") -> str:
    """``/meetings/{id}/occurrences/{original start}[/page]``, the ``+`` of the offset escaped."""
    path = f"/meetings/{meeting_id}/occurrences/{quote(original_key(original_start), safe=':')}"
    return f"{path}/{page}" if page else path


def csv_cell(value: str) -> str:
    """A cell Excel will not read as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def csv_bytes(rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a BOM (so that Excel shows Vietnamese names correctly), CRLF line ends."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_download(rows: Iterable[Sequence[str]], filename: str) -> Response:
    """A CSV file to save (``filename`` is ASCII: the exports name themselves without diacritics)."""
    return Response(csv_bytes(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})
