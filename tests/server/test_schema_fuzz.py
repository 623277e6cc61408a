"""The JSON API against its own description: schemathesis generates requests from
``/api/openapi.json`` (valid ones and broken ones) and sends them to the service on 127.0.0.1,
as a secretary with a bearer token and as nobody. No answer may be a 5xx or contradict the
description (status, content type, body schema, headers, ``Allow`` on 405...).

Bounded: a fixed number of examples per operation and a derandomised seed, so a run is the
same run every time and takes well under a minute and a half on two cores.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from server.app import all_routes, app_version
from server.openapi import build_spec
from tests.support.live import Live, live  # noqa: F401 (the fixture)
from tests.support.web import DEMO_PASSWORD

EXAMPLES = 12


@pytest.fixture(scope="module")
def planned(live: Live) -> dict[str, Any]:  # noqa: F811
    """A meeting with id 1 and one occurrence, so that generated ids (0, 1, ...) reach real rows."""
    return live.meeting(units=["ct"], starts_in=24 * 60)


# The description the app serves, built as create_app builds it (test_the_served_description_is_this_one
# checks they are the same), so that the operations are known when pytest collects the tests.
SPEC = build_spec(all_routes(), app_version())
# All of schemathesis 4's checks are on: not_a_server_error, status_code_conformance,
# content_type_conformance, response_headers_conformance, response_schema_conformance,
# negative_data_rejection, positive_data_acceptance, missing_required_header, unsupported_method,
# allow_header_conformance, ignored_auth (use_after_free, ensure_resource_availability and
# object_level_authorization look at sequences of calls, which only `st run`'s stateful phase
# makes; tests/security covers who may do what). Two settings differ from their defaults: a body over the
# size limit is refused with 413 before it is read, which is a rejection too; and a request the
# schema allows may still break a rule no JSON Schema states (an end before the start, a unit code
# that names no unit, text with NUL, which PostgreSQL cannot store): a 422, never a 5xx.
CONFIG = SchemathesisConfig.from_dict({"checks": {
    "negative_data_rejection": {
        "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]},
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]},
}})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_as_a_secretary(case: Any, live: Live, planned: dict[str, Any]) -> None:  # noqa: F811
    # A logout revokes the token it is sent with: those get a token of their own.
    revokes = case.method == "DELETE" and case.path.startswith("/api/auth/")
    token = _login(live) if revokes else live.token("thuky")
    case.call_and_validate(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"})


@schema.parametrize()
@FUZZ
def test_as_nobody(case: Any, live: Live) -> None:  # noqa: F811
    case.call_and_validate(base_url=live.base_url)


def _login(live: Live) -> str:  # noqa: F811
    response = httpx.post(f"{live.base_url}/api/auth/token", json={"username": "thuky", "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_the_served_description_is_this_one(live: Live) -> None:  # noqa: F811
    assert httpx.get(f"{live.base_url}/api/openapi.json").json() == SPEC
