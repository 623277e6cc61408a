"""A room spread over two SFU workers (GIAOBAN_SFU_ROOM_SPREAD): participants connect to
different worker processes, and each sees and hears the others as in a room on one worker —
media relayed between the workers, keyframe requests crossing back, speaker changes announced
once, a participant leaving or a worker dying handled on both sides."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media.test_sfu import BRIGHT, DARK, FULL, PEOPLE, frames_of, joined, room_of
from tests.support.live import Live, live_settings, serve
from tests.support.media_clips import Clips


@pytest.fixture(scope="module")
def live_spread(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[Live]:
    settings = live_settings(tmp_path_factory.mktemp("live-spread"), demo_database, sfu_workers=2, sfu_room_spread=1)
    yield from serve(settings)


def test_a_room_spread_over_two_workers_works_as_one(live_spread: Live, clips: Clips) -> None:
    live = live_spread
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu") as (a, b):
            room = room_of(a)
            await a.publish("dark", audio="quiet")  # (the media plane is joined on first use)
            await b.publish("bright", audio="quiet")
            pids = live.hub.media.worker_pids(room)
            assert len(pids) == 2 and len(set(pids)) == 2  # one participant on each worker
            await b.subscribe()
            await a.subscribe()
            # Each receives the other's camera, from the other worker, full size in main.
            seen_by_b = await frames_of(b, "main", what="a's camera relayed to b's worker")
            seen_by_a = await frames_of(a, "main", what="b's camera relayed to a's worker")
            assert b.source("main") == a.participant_id and a.source("main") == b.participant_id
            assert seen_by_b.size() == FULL and seen_by_b.near_luma(DARK), (seen_by_b.size(), seen_by_b.luma)
            assert seen_by_a.size() == FULL and seen_by_a.near_luma(BRIGHT), (seen_by_a.size(), seen_by_a.luma)
            # A keyframe request from b's worker reaches a (the publisher) across the relay.
            await asyncio.sleep(1.2)
            before = a.keyframe_requests["camera"]
            assert b.subscriber is not None
            receiver = next(t.receiver for t in b.subscriber.getTransceivers() if t.mid == b.slot_mids["main"])
            await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[0].source)
            await b.wait_for(lambda: a.keyframe_requests["camera"] > before, 5, "b's PLI at a")
            # The loud one is heard on the other worker too, and announced once.
            a.set_audio("loud")
            await b.wait_for(lambda: b.source("audio1") == a.participant_id, 10, "a's voice in b's audio slot")
            assert (await frames_of(b, "audio1", 10)).frames >= 10
            speaker = await b.recv("active_speaker", 5)
            assert speaker["participant_id"] == a.participant_id
            await asyncio.sleep(0.5)
            announced = [m for m in b.history if m.get("type") == "active_speaker" and m.get("participant_id") == a.participant_id]
            assert len(announced) == 1, announced  # by the home worker only
            # Muted, a is no longer relayed as a voice.
            await a.send({"type": "update", "muted": True})
            await b.wait_for(lambda: a.participant_id not in {b.source(s) for s in ("audio1", "audio2", "audio3")},
                             10, "a's voice gone after mute")
            # A third participant goes to the less busy part; a leaving empties its worker's part.
            async with joined(live, meeting, clips, "canbo.tanan") as (c,):
                await c.subscribe()
                await frames_of(c, "main", what="c's main")
                await a.close()
                await c.wait_for(lambda: c.source("main") == b.participant_id, 10, "b in c's main after a left")
                await frames_of(c, "main", what="b's camera for c")
                await b.wait_for(lambda: b.source("main") is None or b.source("main") == c.participant_id, 10,
                                 "a gone from b's main")

    asyncio.run(scenario())


def test_a_dead_worker_closes_the_spread_room_everywhere_and_everyone_rejoins(live_spread: Live, clips: Clips) -> None:
    live = live_spread
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", "thuky.ninhkieu") as (a, b):
            room = room_of(a)
            await a.publish("dark", audio="silent")
            await b.subscribe()
            await frames_of(b, "main")
            home, other = live.hub.media.worker_pids(room)
            os.kill(other, signal.SIGKILL)
            # Both are told to rejoin (b's worker died; a's part of the room is closed with it).
            await a.recv("rejoin", 10)
            await b.recv("rejoin", 10)
            await a.publish("dark", audio="silent")
            await b.subscribe()
            await frames_of(b, "main", what="frames after the rejoin")
            assert other not in live.hub.media.worker_pids(room)

    asyncio.run(scenario())


def test_a_burst_of_joins_spreads_evenly_without_linking_a_worker_twice(live_spread: Live, clips: Clips) -> None:
    live = live_spread
    meeting = live.meeting(users=PEOPLE)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", *PEOPLE) as clients:
            await asyncio.gather(*(c.publish(None, layers=(), audio="silent") for c in clients))  # joins at once
            room = room_of(clients[0])
            pids = live.hub.media.worker_pids(room)
            assert len(pids) == 2 and len(set(pids)) == 2, pids
            assert sorted(live.hub.media.placement(room).values()) == [0, 0, 1, 1]  # two per worker

    asyncio.run(scenario())
