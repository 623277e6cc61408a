"""Mozilla's ical.js (Thunderbird's iCalendar parser) as an independent reader of what Giao Ban
writes: the icalendar package reading its own output proves little.

``tests/support/icaljs/`` pins ical.js in a ``package-lock.json``; the ``icaljs`` fixture
installs it with ``npm ci`` the first time a session needs it (``make test`` installs node and
npm and runs the same ``npm ci``). Without node or npm the tests fail, never skip: a calendar
check that quietly did not run would look like a passing one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ICALJS_DIR = Path(__file__).resolve().parent / "icaljs"
PARSER = ICALJS_DIR / "parse.cjs"
INSTALLED = ICALJS_DIR / "node_modules" / "ical.js" / "package.json"
_install_lock = threading.Lock()


class IcaljsUnavailable(RuntimeError):
    pass


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise IcaljsUnavailable(
            f"`{name}` is not installed, and the calendar tests read every object with Mozilla's ical.js too. "
            "Run `make test` (it installs nodejs and npm), or `apt-get install -y nodejs npm` and then "
            f"`npm ci --no-audit --no-fund` in {ICALJS_DIR}."
        )
    return found


def ensure_icaljs() -> None:
    """Install the pinned ical.js into ``tests/support/icaljs/node_modules`` if it is missing."""
    with _install_lock:
        if INSTALLED.exists():
            return
        npm = _tool("npm")
        _tool("node")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=ICALJS_DIR, capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0 or not INSTALLED.exists():
            raise IcaljsUnavailable(f"`npm ci` in {ICALJS_DIR} failed:\n{result.stdout}\n{result.stderr}")


def parse_with_icaljs(data: bytes, occurrences: int = 20) -> dict[str, Any]:
    """What ical.js reads in ``data``: method, calendar properties, time zones, each VEVENT
    (times as UTC ISO with their zone, attendees with their parameters) and the first
    ``occurrences`` starts of each series, expanded by ical.js itself (see parse.cjs)."""
    ensure_icaljs()
    result = subprocess.run(
        [_tool("node"), str(PARSER), str(occurrences)], input=data, capture_output=True, timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"ical.js could not read the object:\n{result.stderr.decode(errors='replace')}")
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="session")
def icaljs() -> Callable[[bytes], dict[str, Any]]:
    """``parse_with_icaljs``, after making sure ical.js is installed (once per session)."""
    try:
        ensure_icaljs()
    except IcaljsUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return parse_with_icaljs
