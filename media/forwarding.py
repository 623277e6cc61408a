"""Fan-out of RTP packets: publishers' sources feed subscribers' slots.

A ``Source`` is one track a participant publishes (``camera``, ``camera_small``, ``screen`` or
``audio``). A ``Slot`` is one track a subscriber receives; the room decides which source feeds
it and may change that at any time. A slot is one continuous stream whatever feeds it: when the
source changes it rebases sequence numbers, timestamps (on the wall-clock gap) and VP8 picture
IDs, and for video it keeps the old source until the new one's keyframe starts, asking for one
at once.

Packets are forwarded as they arrive, one header rewrite per subscriber, never queued: a slow
subscriber's losses are its own (its socket buffer, its NACKs answered from the output's
history) and never slow the others.

Nothing here knows aiortc: a source is fed by whatever receives (``media.adapter.tap_packets``),
a slot sends through an ``Output`` (``media.adapter.PacketOutput``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Protocol

from media.rtp import AUDIO_CLOCK, VIDEO_CLOCK, Packet, with_picture_id

KEYFRAME_INTERVAL = 0.5  # at most one keyframe request per source per this many seconds


class Sink(Protocol):
    """What a source feeds: a subscriber's ``Slot``, or a ``media.relay.RelaySink``."""

    def offer(self, source: Source, packet: Packet) -> None: ...

    def source_gone(self, source: Source) -> None: ...


class Stats:
    keyframe_requests = 0  # sent upstream, after throttling
    keyframe_asks = 0  # asked for by slots and subscribers, before throttling


class Source:
    def __init__(self, participant_id: str, layer: str, kind: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.participant_id = participant_id
        self.layer = layer
        self.kind = kind
        self.clock = AUDIO_CLOCK if kind == "audio" else VIDEO_CLOCK
        self.sinks: set[Sink] = set()
        self.request_keyframe_upstream: Callable[[], None] = lambda: None
        self.cap_bitrate_upstream: Callable[[int], None] = lambda bitrate: None  # REMB to the publisher
        self._now = now
        self._last_request = -KEYFRAME_INTERVAL
        self._pending_request = False
        self.packets = 0

    def push(self, packet: Packet) -> None:
        self.packets += 1
        for sink in tuple(self.sinks):
            sink.offer(self, packet)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per ``KEYFRAME_INTERVAL``; a request
        inside the interval is sent when it ends."""
        if self.kind == "audio":
            return
        Stats.keyframe_asks += 1
        self._request()

    def _request(self) -> None:
        now = self._now()
        wait = self._last_request + KEYFRAME_INTERVAL - now
        if wait <= 0:
            self._last_request = now
            Stats.keyframe_requests += 1
            self.request_keyframe_upstream()
        elif not self._pending_request:
            self._pending_request = True
            asyncio.get_running_loop().call_later(wait, self._deferred_request)

    def _deferred_request(self) -> None:
        self._pending_request = False
        if self.sinks:
            self._request()

    def close(self) -> None:
        for sink in tuple(self.sinks):
            sink.source_gone(self)
        self.sinks.clear()


class Output(Protocol):
    """Where a slot's packets go: one outgoing RTP stream of a subscriber."""

    ready: bool

    def send(self, marker: int, seq: int, timestamp: int, payload: bytes) -> None: ...


class Slot:
    """One outgoing track of a subscriber, fed by at most one source at a time."""

    def __init__(self, name: str, kind: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.name = name
        self.clock = AUDIO_CLOCK if kind == "audio" else VIDEO_CLOCK
        self.source: Source | None = None
        self.pending: Source | None = None
        self.output: Output | None = None
        self._now = now
        self._rebase = True
        self._need_keyframe = False
        self._seq_offset = self._ts_offset = self._pid_offset = 0
        self._first_seq = 0  # the source's sequence number that started this stretch
        self._last_seq: int | None = None  # highest sequence number sent, and its timestamp
        self._last_ts = 0
        self._last_time = 0.0
        self._last_pid: int | None = None
        self.forwarded = 0

    # -- the room's side -------------------------------------------------
    def switch(self, source: Source | None) -> None:
        """Feed this slot from ``source`` (None: idle). Video waits for the new source's keyframe."""
        if source is not None and source.kind != self.kind:
            raise ValueError("a slot carries one kind of media")
        target = self.pending if self.pending is not None else self.source
        if source is target:
            return
        if self.pending is not None and self.pending is not source:
            self.pending.sinks.discard(self)
            self.pending = None
        if source is None or self.kind == "audio" or self.source is None:
            self._detach_current()
            self.source = source
            self._rebase = True
            self._need_keyframe = self.kind == "video"
            if source is not None:
                source.sinks.add(self)
                source.request_keyframe()
            return
        if source is self.source:
            return
        self.pending = source
        source.sinks.add(self)
        source.request_keyframe()

    def restart(self) -> None:
        """The output has just become able to send: start at the next keyframe."""
        self._rebase = True
        self._need_keyframe = self.kind == "video"
        if self.source is not None:
            self.source.request_keyframe()

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (PLI/FIR): ask whoever feeds this slot."""
        feeding = self.pending or self.source
        if feeding is not None:
            feeding.request_keyframe()

    def source_gone(self, source: Source) -> None:
        if source is self.pending:
            self.pending = None
        if source is self.source:
            self.source = None
            self._rebase = True

    def _detach_current(self) -> None:
        if self.source is not None:
            self.source.sinks.discard(self)
            self.source = None

    # -- the sources' side -------------------------------------------------
    def offer(self, source: Source, packet: Packet) -> None:
        output = self.output
        if output is None or not output.ready:
            return
        if source is not self.source:
            if source is not self.pending or not packet.keyframe:
                return
            self._detach_current()
            self.source, self.pending = source, None
            self._rebase = True
            self._need_keyframe = False
        elif self._need_keyframe:
            if not packet.keyframe:
                return
            self._need_keyframe = False
        if self._rebase:
            self._start(packet)
        elif (packet.seq - self._first_seq) & 0x8000:
            return  # from before this stretch began (a late retransmission)
        seq = (packet.seq + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        payload = packet.payload
        if packet.pid_bits:
            picture_id = (packet.picture_id + self._pid_offset) & ((1 << packet.pid_bits) - 1)
            if self._pid_offset:
                payload = with_picture_id(payload, packet.pid_at, packet.pid_bits, picture_id)
            self._last_pid = picture_id
        if not (seq - self._last_seq) & 0x8000:  # type: ignore[operator]  # set by _start
            self._last_seq, self._last_ts, self._last_time = seq, timestamp, self._now()
        self.forwarded += 1
        output.send(packet.marker, seq, timestamp, payload)

    def _start(self, packet: Packet) -> None:
        """Map a new stretch of a source onto this slot's stream, continuing where it left off."""
        self._rebase = False
        self._first_seq = packet.seq
        if self._last_seq is None:  # a new stream; below 32768 so SRTP's rollover guess holds
            self._seq_offset = random.randrange(1 << 15) - packet.seq
            self._ts_offset = random.randrange(1 << 31) - packet.timestamp
            self._pid_offset = 0
            self._last_seq = (packet.seq + self._seq_offset - 1) & 0xFFFF
            return
        gap = max(1, int((self._now() - self._last_time) * self.clock))
        self._seq_offset = self._last_seq + 1 - packet.seq
        self._ts_offset = self._last_ts + gap - packet.timestamp
        if packet.pid_bits and self._last_pid is not None:
            self._pid_offset = self._last_pid + 1 - packet.picture_id

    def stop(self) -> None:
        self.switch(None)
        if self.pending is not None:
            self.pending.sinks.discard(self)
            self.pending = None
        self.output = None
