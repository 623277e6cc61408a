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

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from server.api import ID_MAX, Param
from server.clock import TIME_SCHEMA, YEARS
from server.errors import InvalidInput, NotFound
from server.i18n import N_

ID = Param("id", "Meeting id", "integer", where="path", schema={"minimum": 0, "maximum": ID_MAX})
ORIGINAL = Param("original_start", "The occurrence's original start, ISO 8601 with offset", where="path", schema=TIME_SCHEMA)
PAGE_MAX = 1_000_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def digits_up_to(limit: int) -> str:
    """A regular expression for the decimal numbers 0 to ``limit`` (leading zeros allowed)."""
    digits = str(limit)
    width = len(digits)
    shorter = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    # Same width: equal to the limit up to position i, smaller at i, anything after.
    smaller = [digits[:i] + f"[0-{int(d) - 1}]" + (f"[0-9]{{{width - i - 1}}}" if i < width - 1 else "")
               for i, d in enumerate(digits) if d != "0"]
    return "0*(?:" + "|".join([*shorter, *smaller, digits]) + ")"


class IdConvertor(Convertor[int]):
    """``{name:int}`` in every route: a whole number a database column can hold. A larger one
    (2^63 and up) matches no route, so it is a 404 like any id that names nothing, instead of
    an overflow deep in the database driver."""

    regex = digits_up_to(ID_MAX)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        if not 0 <= value <= ID_MAX:
            raise ValueError(f"{value} is not an id")
        return str(value)


# Routes compile their paths when they are built: every route module imports this module (or
# server.auth, which does) first, and tests/server/test_input_edges.py checks no route was missed.
register_url_convertor("int", IdConvertor())


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
    if value.year not in YEARS:
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Give a time between the years 1900 and 8999.")})
    return value


def whole_number(raw: object) -> int | None:
    """An id or a version sent as text (a form field, a query), or None when it is none a
    column can hold. ASCII digits only: ``"²".isdigit()`` is true, and ``int("²")`` fails."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw.lstrip("0")) > len(str(ID_MAX)):
        return None  # (the length first: ``int()`` refuses past 4,300 digits)
    value = int(raw)
    return value if value <= ID_MAX else None


def query_page(request: Request, name: str = "page") -> int:
    """A page number from the query (1 when missing or not a number); never one whose offset
    overflows the database's whole numbers."""
    page = whole_number(request.query_params.get(name, "")) or 1
    return min(page, PAGE_MAX)


def path_int(request: Request, name: str = "id") -> int:
    """A whole number named in the path (a meeting id, a document id); one no row can have is
    a 404, as the route's convertor makes it for ``{name:int}``."""
    value = whole_number(str(request.path_params[name]))
    if value is None:
        raise NotFound(N_("This page does not exist."))
    return value


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
