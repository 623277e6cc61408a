"""Reading CSV uploads and files: UTF-8 (with or without BOM), NFC, line numbers kept.

Every import validates every row first and raises :class:`ImportFailed` with all errors, each
naming its line, so that nothing is written when any row is bad.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidInput
from server.i18n import N_, Text, Translations, render
from server.text import nfc

MAX_ROWS = 20_000


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: Text

    def render(self, translations: Translations) -> str:
        return render(N_("line {line}", line=self.line), translations) + (
            f" ({self.column})" if self.column else ""
        ) + ": " + render(self.message, translations)


class ImportFailed(InvalidInput):
    """Some rows are bad; nothing was written."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(
            N_("The file has errors ({count}); nothing was changed.", count=len(errors)),
            fields={f"line {e.line}" + (f" ({e.column})" if e.column else ""): e.message for e in errors},
        )
        self.errors = list(errors)

    def as_json(self, translations: Translations) -> dict[str, Any]:
        body = super().as_json(translations)
        body["error"]["rows"] = [
            {"line": e.line, "column": e.column, "message": render(e.message, translations)} for e in self.errors
        ]
        return body


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


def read_rows(data: bytes, required: Sequence[str], optional: Sequence[str] = ()) -> list[Row]:
    """Parse ``data`` as CSV with a header naming at least ``required`` columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed([RowError(_line_of(data, exc.start), "", N_("The file is not UTF-8 text."))]) from None
    if "\x00" in text:
        raise ImportFailed([RowError(1, "", N_("The file is not a text CSV file."))])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed([RowError(1, "", N_("The file is empty."))]) from None
    except csv.Error as exc:
        raise ImportFailed([RowError(1, "", N_("Malformed CSV: {detail}", detail=str(exc)))]) from None
    header = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join([*required, *optional])
        raise ImportFailed(
            [RowError(1, "", N_("The header must name the columns {expected}.", expected=expected))]
        )
    rows: list[Row] = []
    errors: list[RowError] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFailed([RowError(line, "", N_("Too many rows (at most {max}).", max=MAX_ROWS))])
            if len(fields) != len(header):
                errors.append(
                    RowError(line, "", N_("Expected {expected} values, found {found}.", expected=len(header), found=len(fields)))
                )
                continue
            rows.append(Row(line, {name: nfc(value) for name, value in zip(header, fields, strict=True)}))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "", N_("Malformed CSV: {detail}", detail=str(exc))))
    if errors:
        raise ImportFailed(errors)
    return rows


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1
