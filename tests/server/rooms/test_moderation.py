"""The chair's firm hand through real signalling: every command and its permission check, the
lobby, removal, lock, end, and what the room records (attendance, roll-call, chat)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlmodel import select

from server.audit.models import AuditEntry
from server.meetings.models import MeetingParticipant
from server.records.models import RollCall
from server.rooms.models import RoomAttendance
from tests.support.live import Live
from tests.support.media_clips import BRIGHTNESS, Clips
from tests.support.rtc_client import RoomClient
from tests.support.web import DEMO_PASSWORD

WARD = "ct.ninh-kieu.tan-an"
OTHER_WARD = "ct.ninh-kieu.an-binh"
PEOPLE = ["thuky.ninhkieu", "canbo.tanan"]


@asynccontextmanager
async def room(live: Live, meeting: dict[str, Any], *usernames: str, clips: Clips | None = None) -> AsyncIterator[list[RoomClient]]:
    clients = [RoomClient(live.ws_url, meeting["id"], token=live.token(u), clips=clips) for u in usernames]
    try:
        for c in clients:
            await c.connect()
            await c.join()
        yield clients
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def error_of(c: RoomClient, message: dict[str, Any]) -> dict[str, Any]:
    await c.send(message)
    error = await c.recv("error", 5)
    assert error["ref"] == message["type"], error
    return error


def test_participants_cannot_moderate_and_the_attempt_is_logged(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "thuky.ninhkieu", "canbo.tanan") as (chair, a, b):
            for command in ({"type": "mute", "participant_id": chair.participant_id}, {"type": "mute", "all": True},
                            {"type": "remove", "participant_id": a.participant_id}, {"type": "lock", "locked": True},
                            {"type": "end"}, {"type": "floor", "participant_id": b.participant_id},
                            {"type": "admit", "participant_id": "p-x"}, {"type": "lower_hand", "all": True}):
                assert (await error_of(b, command))["code"] == "forbidden"
            await b.send({"type": "ping"})
            await b.recv("pong", 5)
            assert not [m for m in chair.history if m.get("type") in ("muted", "removed", "room_state", "ended", "floor")]
            assert all(not p["muted"] for p in (await chair_view(chair)).values())

    asyncio.run(scenario())
    with live.app.state.giaoban.db.session() as session:
        refused = session.exec(select(AuditEntry).where(AuditEntry.action == "room_command_refused")).all()
    assert len(refused) >= 8


async def chair_view(chair: RoomClient) -> dict[str, dict[str, Any]]:
    """The participants as the chair's client last heard of them."""
    assert chair.welcome is not None
    people = {p["id"]: p for p in chair.welcome["participants"]}
    for m in chair.history:
        if m.get("type") in ("participant_joined", "participant_updated"):
            people[m["participant"]["id"]] = m["participant"]
        elif m.get("type") == "participant_left":
            people.pop(m["participant_id"], None)
    return people


def test_the_chair_mutes_but_only_asks_to_unmute(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "thuky.ninhkieu", "canbo.tanan") as (chair, a, b):
            await chair.send({"type": "mute", "participant_id": b.participant_id})
            assert (await b.recv("muted", 5))["by"]
            updated = await a.recv("participant_updated", 5)
            assert updated["participant"]["id"] == b.participant_id and updated["participant"]["muted"] is True
            assert (await error_of(chair, {"type": "mute", "participant_id": b.participant_id}))["code"] == "unchanged"
            assert (await error_of(chair, {"type": "mute", "participant_id": "p-nobody"}))["code"] == "not_found"
            assert (await error_of(chair, {"type": "mute", "participant_id": b.participant_id, "all": True}))["code"] == "invalid"
            await chair.send({"type": "unmute", "participant_id": b.participant_id})  # there is no such command
            assert (await chair.recv("error", 5))["code"] == "unknown_type"
            await chair.send({"type": "ask_unmute", "participant_id": b.participant_id})
            assert (await b.recv("unmute_request", 5))["by"]
            assert (await chair_view(chair))[b.participant_id]["muted"] is True  # asking changes nothing
            await b.send({"type": "update", "muted": False})  # the participant's own choice
            await a.recv("participant_updated", 5)
            await chair.send({"type": "mute", "all": True})
            await a.recv("muted", 5)
            await b.recv("muted", 5)
            await asyncio.sleep(0.2)
            view = await chair_view(chair)
            assert view[a.participant_id]["muted"] and view[b.participant_id]["muted"]
            assert (await error_of(chair, {"type": "mute", "all": True}))["code"] == "unchanged"
            # Hands: raised by the participant, lowered by the chair.
            await a.send({"type": "update", "hand": True})
            await b.recv("participant_updated", 5)
            await chair.send({"type": "lower_hand", "participant_id": a.participant_id})
            lowered = await b.recv("participant_updated", 5)
            assert lowered["participant"]["hand"] is False
            assert (await error_of(chair, {"type": "lower_hand", "all": True}))["code"] == "unchanged"

    asyncio.run(scenario())


def test_a_removed_participant_waits_in_the_lobby_until_admitted(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "canbo.tanan") as (chair, b):
            await chair.send({"type": "remove", "participant_id": b.participant_id})
            assert (await b.recv("removed", 5))["by"]
            assert await b.wait_closed(5) == 4010
            assert (await chair.recv("participant_left", 5))["participant_id"] == b.participant_id
            again = RoomClient(live.ws_url, meeting["id"], token=live.token("canbo.tanan"))
            await again.connect()
            try:
                await again.send({"type": "join", "protocol": 1})
                assert (await again.recv("lobby_wait", 5))["reason"] == "removed"
                assert (await error_of(again, {"type": "chat", "text": "cho tôi vào"}))["code"] == "in_lobby"
                lobby = await chair.recv("lobby", 5)
                [entry] = lobby["waiting"]
                assert entry["name"] and entry["unit"]["name"] and entry["how"] == "account" and entry["reason"] == "removed"
                await chair.send({"type": "admit", "participant_id": entry["id"]})
                welcome = await again.recv("welcome", 5)
                assert welcome["you"]["id"] == entry["id"]
                assert (await chair.recv("lobby", 5))["waiting"] == []
                assert (await error_of(chair, {"type": "admit", "participant_id": entry["id"]}))["code"] == "not_found"
            finally:
                await again.close()

    asyncio.run(scenario())


def test_a_locked_meeting_sends_newcomers_to_the_lobby_and_the_host_decides(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "thuky") as (chair, host):
            assert host.welcome is not None and host.welcome["you"]["role"] == "host"  # not invited: the host unit's secretary
            await chair.send({"type": "lock", "locked": True})
            assert (await host.recv("room_state", 5))["locked"] is True
            assert (await error_of(host, {"type": "lock", "locked": True}))["code"] == "unchanged"
            late = RoomClient(live.ws_url, meeting["id"], token=live.token("canbo.tanan"))
            await late.connect()
            try:
                await late.send({"type": "join", "protocol": 1})
                assert (await late.recv("lobby_wait", 5))["reason"] == "locked"
                [entry] = (await host.recv("lobby", 5))["waiting"]
                await host.send({"type": "deny", "participant_id": entry["id"]})
                assert (await late.recv("denied", 5))["by"]
                assert await late.wait_closed(5) == 4012
            finally:
                await late.close()
            assert (await chair.recv("room_state", 5))["locked"] is True  # the lock, seen earlier
            await host.send({"type": "lock", "locked": False})
            assert (await chair.recv("room_state", 5))["locked"] is False
            async with room(live, meeting, "canbo.tanan") as (now_in,):
                assert now_in.welcome is not None and now_in.welcome["locked"] is False

    asyncio.run(scenario())


def test_a_guest_with_a_link_is_admitted_from_the_lobby(live: Live) -> None:
    meeting = live.meeting(units=[WARD])
    with live.app.state.giaoban.db.session() as session:
        row = session.exec(select(MeetingParticipant).where(
            MeetingParticipant.meeting_id == meeting["id"], MeetingParticipant.code == WARD)).one()
    token = live.app.state.giaoban.join_links.issue(meeting["id"], row.id or 0)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao") as (chair,), RoomClient(live.ws_url, meeting["id"], invite=token) as guest:
            await guest.send({"type": "join", "protocol": 1})
            await guest.recv("lobby_wait", 5)
            [entry] = (await chair.recv("lobby", 5))["waiting"]
            assert entry["how"] == "link" and entry["role"] == "guest" and entry["unit"]["code"] == WARD
            await chair.send({"type": "admit", "participant_id": entry["id"]})
            welcome = await guest.recv("welcome", 5)
            assert welcome["you"]["role"] == "guest"

    asyncio.run(scenario())


def test_the_chair_gives_the_floor_to_everyones_main_slot(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE + ["thuky"])

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "thuky.ninhkieu", "canbo.tanan", "thuky", clips=clips) as (chair, a, b, viewer):
            await a.publish("dark", audio="silent")
            await b.publish("bright", audio="silent")
            await viewer.subscribe()
            await viewer.wait_for(lambda: viewer.source("main") == a.participant_id, 15, "the first camera")
            await chair.send({"type": "floor", "participant_id": b.participant_id})
            assert (await viewer.recv("floor", 5))["participant_id"] == b.participant_id
            await viewer.wait_for(lambda: viewer.source("main") == b.participant_id, 10, "the speaker given the floor")
            main = viewer.slot_stats("main")
            await viewer.wait_for(lambda: main.near_luma(BRIGHTNESS["bright"]), 10, "the floor's picture")
            await chair.send({"type": "floor", "participant_id": None})
            await viewer.recv("floor", 5)
            await viewer.wait_for(lambda: viewer.source("main") == a.participant_id, 10, "the floor taken back")
            # Receiver reports carry the round trip once a sender report came back (each every 0.5–1.5 s).
            await asyncio.sleep(3.5)

    asyncio.run(scenario())
    # The viewer's stay carries a summary of its connection, from the SFU (RTCP receiver reports).
    for _ in range(50):
        with live.app.state.giaoban.db.session() as session:
            stay = session.exec(select(RoomAttendance).where(
                RoomAttendance.meeting_id == meeting["id"], RoomAttendance.name == "Nguyễn Thị Thu")).first()
        if stay is not None and stay.left_at is not None:
            break
        import time

        time.sleep(0.1)
    assert stay is not None and stay.rtt_ms is not None and 0 <= stay.rtt_ms < 200
    assert stay.loss_percent is not None and stay.loss_percent < 1


def test_ending_the_meeting_closes_everyone_out_and_the_room(live: Live) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", "canbo.tanan") as (chair, b):
            await chair.send({"type": "end"})
            assert (await b.recv("ended", 5))["by"]
            assert await b.wait_closed(5) == 4011
            assert await chair.wait_closed(5) == 4011
        late = RoomClient(live.ws_url, meeting["id"], token=live.token("canbo.tanan"))
        await late.connect()
        try:
            error = await late.recv("error", 5)
            assert error["code"] == "not_open" and error["message"] == "Cuộc họp đã kết thúc."
        finally:
            await late.close()

    asyncio.run(scenario())


def test_attendance_is_recorded_and_reported_by_unit_and_fills_the_roll_call(live: Live) -> None:
    meeting = live.meeting(units=[WARD, OTHER_WARD], users=["canbo.tanan"])

    async def scenario() -> None:
        async with room(live, meeting, "lanhdao", WARD) as (chair, ward):
            await chair.send({"type": "chat", "text": "<script>alert(1)</script> Chào các đơn vị"})
            await ward.recv("chat", 5)
            # The ward drops and comes back; a person of the same ward joins too.
            await ward.close()
            async with room(live, meeting, WARD, "canbo.tanan") as (back, person):
                assert back.welcome is not None
                assert back.welcome["chat"][-1]["text"] == "<script>alert(1)</script> Chào các đơn vị"
                await asyncio.sleep(0.3)

    asyncio.run(scenario())
    for _ in range(50):  # the server records a leave when it sees the socket close
        with live.app.state.giaoban.db.session() as session:
            stays = session.exec(select(RoomAttendance).where(RoomAttendance.meeting_id == meeting["id"])).all()
            roll = session.exec(select(RollCall).where(RollCall.meeting_id == meeting["id"])).all()
        if all(s.left_at is not None for s in stays):
            break
        import time

        time.sleep(0.1)
    ward_stays = [s for s in stays if s.unit_code == WARD]
    assert len(ward_stays) == 3 and all(s.left_at is not None for s in stays)  # the endpoint twice, the person once
    assert {s.reason for s in stays} == {"left"}
    assert [(r.status, r.automatic) for r in roll] == [("present_online", True)]  # An Bình never came
    with httpx.Client(base_url=live.base_url) as http:
        page = http.get("/login")
        import re

        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token
        http.post("/login", data={"username": "thuky", "password": DEMO_PASSWORD, "csrf_token": token.group(1)})
        start = dt.datetime.fromisoformat(meeting["start"]).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        base = f"/meetings/{meeting['id']}/occurrences/{start}/record"
        report = http.get(f"{base}/online.csv")
        assert report.status_code == 200, report.text[:500]
        lines = report.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("Đơn vị hoặc người") and len(lines) == 3  # the chair, and the ward
        ward_line = next(line for line in lines if WARD in line)
        assert ",3," in ward_line  # three stays
        printable = http.get(f"{base}/online")
        assert printable.status_code == 200 and "THAM DỰ TRỰC TUYẾN" in printable.text
        chat = http.get(f"{base}/chat.csv").content.decode("utf-8-sig")
        assert "<script>alert(1)</script> Chào các đơn vị" in chat
        minutes = http.get(f"{base}/print").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Chào các đơn vị" in minutes
