"""The pages around the room: the meeting page leads to it, a closed room says when it opens,
and the connection test sends a ward's media through the SFU and back."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.support.live import Live
from tests.support.media_clips import BRIGHTNESS, Clips
from tests.support.rtc_client import RoomClient
from tests.support.web import Browser

PEOPLE = ["thuky.ninhkieu", "canbo.tanan"]


def test_the_meeting_page_leads_to_its_room(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {live.token('canbo.tanan')}"}) as http:
        page = http.get(f"/meetings/{meeting['id']}")
    assert f'href="/meetings/{meeting["id"]}/room"' in page.text


def test_a_room_that_is_not_open_says_when_it_opens(browser: Browser) -> None:
    from tests.support.meetings import plan
    from tests.support.web import api_token

    secretary = api_token(browser, "thuky")
    meeting = browser.post("/api/meetings", json=plan(participants={"units": [], "levels": [], "users": ["canbo.tanan"]}), headers=secretary).json()
    browser.login("canbo.tanan")
    page = browser.get(f"/meetings/{meeting['id']}/room")
    assert page.status_code == 200
    # one date format everywhere: the day, then the 24-hour time (server/clock.py)
    assert re.search(r"Phòng họp mở lúc \d\d/\d\d/\d{4} 07:00\.", page.text) and "60 phút" in page.text
    assert 'href="/connection-test"' in page.text


def test_a_room_page_asks_for_a_login_or_a_link(browser: Browser) -> None:
    response = browser.get("/meetings/1/room", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]


def test_the_connection_test_sends_my_media_back_to_me(live: Live, clips: Clips) -> None:
    async def scenario() -> None:
        client = RoomClient(live.ws_url, 0, token=live.token("ct.ninh-kieu.tan-an"), clips=clips)
        client.url = live.ws_url + "/ws/echo"
        async with client:
            welcome = await client.join()
            assert welcome["meeting"] is None
            await client.publish("dark", audio="loud")
            await client.subscribe()
            main = client.slot_stats("main")
            await client.wait_for(lambda: main.frames >= 10, 15, "my own video back")
            assert main.near_luma(BRIGHTNESS["dark"]) and client.source("main") == client.participant_id
            await client.wait_for(lambda: client.source("audio1") == client.participant_id, 10, "my own voice back")
            await client.send({"type": "chat", "text": "hello"})
            assert (await client.recv("error", 5))["code"] == "invalid"

    asyncio.run(scenario())
