"""The permission rules: a secretary acts for their own unit and every unit below it."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from server import permissions
from server.accounts import service as accounts
from server.units import service as units
from tests.support.web import Browser


@pytest.mark.parametrize(
    ("username", "unit", "allowed"),
    [
        ("thuky", "ct", True),
        ("thuky", "ct.ninh-kieu", True),
        ("thuky", "ct.ninh-kieu.tan-an", True),
        ("thuky", "ct.so-yt", True),
        ("thuky.ninhkieu", "ct.ninh-kieu", True),
        ("thuky.ninhkieu", "ct.ninh-kieu.tan-an", True),
        ("thuky.ninhkieu", "ct", False),
        ("thuky.ninhkieu", "ct.cai-rang", False),
        ("thuky.ninhkieu", "ct.cai-rang.le-binh", False),
        ("lanhdao", "ct", False),  # an official, not a secretary
        ("ct.ninh-kieu.tan-an", "ct.ninh-kieu.tan-an", False),  # an endpoint
        ("admin", "ct.co-do", True),
    ],
)
def test_who_acts_for_which_unit(app: Starlette, username: str, unit: str, allowed: bool) -> None:
    with app.state.giaoban.db.session() as session:
        user = accounts.by_username(session, username)
        assert permissions.can_act_for_unit(session, user, units.by_code(session, unit)) is allowed


def test_a_disabled_secretary_acts_for_nobody(app: Starlette) -> None:
    with app.state.giaoban.db.session() as session:
        user = accounts.by_username(session, "thuky")
        user.active = False
        assert not permissions.can_act_for_unit(session, user, units.by_code(session, "ct"))


def test_a_district_secretary_sees_the_accounts_of_their_wards_but_not_others(browser: Browser) -> None:
    browser.login("thuky.ninhkieu")
    own = browser.get("/units/ct.ninh-kieu.tan-an")
    assert "canbo.tanan" in own.text and "<h2>Tài khoản (" in own.text
    other = browser.get("/units/ct.cai-rang")
    assert other.status_code == 200 and "<h2>Tài khoản (" not in other.text
