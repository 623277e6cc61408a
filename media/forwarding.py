"""Fan-out of encoded frames: publishers' sources feed subscribers' slots.

A ``Source`` is one track a participant publishes (``camera``, ``camera_small``, ``screen`` or
``audio``). A ``Slot`` is one track a subscriber receives; the room decides which source feeds
it and may change that at any time. A slot is one continuous stream whatever feeds it: it
rebases timestamps when the source changes (the sender numbers packets itself), and for video it
keeps the old source until the new one delivers a keyframe, asking for one at once.

A slow subscriber never slows the others: each slot has a bounded queue; when it is full the
slot drops what it holds and waits for the next keyframe (video) or drops the oldest (audio).

Nothing here knows aiortc: a source is fed by whatever receives (today aiortc's jitter buffer
through ``media.adapter``), a slot is drained by whatever sends (aiortc's ``RTCRtpSender``
through ``recv()``), so a packet-level path can take over either side without touching the room.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame

KEYFRAME_INTERVAL = 0.5  # at most one keyframe request per source per this many seconds


class Stats:
    keyframe_requests = 0  # sent upstream, after throttling
    keyframe_asks = 0  # asked for by slots and subscribers, before throttling
    dropped_frames = 0  # dropped by full slot queues


class Source:
    def __init__(self, participant_id: str, layer: str, kind: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.participant_id = participant_id
        self.layer = layer
        self.kind = kind
        self.clock = AUDIO_CLOCK if kind == "audio" else VIDEO_CLOCK
        self.sinks: set[Slot] = set()
        self.request_keyframe_upstream: Callable[[], None] = lambda: None
        self.cap_bitrate_upstream: Callable[[int], None] = lambda bitrate: None  # REMB to the publisher
        self._now = now
        self._last_request = -KEYFRAME_INTERVAL
        self._pending_request = False
        self.frames = 0

    def push(self, frame: EncodedFrame) -> None:
        self.frames += 1
        for sink in tuple(self.sinks):
            sink.offer(self, frame)

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


class Slot(MediaStreamTrack):
    """One outgoing track of a subscriber, fed by at most one source at a time."""

    def __init__(self, name: str, kind: str, *, max_queue: int = 30, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.kind = kind
        self.name = name
        self.clock = AUDIO_CLOCK if kind == "audio" else VIDEO_CLOCK
        self.source: Source | None = None
        self.pending: Source | None = None
        self._max_queue = max_queue
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._now = now
        self._offset = 0
        self._last_out: int | None = None
        self._last_time = 0.0
        self._rebase = True
        self._need_keyframe = False
        self.forwarded = 0
        self.dropped = 0

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
    def offer(self, source: Source, frame: EncodedFrame) -> None:
        if source is self.pending:
            if not frame.keyframe:
                return
            self._detach_current()
            self.source, self.pending = source, None
            self._rebase = True
            self._need_keyframe = False
        elif source is not self.source:
            return
        if self._need_keyframe:
            if not frame.keyframe:
                return
            self._need_keyframe = False
        if len(self._queue) >= self._max_queue:
            if self.kind == "audio":  # every audio frame stands alone: lose the oldest
                self._queue.popleft()
                self.dropped += 1
                Stats.dropped_frames += 1
            else:  # a video frame needs its predecessors: start again at a keyframe
                self.dropped += len(self._queue)
                Stats.dropped_frames += len(self._queue)
                self._queue.clear()
                self._need_keyframe = not frame.keyframe
                if self._need_keyframe:
                    source.request_keyframe()
                    return
        now = self._now()
        if self._rebase:
            if self._last_out is None:
                self._offset = -frame.timestamp
            else:
                gap = max(1, int((now - self._last_time) * self.clock))
                self._offset = self._last_out + gap - frame.timestamp
            self._rebase = False
        out = (frame.timestamp + self._offset) & 0xFFFFFFFF
        self._last_out, self._last_time = out, now
        self._queue.append(EncodedFrame(frame.data, out, frame.keyframe))
        self._ready.set()

    # -- the sender's side ---------------------------------------------------
    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.forwarded += 1
        return self._queue.popleft()

    def stop(self) -> None:
        self.switch(None)
        if self.pending is not None:
            self.pending.sinks.discard(self)
            self.pending = None
        self._queue.clear()
        super().stop()
        self._ready.set()
