"""Fan-out from sources to slots (media.forwarding), packet by packet: keyframe gating, source
switching, rebasing of sequence numbers, timestamps and VP8 picture IDs, and keyframe-request
throttling, with an injected clock and an output that records what it is given.

Keyframe throttling defers requests with ``call_later``, so every test runs its scenario with
``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from media.forwarding import Slot, Source, Stats
from media.rtp import Packet, vp8_packet

STEP = 22_500  # 90 kHz ticks in 0.25 s: the clock below moves in exact binary fractions


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Recorder:
    """An output: what the slot sent, as (marker, seq, timestamp, payload)."""

    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self.sent: list[tuple[int, int, int, bytes]] = []

    def send(self, marker: int, seq: int, timestamp: int, payload: bytes) -> None:
        self.sent.append((marker, seq, timestamp, payload))

    def take(self) -> list[tuple[int, int, int, bytes]]:
        sent, self.sent = self.sent, []
        return sent

    def payloads(self) -> list[bytes]:
        return [p for _, _, _, p in self.take()]


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def source(name: str, clock: Clock, kind: str = "video") -> tuple[Source, list[float]]:
    """A source whose upstream keyframe requests are recorded (at the clock's time)."""
    src = Source(name, "camera" if kind == "video" else "audio", kind, now=clock)
    requests: list[float] = []
    src.request_keyframe_upstream = lambda: requests.append(clock())
    return src, requests


def slot_with_output(name: str, kind: str, clock: Clock) -> tuple[Slot, Recorder]:
    slot = Slot(name, kind, now=clock)
    slot.output = out = Recorder()
    return slot, out


def key(seq: int, ts: int, tag: bytes = b"") -> Packet:
    return Packet(seq, ts, 1, b"K" + tag, True)


def delta(seq: int, ts: int, tag: bytes = b"", marker: int = 1) -> Packet:
    return Packet(seq, ts, marker, b"D" + tag, False)


def relative(sent: list[tuple[int, int, int, bytes]]) -> list[tuple[int, int]]:
    """Sequence numbers and timestamps relative to the first packet sent (mod 2^16, 2^32)."""
    seq0, ts0 = sent[0][1], sent[0][2]
    return [((seq - seq0) & 0xFFFF, (ts - ts0) & 0xFFFFFFFF) for _, seq, ts, _ in sent]


def test_a_new_video_slot_drops_packets_until_a_keyframe_starts() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        assert requests == [100.0]  # asked for a keyframe at once
        assert slot.source is a and slot in a.sinks
        a.push(delta(10, 1000, b"1"))
        a.push(delta(11, 4000, b"2"))
        assert out.sent == []
        a.push(key(12, 7000, b"3"))
        a.push(delta(13, 7000, b"4", marker=0))
        a.push(delta(14, 10000, b"5"))
        sent = out.take()
        assert [p for _, _, _, p in sent] == [b"K3", b"D4", b"D5"]
        assert [m for m, _, _, _ in sent] == [1, 0, 1]  # markers pass through
        assert relative(sent) == [(0, 0), (1, 0), (2, 3000)]
        assert sent[0][1] < 32768  # a new stream starts low: SRTP's rollover guess holds
        assert slot.forwarded == 3 and a.packets == 5

    run(scenario)


def test_nothing_is_sent_until_the_output_is_ready_then_it_starts_at_a_keyframe() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot = Slot("main", "video", now=clock)
        a.push(key(1, 0))  # no output yet
        slot.output = out = Recorder(ready=False)
        slot.switch(a)
        a.push(key(2, 3000))
        assert out.sent == [] and requests == [100.0]
        out.ready = True
        clock.t += 1
        slot.restart()  # what the output calls once it can send
        assert requests == [100.0, 101.0]
        a.push(delta(3, 6000, b"x"))
        a.push(key(4, 9000, b"y"))
        assert out.payloads() == [b"Ky"]

    run(scenario)


def test_switching_video_keeps_the_old_source_until_the_new_ones_keyframe() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, a_requests = source("a", clock)
        b, b_requests = source("b", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        a.push(key(100, 0, b"a0"))
        slot.switch(b)
        assert b_requests == [100.0]  # the new source is asked for a keyframe at once
        assert slot.source is a and slot.pending is b
        slot.switch(b)  # switching again to the pending source changes nothing
        assert slot.pending is b and len(b_requests) == 1
        b.push(delta(7000, 500, b"b0"))  # not a keyframe: ignored
        a.push(delta(101, 3000, b"a1"))  # still forwarded
        b.push(delta(7001, 3500, b"b1"))
        a.push(delta(102, 6000, b"a2"))
        b.push(key(7002, 6500, b"b2"))  # now the slot switches
        assert slot.source is b and slot.pending is None
        assert slot not in a.sinks and slot in b.sinks
        a.push(delta(103, 9000, b"a3"))  # ignored from now on
        b.push(delta(7003, 9500, b"b3"))
        b.push(delta(7001, 3500, b"b1"))  # a late retransmission from before the switch: dropped
        sent = out.take()
        assert [p for _, _, _, p in sent] == [b"Ka0", b"Da1", b"Da2", b"Kb2", b"Db3"]
        assert [seq for seq, _ in relative(sent)] == [0, 1, 2, 3, 4]  # one unbroken sequence
        assert len(a_requests) == 1  # only when the slot first attached to it

    run(scenario)


def test_switching_back_before_the_keyframe_cancels_the_pending_source() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        a.push(key(1, 0, b"a0"))
        slot.switch(b)
        slot.switch(a)
        assert slot.source is a and slot.pending is None and slot not in b.sinks
        b.push(key(1, 100, b"b0"))
        a.push(delta(2, 3000, b"a1"))
        assert out.payloads() == [b"Ka0", b"Da1"]

    run(scenario)


def test_output_timestamps_and_sequence_numbers_are_continuous_across_a_switch() -> None:
    async def scenario() -> None:
        clock = Clock(10.0)
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        for i in range(3):  # a's own timestamps start anywhere
            clock.t = 10.0 + 0.25 * i
            a.push(Packet(500 + i, 1_000_000 + i * STEP, 1, b"a", i == 0))
        slot.switch(b)
        clock.t = 10.75  # b's keyframe arrives 0.25 s after a's last packet
        b.push(key(0xFFFF, 0xFFFF_FF00))  # b's numbers are unrelated, and about to wrap
        clock.t = 11.0
        b.push(delta(0, 0x0000_0100))  # wrapped: 1 packet and 0x200 ticks later
        assert relative(out.sent) == [(0, 0), (1, STEP), (2, 2 * STEP), (3, 3 * STEP), (4, 3 * STEP + 0x200)]
        # Idle, then fed again 2 s later: the gap in the output is the wall-clock gap.
        slot.switch(None)
        assert slot.source is None and slot not in b.sinks
        c, _ = source("c", clock)
        slot.switch(c)
        clock.t = 13.0
        c.push(key(9, 42))
        assert relative(out.sent)[-1] == (5, 3 * STEP + 0x200 + 2 * 90_000)

    run(scenario)


def vp8(seq: int, picture_id: int, key: bool) -> Packet:
    """A VP8 packet starting a frame, with a 15-bit picture ID."""
    descriptor = bytes((0x90, 0x80, 0x80 | picture_id >> 8, picture_id & 0xFF))
    return vp8_packet(seq, seq * 3000, 1, descriptor + (b"\x10" if key else b"\x11") + b"frame")


def test_vp8_picture_ids_continue_across_a_switch() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        a.push(vp8(1, 0x7FFE, True))
        a.push(vp8(2, 0x7FFF, False))
        a.push(vp8(3, 0, False))  # a's own picture IDs wrap
        slot.switch(b)
        b.push(vp8(50, 1234, True))
        b.push(vp8(51, 1235, False))
        ids = [((p[2] & 0x7F) << 8) | p[3] for p in out.payloads()]
        assert ids == [0x7FFE, 0x7FFF, 0, 1, 2]  # the first source's as they were, then continued

    run(scenario)


def test_audio_switches_immediately_and_rebases_on_its_clock() -> None:
    async def scenario() -> None:
        asks = Stats.keyframe_asks
        clock = Clock(20.0)
        a, a_requests = source("a", clock, "audio")
        b, b_requests = source("b", clock, "audio")
        slot, out = slot_with_output("audio1", "audio", clock)
        slot.switch(a)
        a.push(Packet(1, 500, 0, b"a0", True))  # audio packets need no keyframe
        clock.t = 20.25
        slot.switch(b)
        assert slot.source is b and slot.pending is None and slot not in a.sinks
        b.push(Packet(900, 90_000, 0, b"b0", True))
        a.push(Packet(2, 1460, 0, b"a1", True))  # ignored
        b.push(Packet(901, 90_960, 0, b"b1", True))
        sent = out.take()
        assert [p for _, _, _, p in sent] == [b"a0", b"b0", b"b1"]
        assert relative(sent) == [(0, 0), (1, 12_000), (2, 12_960)]  # 0.25 s at 48 kHz
        assert a_requests == [] and b_requests == [] and Stats.keyframe_asks == asks
        with pytest.raises(ValueError):
            slot.switch(source("v", clock)[0])

    run(scenario)


def test_a_stopped_slot_sends_nothing_and_leaves_its_sources() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = source("a", clock)
        b, _ = source("b", clock)
        slot, out = slot_with_output("main", "video", clock)
        slot.switch(a)
        a.push(key(1, 0))
        slot.switch(b)  # pending
        slot.stop()
        assert slot.source is None and slot.pending is None and slot.output is None
        assert a.sinks == set() and b.sinks == set()
        a.push(key(2, 3000))
        b.push(key(1, 0))
        assert len(out.sent) == 1

    run(scenario)


def test_two_keyframe_requests_within_the_interval_send_one_now_and_one_later() -> None:
    async def scenario() -> None:
        clock = Clock()
        a, requests = source("a", clock)
        slot, _ = slot_with_output("main", "video", clock)
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
        slot, _ = slot_with_output("main", "video", clock)
        slot.switch(a)
        a.push(key(1, 0))
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
        slot, _ = slot_with_output("main", "video", clock)
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
        slot, _ = slot_with_output("main", "video", clock)
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
        fed, out = slot_with_output("main", "video", clock)
        waiting, _ = slot_with_output("thumb1", "video", clock)
        fed.switch(a)
        waiting.switch(b)
        b.push(key(1, 0))
        waiting.switch(a)  # pending on a
        assert waiting.pending is a
        a.close()
        assert fed.source is None and waiting.pending is None and waiting.source is b
        assert a.sinks == set()
        a.push(key(1, 3000))
        assert out.sent == []
        # A slot idled this way takes a new source like a new slot (from its keyframe).
        fed.switch(b)
        b.push(delta(2, 6000, b"x"))
        b.push(key(3, 9000, b"y"))
        assert out.payloads() == [b"Ky"]

    run(scenario)
