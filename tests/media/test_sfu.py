"""The SFU with real WebRTC on loopback: aiortc clients publish known pre-encoded clips through
the real signalling and the SFU worker, other clients decode what arrives (in the test)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from server.rooms.access import room_name
from tests.support.live import Live, live_settings, serve
from tests.support.media_clips import BRIGHTNESS, Clips
from tests.support.rtc_client import RoomClient

DARK, BRIGHT = BRIGHTNESS["dark"], BRIGHTNESS["bright"]
FULL, SMALL = (640, 360), (160, 90)
PEOPLE = ["thuky.ninhkieu", "canbo.tanan", "thuky"]


def room_of(client: RoomClient) -> str:
    import datetime as dt

    assert client.welcome is not None
    meeting = client.welcome["meeting"]
    return room_name(meeting["id"], dt.datetime.fromisoformat(meeting["occurrence"]))


@asynccontextmanager
async def joined(live: Live, meeting: dict[str, Any], clips: Clips, *usernames: str, **join: Any) -> AsyncIterator[list[RoomClient]]:
    clients = [RoomClient(live.ws_url, meeting["id"], token=live.token(u), clips=clips) for u in usernames]
    try:
        for client in clients:
            await client.connect()
            await client.join(**join)
        yield clients
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def frames_of(client: RoomClient, slot: str, at_least: int = 8, what: str = "") -> Any:
    stats = client.slot_stats(slot)
    start = stats.frames
    await client.wait_for(lambda: stats.frames >= start + at_least, 15, what or f"{slot} frames")
    return stats


def test_frames_are_forwarded_in_two_layers_and_never_decoded(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu", "canbo.tanan") as (a, b, c):
            await a.publish("dark", audio="silent")
            await b.publish("bright", audio="silent")
            offer = await c.subscribe()
            assert [s["slot"] for s in offer["slots"]] == ["main", "thumb1", "thumb2", "thumb3", "thumb4", "screen", "audio1", "audio2", "audio3"]
            main = await frames_of(c, "main")
            thumb = await frames_of(c, "thumb1")
            # The main slot carries the first camera at full size, the thumbnail the other one small;
            # what the test decodes is what each publisher encoded (its brightness).
            assert main.size() == FULL and main.near_luma(DARK), (main.size(), main.luma)
            assert thumb.size() == SMALL and thumb.near_luma(BRIGHT), (thumb.size(), thumb.luma)
            assert c.source("main") == a.participant_id and c.source("thumb1") == b.participant_id
            assert c.slot_stats("thumb2").frames == 0 and c.source("thumb2") is None
            # In the SFU process no codec was ever asked for and no codec context exists.
            debug = await live.call(live.hub.media.debug(room_of(c)))
            assert debug["forwarded_packets"] > 100
            assert debug["codec_attempts"] == 0 and debug["codec_contexts"] == 0, debug
            # Publishers' packets, once a stream's first one came through aiortc, arrive directly.
            assert debug["direct_packets"] > 100, debug
            # A publisher is never sent itself: the first camera for it is the other one.
            await a.subscribe()
            await a.wait_for(lambda: a.source("main") == b.participant_id, 10, "the other camera")
            assert a.participant_id not in {a.source(s) for s in a.slot_mids}

    asyncio.run(scenario())


def test_a_subscribers_keyframe_request_reaches_the_publisher_throttled(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "canbo.tanan") as (a, c):
            await a.publish("mid", audio="silent")
            await c.subscribe()
            await frames_of(c, "main")
            # Joining asked for a keyframe already; wait out the throttle, then send PLIs in a burst.
            assert a.keyframe_requests["camera"] >= 1
            await asyncio.sleep(1.2)
            before = a.keyframe_requests["camera"]
            assert c.subscriber is not None
            receiver = next(t.receiver for t in c.subscriber.getTransceivers() if t.mid == c.slot_mids["main"])
            ssrc = receiver.getSynchronizationSources()[0].source
            for _ in range(10):
                await receiver._send_rtcp_pli(ssrc)
                await asyncio.sleep(0.03)
            await c.wait_for(lambda: a.keyframe_requests["camera"] > before, 5, "the PLI at the publisher")
            await asyncio.sleep(0.8)
            # Ten requests within 300 ms reach the publisher as at most two (one per 500 ms).
            assert 1 <= a.keyframe_requests["camera"] - before <= 2, a.keyframe_requests

    asyncio.run(scenario())


def test_the_louder_speaker_takes_the_main_slot_and_an_audio_slot(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu", "canbo.tanan") as (a, b, c):
            await a.publish("dark", audio="quiet")
            await b.publish("bright", audio="quiet")
            await c.subscribe()
            await frames_of(c, "main")
            assert c.source("main") == a.participant_id  # nobody speaks: the first camera
            b.set_audio("loud")
            await c.wait_for(lambda: c.source("main") == b.participant_id, 10, "the loud speaker in main")
            speaker = await c.recv("active_speaker", 5)
            assert speaker["participant_id"] == b.participant_id
            main = c.slot_stats("main")
            await c.wait_for(lambda: main.near_luma(BRIGHT) and main.size() == FULL, 10, "the new speaker's picture")
            assert c.source("thumb1") == a.participant_id  # the previous main moved to a thumbnail
            await c.wait_for(lambda: c.source("audio1") == b.participant_id, 10, "the speaker in an audio slot")
            assert (await frames_of(c, "audio1", 10)).frames >= 10
            # The slot stayed one stream: frames kept coming across the switch.
            await frames_of(c, "main")
            # Muted, the loud one gives way.
            await b.send({"type": "update", "muted": True})
            a.set_audio("loud")
            await c.wait_for(lambda: c.source("main") == a.participant_id, 10, "the other speaker back in main")
            assert b.participant_id not in {c.source(s) for s in ("audio1", "audio2", "audio3")}

    asyncio.run(scenario())


def test_a_weak_line_gets_only_small_layers(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with (
            joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu") as (a, b),
            joined(live, meeting, clips, "canbo.tanan", weak_line=True) as (c,),
        ):
            await a.publish("dark", audio="silent")
            await b.publish("bright", audio="silent")
            await c.subscribe()
            main = await frames_of(c, "main")
            thumb = await frames_of(c, "thumb1")
            assert main.size() == SMALL and main.near_luma(DARK)
            assert thumb.size() == SMALL and thumb.near_luma(BRIGHT)
            assert c.slots["main"]["layer"] == "camera_small"
            # Back on a good line, main returns to full size without renegotiation.
            await c.send({"type": "quality", "weak_line": False})
            await c.wait_for(lambda: main.size() == FULL, 10, "full size after the line recovered")

    asyncio.run(scenario())


def test_a_screen_share_fills_the_screen_slot(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "canbo.tanan") as (a, c):
            await a.publish("dark", audio="silent")
            await c.subscribe()
            await a.publish_screen("bright")
            screen = await frames_of(c, "screen")
            assert screen.size() == FULL and screen.near_luma(BRIGHT)
            assert c.source("screen") == a.participant_id
            await a.unpublish("screen")
            await c.wait_for(lambda: c.source("screen") is None, 10, "the screen slot idle")

    asyncio.run(scenario())


def test_a_killed_worker_is_replaced_and_participants_rejoin(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "canbo.tanan") as (a, c):
            await a.publish("dark", audio="silent")
            await c.subscribe()
            await frames_of(c, "main")
            room = room_of(c)
            pid = live.hub.media.worker_pid(room)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert (await a.recv("rejoin", 10))["reason"] == "media_restarted"
            await c.recv("rejoin", 10)
            await a.publish("dark", audio="silent")
            await c.subscribe()
            main = await frames_of(c, "main")
            assert main.near_luma(DARK)
            assert live.hub.media.worker_pid(room) not in (None, pid)
            assert live.hub.media.snapshot()["restarts"] >= 1

    asyncio.run(scenario())


def test_leaving_cleans_up_tracks_tasks_sockets_and_threads(live: Live, clips: Clips) -> None:
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu", "canbo.tanan") as (a, b, c):
            room = room_of(a)
            await a.publish("dark", audio="quiet")
            await b.publish("bright", audio="quiet")
            await c.subscribe()
            await frames_of(c, "main")
            during = await live.call(live.hub.media.debug(room))
            assert during["sockets"] >= 3 and during["tasks"] > 10, during
            await b.leave()
            await c.wait_for(lambda: c.source("thumb1") is None, 10, "the leaver's slot emptied")
        # Everyone left: the room is closed on the worker and nothing of it remains there.
        async def settled() -> dict[str, Any]:
            return dict(await live.call(live.hub.media.debug("probe-after-" + room)))

        for _ in range(50):
            after = await settled()
            if after["tasks"] == 0 and after["sockets"] == 0:
                break
            await asyncio.sleep(0.2)
        assert after["rooms"] == 0 and after["tasks"] == 0 and after["sockets"] == 0 and after["threads"] == 1, after
        assert room not in live.hub.rooms

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def live_h264(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[Live]:
    yield from serve(live_settings(tmp_path_factory.mktemp("live-h264"), demo_database, sfu_video_codec="H264"))


def test_h264_is_forwarded_when_the_deployment_uses_it(live_h264: Live, h264_clips: Clips) -> None:
    live = live_h264
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, h264_clips, "lanhdao", "canbo.tanan") as (a, c):
            await a.publish("bright", audio="silent")
            await c.subscribe()
            main = await frames_of(c, "main")
            assert main.size() == FULL and main.near_luma(BRIGHT)
            assert "H264" in c.subscriber.remoteDescription.sdp and "VP8" not in c.subscriber.remoteDescription.sdp  # type: ignore[union-attr]
            debug = await live.call(live.hub.media.debug(room_of(c)))
            assert debug["codec_contexts"] == 0 and debug["codec_attempts"] == 0

    asyncio.run(scenario())



def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_the_media_plane_shows_in_metrics(live: Live, clips: Clips) -> None:
    import httpx

    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "canbo.tanan") as (a, c):
            await a.publish("dark", audio="quiet")
            await c.subscribe()
            await frames_of(c, "main", 30)
            async with httpx.AsyncClient(base_url=live.base_url) as http:
                for _ in range(40):
                    text = (await http.get("/metrics")).text
                    if metric(text, "giaoban_media_forwarded_packets_per_second") > 0 and metric(text, "giaoban_media_subscriber_packets_expected") > 0:
                        break
                    await asyncio.sleep(0.25)
            assert metric(text, "giaoban_media_participants") == 2
            assert metric(text, "giaoban_media_publishers") == 1
            assert metric(text, "giaoban_room_connections") == 2
            assert metric(text, "giaoban_media_forwarded_packets_total") > 100
            assert metric(text, "giaoban_media_forwarded_bytes_total") > 10_000
            assert metric(text, "giaoban_media_forwarded_packets_per_second") > 10
            assert metric(text, "giaoban_media_keyframe_requests_total") >= 1
            assert metric(text, "giaoban_media_subscriber_packets_lost") == 0
            assert metric(text, "giaoban_media_workers") == 1

    asyncio.run(scenario())


def test_lost_packets_are_retransmitted_on_both_legs(live: Live, clips: Clips) -> None:
    """Drop every 15th video packet publisher → SFU and SFU → subscriber (the first time it is
    sent): the SFU NACKs the publisher and retransmits to the subscriber from its own history,
    and the picture keeps coming."""
    from aiortc.rtp import RtcpRtpfbPacket, is_rtcp

    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "canbo.tanan") as (a, c):
            publication = await a.publish("dark", layers=("camera",), audio=None)
            # Upstream: the publisher's transport loses packets on the way out (not retransmissions).
            transport = publication.senders["camera"].transport
            send_rtp, sent, up = transport._send_rtp, set(), {"dropped": 0, "nacks": 0}

            async def lossy_send(data: bytes) -> None:
                if not is_rtcp(data) and len(data) > 12:
                    key = (data[8:12], data[2:4])
                    if key not in sent:
                        sent.add(key)
                        if len(sent) % 15 == 0:
                            up["dropped"] += 1
                            return
                await send_rtp(data)

            transport._send_rtp = lossy_send
            sender = publication.senders["camera"]
            handle_rtcp = sender._handle_rtcp_packet

            async def count_nacks(packet: object) -> None:
                if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == 1:
                    up["nacks"] += 1
                await handle_rtcp(packet)

            sender._handle_rtcp_packet = count_nacks
            await c.subscribe()
            assert c.subscriber is not None
            # Downstream: the subscriber's receiver loses packets of the main slot on the way in.
            receiver = next(t.receiver for t in c.subscriber.getTransceivers() if t.mid == c.slot_mids["main"])
            handle_rtp, seen, down = receiver._handle_rtp_packet, set(), {"dropped": 0, "rtx": 0, "media_ssrc": None}

            async def lossy_receive(packet: Any, arrival_time_ms: int) -> None:
                if down["media_ssrc"] is None:
                    down["media_ssrc"] = packet.ssrc
                if packet.ssrc != down["media_ssrc"]:
                    down["rtx"] += 1  # a retransmission (RTX stream)
                elif packet.sequence_number not in seen:
                    seen.add(packet.sequence_number)
                    if len(seen) % 15 == 0:
                        down["dropped"] += 1
                        return
                await handle_rtp(packet, arrival_time_ms)

            receiver._handle_rtp_packet = lossy_receive
            main = c.slot_stats("main")
            await c.wait_for(lambda: main.frames >= 30 and up["dropped"] >= 5 and down["dropped"] >= 5, 30, "frames under loss")
            await c.wait_for(lambda: up["nacks"] >= 3 and down["rtx"] >= 3, 10, "NACKs and retransmissions")
            # The picture keeps coming at the clip's rate despite the losses.
            before = main.frames
            await asyncio.sleep(2)
            assert main.frames - before >= 20, (main.frames - before, up, down)
            assert main.near_luma(DARK)

    asyncio.run(scenario())


def test_a_publisher_is_told_each_layers_bitrate_cap(live: Live, clips: Clips) -> None:
    """The SFU sends REMB per layer (aiortc's own receive-side estimate held browsers far below)."""
    from aiortc.rtp import RtcpPsfbPacket, unpack_remb_fci

    from media.room import LAYER_BITRATES

    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao") as (a,):
            publication = await a.publish("dark", audio="silent")
            caps: dict[str, set[int]] = {"camera": set(), "camera_small": set()}
            for layer in caps:
                sender = publication.senders[layer]
                handle = sender._handle_rtcp_packet

                async def spy(packet: Any, layer: str = layer, handle: Any = handle, sender: Any = sender) -> None:
                    if isinstance(packet, RtcpPsfbPacket) and packet.fmt == 15:
                        bitrate, ssrcs = unpack_remb_fci(packet.fci)
                        if sender._ssrc in ssrcs:
                            caps[layer].add(bitrate)
                    await handle(packet)

                sender._handle_rtcp_packet = spy
            await a.wait_for(lambda: all(caps.values()), 10, "REMB for both layers")
            assert caps["camera"] == {LAYER_BITRATES["camera"]} and caps["camera_small"] == {LAYER_BITRATES["camera_small"]}

    asyncio.run(scenario())
