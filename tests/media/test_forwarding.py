"""Fan-out from sources to slots (media.forwarding): keyframe gating, source switching,
timestamp rebasing, bounded queues and keyframe-request throttling, with an injected clock.

``Slot`` needs a running event loop (``asyncio.Event``, ``call_later``), so every test runs its
scenario with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from aiortc.mediastreams import MediaStreamError

from media.forwarding import KEYFRAME_INTERVAL, Slot, Source, Stats
from media.frames import EncodedFrame

STEP = 22_500  # 90 kHz ticks in 0.25 s: the clock below moves in exact binary fractions


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def source(name: str, clock: Clock, kind: str = "video") -> tuple[Source, list[float]]:
    """A source whose upstream keyframe requests are recorded (at the clock's time)."""
    src = Source(name, "camera" if kind == "video" else "audio", kind, now=clock)
    requests: list[float] = []
    src.request_keyframe_upstream = lambda: requests.append(clock())
    return src, requests


def key(ts: int, tag: bytes = b"") -> EncodedFrame:
    return EncodedFrame(b"K" + tag, ts, True)


def delta(ts: int, tag: bytes = b"") -> EncodedFrame:
    return EncodedFrame(b"D" + tag, ts, False)


async def drain(slot: Slot) -> list[EncodedFrame]:
    """Every frame the slot holds now."""
    frames = []
    while True:
        try:
            frames.append(await asyncio.wait_for(slot.recv(), 0.005))
        except TimeoutError:
            return frames


def test_a_new_video_slot_drops_frames_until_a_keyframe() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        assert requests == [100.0]  # asked for a keyframe at once
        assert slot.source is a and slot in a.sinks
        a.push(delta(1000, b"1"))
        a.push(delta(4000, b"2"))
        assert await drain(slot) == []
        a.push(key(7000, b"3"))
        a.push(delta(10000, b"4"))
        out = await drain(slot)
        assert [(f.data, f.keyframe) for f in out] == [(b"K3", True), (b"D4", False)]
        assert [f.timestamp for f in out] == [0, 3000]  # the slot's stream starts at 0
        assert slot.forwarded == 2 and a.frames == 4

    run(scenario)


def test_switching_video_keeps_the_old_source_until_the_new_ones_keyframe() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, a_requests = source("a", clock)
        b, b_requests = source("b", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        a.push(key(0, b"a0"))
        slot.switch(b)
        assert b_requests == [100.0]  # the new source is asked for a keyframe at once
        assert slot.source is a and slot.pending is b
        slot.switch(b)  # switching again to the pending source changes nothing
        assert slot.pending is b and len(b_requests) == 1
        b.push(delta(500, b"b0"))  # not a keyframe: ignored
        a.push(delta(3000, b"a1"))  # still forwarded
        b.push(delta(3500, b"b1"))
        a.push(delta(6000, b"a2"))
        assert [f.data for f in await drain(slot)] == [b"Ka0", b"Da1", b"Da2"]
        b.push(key(6500, b"b2"))  # now the slot switches
        assert slot.source is b and slot.pending is None
        assert slot not in a.sinks and slot in b.sinks
        a.push(delta(9000, b"a3"))  # ignored from now on
        b.push(delta(9500, b"b3"))
        assert [f.data for f in await drain(slot)] == [b"Kb2", b"Db3"]
        assert len(a_requests) == 1  # only when the slot first attached to it

    run(scenario)


def test_switching_back_before_the_keyframe_cancels_the_pending_source() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        a.push(key(0, b"a0"))
        slot.switch(b)
        slot.switch(a)
        assert slot.source is a and slot.pending is None and slot not in b.sinks
        b.push(key(100, b"b0"))
        a.push(delta(3000, b"a1"))
        assert [f.data for f in await drain(slot)] == [b"Ka0", b"Da1"]

    run(scenario)


def test_output_timestamps_are_continuous_across_a_switch() -> None:
    async def scenario() -> None:
        clock = Clock(10.0)
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        for i in range(3):  # a's own timestamps start anywhere
            clock.t = 10.0 + 0.25 * i
            a.push(EncodedFrame(b"a", 1_000_000 + i * STEP, i == 0))
        slot.switch(b)
        clock.t = 10.75  # b's keyframe arrives 0.25 s after a's last frame
        b.push(key(0xFFFF_FF00))  # b's timestamps are unrelated, and about to wrap
        clock.t = 11.0
        b.push(delta(0x0000_0100))  # wrapped: 0x200 ticks later
        out = [f.timestamp for f in await drain(slot)]
        assert out == [0, STEP, 2 * STEP, 3 * STEP, 3 * STEP + 0x200]
        # Idle, then fed again 2 s later: the gap in the output is the wall-clock gap.
        slot.switch(None)
        assert slot.source is None and slot not in b.sinks
        c, _ = source("c", clock)
        slot.switch(c)
        clock.t = 13.0
        c.push(key(42))
        assert [f.timestamp for f in await drain(slot)] == [3 * STEP + 0x200 + 2 * 90_000]

    run(scenario)


def test_audio_switches_immediately_and_rebases_on_its_clock() -> None:
    async def scenario() -> None:
        asks = Stats.keyframe_asks
        clock = Clock(20.0)
        a, a_requests = source("a", clock, "audio")
        b, b_requests = source("b", clock, "audio")
        slot = Slot("audio1", "audio", now=clock)
        slot.switch(a)
        a.push(delta(500, b"a0"))  # audio frames need no keyframe
        clock.t = 20.25
        slot.switch(b)
        assert slot.source is b and slot.pending is None and slot not in a.sinks
        b.push(delta(90_000, b"b0"))
        a.push(delta(1460, b"a1"))  # ignored
        b.push(delta(90_960, b"b1"))
        out = await drain(slot)
        assert [f.data for f in out] == [b"Da0", b"Db0", b"Db1"]
        assert [f.timestamp for f in out] == [0, 12_000, 12_960]  # 0.25 s at 48 kHz
        assert a_requests == [] and b_requests == [] and Stats.keyframe_asks == asks
        with pytest.raises(ValueError):
            slot.switch(source("v", clock)[0])

    run(scenario)


def test_a_full_video_queue_drops_everything_and_waits_for_a_keyframe() -> None:
    async def scenario() -> None:
        dropped = Stats.dropped_frames
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", max_queue=3, now=clock)
        slot.switch(a)
        a.push(key(0, b"0"))
        a.push(delta(3000, b"1"))
        a.push(delta(6000, b"2"))
        clock.t += KEYFRAME_INTERVAL  # past the throttle of the first request
        a.push(delta(9000, b"3"))  # the queue is full: all dropped, a keyframe is asked for
        assert slot.dropped == 3 and Stats.dropped_frames == dropped + 3
        assert requests == [100.0, 100.5]
        a.push(delta(12000, b"4"))
        a.push(key(15000, b"5"))
        a.push(delta(18000, b"6"))
        out = await drain(slot)
        assert [f.data for f in out] == [b"K5", b"D6"]
        assert [f.timestamp for f in out] == [15000, 18000]  # no rebase: the source did not change

    run(scenario)


def test_a_full_video_queue_keeps_an_arriving_keyframe() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", max_queue=2, now=clock)
        slot.switch(a)
        a.push(key(0, b"0"))
        a.push(delta(3000, b"1"))
        clock.t += 1
        a.push(key(6000, b"2"))
        assert slot.dropped == 2 and requests == [100.0]  # no request: it has its keyframe
        a.push(delta(9000, b"3"))
        assert [f.data for f in await drain(slot)] == [b"K2", b"D3"]

    run(scenario)


def test_a_full_audio_queue_stays_bounded_and_keeps_the_newest() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock, "audio")
        slot = Slot("audio1", "audio", max_queue=3, now=clock)
        slot.switch(a)
        for i in range(10):
            a.push(delta(i * 960, bytes([i])))
        out = await drain(slot)
        assert 0 < len(out) <= 3 and out[-1].data == b"D\x09"
        assert [f.timestamp for f in out] == sorted(f.timestamp for f in out)
        assert slot.dropped == 10 - len(out) and requests == []

    run(scenario)


def test_two_keyframe_requests_within_the_interval_send_one_now_and_one_later() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)  # first request
        clock.t = 100.49
        slot.request_keyframe()  # inside the interval: deferred by 10 ms
        slot.request_keyframe()  # already pending: nothing more
        assert requests == [100.0]
        clock.t = 100.5
        await asyncio.sleep(0.05)
        assert requests == [100.0, 100.5]
        await asyncio.sleep(0.02)
        assert requests == [100.0, 100.5]

    run(scenario)


def test_ten_keyframe_requests_within_300_ms_send_at_most_two() -> None:
    async def scenario() -> None:
        requests_before = Stats.keyframe_requests
        asks_before = Stats.keyframe_asks
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        a.push(key(0))
        loop = asyncio.get_running_loop()
        timers: list[tuple[float, Callable[[], None]]] = []

        def call_later(delay: float, callback: Callable[[], None]) -> None:
            timers.append((delay, callback))

        loop.call_later = call_later  # type: ignore[method-assign,assignment]
        try:
            for i in range(10):
                clock.t = 100.0 + 0.03 * i
                slot.request_keyframe()
        finally:
            del loop.call_later
        assert requests == [100.0]  # the switch's request; the other 9 fall inside the interval
        assert len(timers) == 1 and timers[0][0] == pytest.approx(0.5)  # one deferred request
        clock.t = 100.5
        timers[0][1]()
        assert requests == [100.0, 100.5]
        assert Stats.keyframe_requests == requests_before + 2
        assert Stats.keyframe_asks >= asks_before + 11

    run(scenario)


def test_a_deferred_request_is_dropped_when_nobody_listens_any_more() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        clock.t = 100.49
        slot.request_keyframe()
        slot.switch(None)
        clock.t = 100.5
        await asyncio.sleep(0.05)
        assert requests == [100.0]

    run(scenario)


def test_a_subscribers_keyframe_request_goes_to_the_pending_source() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, a_requests = source("a", clock)
        b, b_requests = source("b", clock)
        slot = Slot("main", "video", now=clock)
        slot.request_keyframe()  # idle: nobody to ask
        slot.switch(a)
        clock.t += 1
        slot.request_keyframe()
        assert a_requests == [100.0, 101.0]
        slot.switch(b)
        clock.t += 1
        slot.request_keyframe()
        assert a_requests == [100.0, 101.0] and b_requests == [101.0, 102.0]

    run(scenario)


def test_closing_a_source_idles_its_slots() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        fed = Slot("main", "video", now=clock)
        waiting = Slot("thumb1", "video", now=clock)
        fed.switch(a)
        waiting.switch(b)
        b.push(key(0))
        waiting.switch(a)  # pending on a
        assert waiting.pending is a
        a.close()
        assert fed.source is None and waiting.pending is None and waiting.source is b
        assert a.sinks == set()
        a.push(key(3000))
        assert await drain(fed) == []
        # A slot idled this way takes a new source like a new slot (from its keyframe).
        fed.switch(b)
        b.push(delta(6000, b"x"))
        b.push(key(9000, b"y"))
        assert [f.data for f in await drain(fed)] == [b"Ky"]

    run(scenario)


def test_recv_returns_frames_in_order_and_fails_after_stop() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        a.push(key(0, b"0"))
        for i in range(1, 5):
            a.push(delta(i * 3000, bytes([48 + i])))
        assert [(await slot.recv()).data for _ in range(5)] == [b"K0", b"D1", b"D2", b"D3", b"D4"]
        # A waiting recv() gets the next frame as soon as it is pushed ...
        waiter = asyncio.ensure_future(slot.recv())
        await asyncio.sleep(0)
        assert not waiter.done()
        a.push(delta(15000, b"5"))
        assert (await asyncio.wait_for(waiter, 1)).data == b"D5"
        # ... and fails when the slot stops.
        waiter = asyncio.ensure_future(slot.recv())
        await asyncio.sleep(0)
        a.push(delta(18000, b"6"))
        a.push(delta(21000, b"7"))
        slot.stop()
        assert slot.readyState == "ended" and slot.source is None and slot not in a.sinks
        with pytest.raises(MediaStreamError):  # what was still queued is discarded
            await asyncio.wait_for(waiter, 1)
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(slot.recv(), 1)
        a.push(key(24000))
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(slot.recv(), 1)

    run(scenario)


def test_a_waiting_recv_fails_when_the_slot_stops() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        slot = Slot("main", "video", now=clock)
        slot.switch(a)
        waiter = asyncio.ensure_future(slot.recv())
        await asyncio.sleep(0)
        assert not waiter.done()
        slot.stop()
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(waiter, 1)

    run(scenario)
