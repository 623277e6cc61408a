"""Signalling through a real server: who may join and when, and every kind of bad input getting
its error code (and a close code where that is right) without touching anyone else."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from sqlmodel import select

from server.meetings.models import MeetingParticipant
from tests.support.live import Live
from tests.support.media_clips import BRIGHTNESS, Clips
from tests.support.rtc_client import RoomClient
from tests.support.web import DEMO_PASSWORD

PEOPLE = ["thuky.ninhkieu", "canbo.tanan"]
WARD = "ct.ninh-kieu.tan-an"


def client(live: Live, meeting: dict[str, Any], username: str | None = "canbo.tanan", **options: Any) -> RoomClient:
    return RoomClient(live.ws_url, meeting["id"], token=live.token(username) if username else None, **options)


async def refused(c: RoomClient) -> tuple[dict[str, Any], int | None]:
    """Connect and return the error the server sends, and its close code."""
    await c.connect()
    try:
        error = await c.recv("error", 5)
        return error, await c.wait_closed(5)
    finally:
        await c.close()


def login_cookie(live: Live, username: str) -> str:
    with httpx.Client(base_url=live.base_url) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token
        http.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)})
        return f"giaoban_session={http.cookies['giaoban_session']}"


def test_joins_are_refused_with_a_reason_and_a_close_code(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)
    later = live.meeting(users=PEOPLE, starts_in=3 * 60)

    async def scenario() -> None:
        error, code = await refused(client(live, meeting, None))
        assert (error["code"], code) == ("not_authenticated", 4401)
        bad_token = RoomClient(live.ws_url, meeting["id"], token="not-a-token")
        error, code = await refused(bad_token)
        assert (error["code"], code) == ("not_authenticated", 4401)
        not_invited = live.meeting(users=["thuky.ninhkieu"])
        error, code = await refused(client(live, not_invited, "canbo.tanan"))
        assert (error["code"], code) == ("forbidden", 4403)
        assert error["message"] == "Bạn không được mời tham dự cuộc họp này."
        error, code = await refused(client(live, later))
        assert (error["code"], code) == ("not_open", 4409)
        assert "opens_at" in error["fields"] and error["message"].startswith("Phòng họp mở lúc")
        error, code = await refused(RoomClient(live.ws_url, 999999, token=live.token("canbo.tanan")))
        assert (error["code"], code) == ("not_found", 4404)
        error, code = await refused(client(live, meeting, occurrence="yesterday"))
        assert (error["code"], code) == ("invalid", 4400)

    asyncio.run(scenario())


def test_the_room_opens_an_hour_before_the_start_and_closes_after_the_end(live: Live) -> None:
    soon = live.meeting(users=PEOPLE, starts_in=55)
    over = live.meeting(users=PEOPLE, starts_in=-150, minutes=20)

    async def scenario() -> None:
        async with client(live, soon) as c:
            assert (await c.join())["meeting"]["id"] == soon["id"]
        error, code = await refused(client(live, over))
        assert (error["code"], code) == ("not_open", 4409) and error["message"].startswith("Phòng họp đã đóng lúc")

    asyncio.run(scenario())


def test_a_unit_endpoint_joins_for_its_invited_unit_and_gets_the_room_kind(live: Live) -> None:
    meeting = live.meeting(units=[WARD])

    async def scenario() -> None:
        async with client(live, meeting, WARD) as c:
            welcome = await c.join()
            assert welcome["you"]["kind"] == "room" and welcome["you"]["unit"]["code"] == WARD
            assert welcome["protocol"] == 1 and welcome["heartbeat"] == 3 and welcome["ice_servers"] == []

    asyncio.run(scenario())


def test_a_cookie_joins_only_from_our_own_origin(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)
    cookie = login_cookie(live, "canbo.tanan")

    async def scenario() -> None:
        error, code = await refused(RoomClient(live.ws_url, meeting["id"], cookie=cookie, origin="https://evil.example"))
        assert (error["code"], code) == ("not_authenticated", 4401)
        error, code = await refused(RoomClient(live.ws_url, meeting["id"], cookie=cookie))  # no Origin at all
        assert (error["code"], code) == ("not_authenticated", 4401)
        async with RoomClient(live.ws_url, meeting["id"], cookie=cookie, origin=live.base_url) as c:
            assert (await c.join())["you"]["name"]

    asyncio.run(scenario())


def test_a_signed_join_link_stands_for_its_participant(live: Live) -> None:
    meeting = live.meeting(units=[WARD])
    other = live.meeting(units=[WARD])
    db = live.app.state.giaoban.db
    with db.session() as session:
        row = session.exec(select(MeetingParticipant).where(
            MeetingParticipant.meeting_id == meeting["id"], MeetingParticipant.code == WARD)).one()
        participant_id = row.id
    links = live.app.state.giaoban.join_links
    token = links.issue(meeting["id"], participant_id)

    async def scenario() -> None:
        async with RoomClient(live.ws_url, meeting["id"], invite=token) as c:
            await c.send({"type": "join", "protocol": 1})
            waiting = await c.recv("lobby_wait", 5)  # a link's holder is a guest: the lobby first
            assert waiting["reason"] == "guest" and waiting["meeting"]["id"] == meeting["id"]
        error, code = await refused(RoomClient(live.ws_url, other["id"], invite=token))
        assert (error["code"], code) == ("forbidden", 4403)
        error, code = await refused(RoomClient(live.ws_url, meeting["id"], invite=token[:-3] + "xyz"))
        assert (error["code"], code) == ("not_authenticated", 4401)

    asyncio.run(scenario())


def test_bad_messages_get_their_error_and_the_connection_goes_on(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def expect(c: RoomClient, raw: str | bytes, code: str) -> dict[str, Any]:
        await c.send_raw(raw)
        error = await c.recv("error", 5)
        assert error["code"] == code, error
        return error

    async def scenario() -> None:
        async with client(live, meeting) as c:
            await expect(c, json.dumps({"type": "ping"}), "not_joined")
            await c.join()
            await expect(c, "{not json", "bad_json")
            await expect(c, "[1, 2]", "bad_json")
            await expect(c, b"\x00\x01", "bad_json")
            await expect(c, json.dumps({"type": "dance"}), "unknown_type")
            error = await expect(c, json.dumps({"type": "join", "protocol": 1}), "already_joined")
            assert error["ref"] == "join"
            error = await expect(c, json.dumps({"type": "chat", "text": "   "}), "invalid")
            assert set(error["fields"]) == {"text"}
            error = await expect(c, json.dumps({"type": "chat", "text": "x" * 2001}), "invalid")
            assert error["fields"]["text"] == "Quá dài."
            error = await expect(c, json.dumps({"type": "update", "muted": "yes", "volume": 3}), "invalid")
            assert set(error["fields"]) == {"muted", "volume"}
            error = await expect(c, json.dumps({"type": "publish", "stream": "camera", "sdp": "v=0 nothing", "tracks": {"0": "hologram"}}), "invalid")
            assert "tracks.0" in error["fields"]
            await expect(c, json.dumps({"type": "subscribe_answer", "sdp": "v=0\r\n" + "a=x\r\n" * 3}), "invalid")
            await c.send({"type": "ping"})
            assert (await c.recv("pong", 5))["type"] == "pong"

    asyncio.run(scenario())


def test_oversized_messages_and_floods_close_only_the_offender(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with client(live, meeting, "thuky.ninhkieu") as bystander, client(live, meeting) as big, client(live, meeting, "lanhdao") as flood:
            for c in (bystander, big, flood):
                await c.join()
            await big.send_raw(json.dumps({"type": "chat", "text": "x" * (70 * 1024)}))
            assert (await big.recv("error", 5))["code"] == "too_large"
            assert await big.wait_closed(5) == 1009
            for _ in range(200):
                try:
                    await flood.send({"type": "ping"})
                except Exception:
                    break
            assert await flood.wait_closed(5) == 4429
            codes = [m["code"] for m in flood.history if m.get("type") == "error"]
            assert "rate_limited" in codes
            # The bystander saw both leave and still talks to the server.
            left = {(await bystander.recv("participant_left", 5))["participant_id"] for _ in range(2)}
            assert left == {big.participant_id, flood.participant_id}
            await bystander.send({"type": "chat", "text": "<b>Xin chào</b> các đồng chí"})
            chat = await bystander.recv("chat", 5)
            assert chat["text"] == "<b>Xin chào</b> các đồng chí" and chat["from"] == bystander.participant_id

    asyncio.run(scenario())


def test_a_silent_connection_is_closed_after_three_heartbeats(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with client(live, meeting, auto_ping=False) as c:
            await c.join()
            assert (await c.recv("error", 15))["code"] == "timeout"
            assert await c.wait_closed(5) == 4408

    asyncio.run(scenario())


def test_state_changes_and_chat_reach_everyone_and_a_second_window_replaces_the_first(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with client(live, meeting, "thuky.ninhkieu") as a, client(live, meeting) as b:
            await a.join()
            welcome = await b.join()
            assert [p["id"] for p in welcome["participants"]] == [a.participant_id]
            joined = await a.recv("participant_joined", 5)
            assert joined["participant"]["id"] == b.participant_id and joined["participant"]["unit"]
            await b.send({"type": "update", "muted": True, "hand": True})
            updated = await a.recv("participant_updated", 5)
            assert updated["participant"]["muted"] is True and updated["participant"]["hand"] is True
            async with client(live, meeting) as again:
                await again.join()
                assert (await b.recv("error", 5))["code"] == "replaced"
                assert await b.wait_closed(5) == 4000
                assert (await a.recv("participant_left", 5))["participant_id"] == b.participant_id

    asyncio.run(scenario())


def test_hostile_sdp_is_refused_and_the_others_media_goes_on(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)
    hostile = [
        "v=0\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" * 400,  # hundreds of media sections
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n",  # no ICE, no DTLS
        "v=0\r\n\x00\x01\x02" + "\xff" * 100,
    ]

    async def scenario() -> None:
        async with client(live, meeting, "lanhdao", clips=clips) as a, client(live, meeting, clips=clips) as c, \
                client(live, meeting, "thuky.ninhkieu") as attacker:
            for x in (a, c, attacker):
                await x.join()
            await a.publish("dark", audio="silent")
            await c.subscribe()
            main = c.slot_stats("main")
            await c.wait_for(lambda: main.frames >= 5, 15, "frames before")
            for sdp in hostile:
                await attacker.send({"type": "publish", "stream": "camera", "sdp": sdp[:30000], "tracks": {"0": "camera"}})
                error = await attacker.recv("error", 10)
                assert error["code"] in ("bad_sdp", "invalid"), error
            await attacker.send({"type": "subscribe_answer", "sdp": "v=0\r\nnot an answer at all"})
            assert (await attacker.recv("error", 10))["code"] == "invalid"
            before = main.frames
            await c.wait_for(lambda: main.frames >= before + 10, 10, "frames after the attack")
            assert main.near_luma(BRIGHTNESS["dark"])

    asyncio.run(scenario())



def test_a_session_ended_elsewhere_closes_its_open_room_socket(live: Live) -> None:
    """Revoking a token (or a logout, a reset, a disable) ends the room socket it opened too, at
    the next heartbeat: a person locked out does not stay in the meeting."""
    meeting = live.meeting(users=PEOPLE)
    fresh = httpx.post(f"{live.base_url}/api/auth/token", json={"username": "canbo.tanan", "password": DEMO_PASSWORD})
    assert fresh.status_code == 200, fresh.text
    token = fresh.json()["access_token"]

    async def scenario() -> None:
        async with client(live, meeting, "thuky.ninhkieu") as a, RoomClient(live.ws_url, meeting["id"], token=token) as b:
            await a.join()
            await b.join()
            await a.recv("participant_joined", 5)
            async with httpx.AsyncClient(base_url=live.base_url) as http:
                ended = await http.delete("/api/auth/token", headers={"Authorization": f"Bearer {token}"})
                assert ended.status_code == 204, ended.text
            error = await b.recv("error", 3 * live.app.state.giaoban.settings.heartbeat + 2)
            assert error["code"] == "not_authenticated"
            assert await b.wait_closed(5) == 4401
            assert (await a.recv("participant_left", 5))["participant_id"] == b.participant_id

    asyncio.run(scenario())
