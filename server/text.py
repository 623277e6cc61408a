"""Text rules: everything stored is Unicode NFC; search compares a folded form.

Folding drops diacritics and case with Unidecode, because removing combining marks after NFD
does not turn ``đ`` into ``d``: "co do" must find "Cờ Đỏ".
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

_SPACES = re.compile(r"\s+")


def nfc(value: str) -> str:
    """NFC with surrounding whitespace removed and inner runs of whitespace collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def fold(value: str) -> str:
    """The search key of ``value``: ASCII, lower case, single spaces."""
    return _SPACES.sub(" ", unidecode(unicodedata.normalize("NFC", value))).strip().lower()
