"""A test client for the signalling protocol of ``docs/signalling.md``, with real WebRTC media.

It publishes the known clips of :mod:`tests.support.media_clips` (pre-encoded video replayed as
``av.Packet``\\ s, PCM audio that aiortc encodes to Opus with the RFC 6464 level) and decodes what
it receives, keeping per-track statistics: frame count, size, mean luma (which publisher), audio
level. ICE stays on loopback. Every wait is bounded.

    async with RoomClient(url, meeting_id, token=token, clips=clips) as alice:
        await alice.join()
        await alice.publish("bright")
        await bob.subscribe()
        await bob.wait_for(lambda: bob.slot_stats("main").near_luma(190))
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from media.adapter import route_by_mid
from media.ice import keep_candidates, parse_networks, use_host_addresses
from tests.support.media_clips import (
    FPS,
    FRAME_SAMPLES,
    LUMA_TOLERANCE,
    SAMPLE_RATE,
    VIDEO_TIME_BASE,
    Clips,
    EncodedPacket,
)

LOOPBACK = parse_networks(["127.0.0.0/8"])
# which clip layer feeds each published track kind
TRACK_LAYERS = {"camera": "full", "camera_small": "small", "screen": "full"}
_MIME = {"vp8": "video/VP8", "h264": "video/H264"}

T = TypeVar("T")


class SignalError(Exception):
    """The server answered with an ``error`` message (kept in ``.message``)."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"{message.get('code')}: {message.get('message')} (fields={message.get('fields')})")
        self.message = message
        self.code = message.get("code")


class SignalClosed(Exception):
    """The WebSocket closed while waiting for a message."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"websocket closed ({code}{' ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


# -- peer connections on loopback ------------------------------------------------------------


def loopback_peer_connection() -> RTCPeerConnection:
    """A peer connection whose only host candidate is 127.0.0.1, without STUN/TURN, with
    aiortc's BUNDLE routing fixed (as in the SFU) so retransmissions reach their track."""
    use_host_addresses(["127.0.0.1"])
    route_by_mid()
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def loopback_description(sdp: str, type: str) -> RTCSessionDescription:
    """A remote description keeping only its loopback candidates."""
    return RTCSessionDescription(sdp=keep_candidates(sdp, LOOPBACK), type=type)


def prefer_codec(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Offer only ``codec`` ("vp8"/"h264", as the clips are encoded) and its RTX."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in capabilities if c.mimeType in (_MIME[codec], "video/rtx")]
    transceiver.setCodecPreferences(wanted)


async def wait_connected(pc: RTCPeerConnection, timeout: float = 10.0) -> None:
    """Until ICE and DTLS are up; raises if the connection fails or takes too long."""
    deadline = time.monotonic() + timeout
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise ConnectionError(f"peer connection {pc.connectionState}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"peer connection still {pc.connectionState} after {timeout}s")
        await asyncio.sleep(0.05)


# -- published tracks ------------------------------------------------------------------------


class _Pacer:
    """Wall-clock pacing: the n-th call returns at start + n·interval (never bursts after a stall)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.count = 0
        self._start: float | None = None

    async def next(self) -> int:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self.count * self.interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.5:  # the loop stalled: carry on from now rather than catch up in a burst
            self._start -= delay
        n = self.count
        self.count += 1
        return n


class EncodedVideoTrack(MediaStreamTrack):
    """Replays pre-encoded packets forever at 15 fps; pts run on across loops (1/90000).

    A keyframe request (see :func:`count_keyframe_requests`) restarts the current GOP, so the
    next packet sent is a keyframe, as a live encoder would do."""

    kind = "video"

    def __init__(self, packets: Sequence[EncodedPacket], fps: int = FPS) -> None:
        super().__init__()
        if not packets or not packets[0].keyframe:
            raise ValueError("a clip must start with a keyframe")
        self.packets = list(packets)
        self.pts_step = 90000 // fps
        self.sent = 0
        self._index = 0
        self._keyframe_wanted = False
        self._pacer = _Pacer(1 / fps)

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.next()
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            while not self.packets[self._index].keyframe:
                self._index -= 1
        source = self.packets[self._index]
        self._index = (self._index + 1) % len(self.packets)
        packet = av.Packet(source.data)
        packet.pts = packet.dts = n * self.pts_step
        packet.time_base = VIDEO_TIME_BASE
        self.sent += 1
        return packet


class PcmAudioTrack(MediaStreamTrack):
    """20 ms s16 mono 48 kHz frames from looping PCM; aiortc encodes them (Opus) and adds the
    RFC 6464 level it computes from each frame. ``pcm`` may be swapped at any time."""

    kind = "audio"

    def __init__(self, pcm: bytes) -> None:
        super().__init__()
        self.pcm = pcm
        self.sent = 0
        self._offset = 0
        self._pacer = _Pacer(FRAME_SAMPLES / SAMPLE_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.next()
        size = 2 * FRAME_SAMPLES
        if self._offset + size > len(self.pcm):
            self._offset = 0
        chunk = self.pcm[self._offset : self._offset + size]
        self._offset += size
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = n * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent += 1
        return frame


def count_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Call ``on_request`` for each PLI or FIR reaching ``sender``, then let aiortc handle it.

    Wraps the private ``RTCRtpSender._handle_rtcp_packet`` on this instance only (test code):
    the DTLS transport looks the method up on the sender for every RTCP packet."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            on_request()
        await original(packet)

    sender._handle_rtcp_packet = handle


# -- received tracks -------------------------------------------------------------------------


def mean_luma(frame: av.VideoFrame, row_step: int = 8, col_step: int = 4) -> float:
    """Mean of the Y plane, sampled every ``row_step`` rows and ``col_step`` columns."""
    plane = frame.planes[0]
    data = memoryview(plane)
    width, line = plane.width, plane.line_size
    total = count = 0
    for y in range(row_step // 2, plane.height, row_step):
        row = data[y * line : y * line + width : col_step]
        total += sum(row)
        count += len(row)
    return total / count if count else 0.0


def audio_level_dbov(frame: av.AudioFrame, step: int = 4) -> float:
    """RMS level of an s16 frame in dBov (−127 for silence), sampling every ``step``-th value."""
    channels = len(frame.layout.channels)
    values = array("h", bytes(frame.planes[0])[: 2 * frame.samples * channels])[::step]
    if not values:
        return -127.0
    rms = math.sqrt(sum(v * v for v in values) / len(values)) / 32767
    return max(-127.0, 20 * math.log10(rms)) if rms > 0 else -127.0


@dataclass
class TrackStats:
    """What arrived on one received track (one slot)."""

    mid: str
    kind: str
    slot: str | None = None
    frames: int = 0
    width: int = 0
    height: int = 0
    luma: float | None = None
    level: float | None = None  # audio, dBov
    first_at: float | None = None
    last_at: float | None = None

    def near_luma(self, brightness: float, tolerance: float = LUMA_TOLERANCE) -> bool:
        return self.luma is not None and abs(self.luma - brightness) <= tolerance

    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


async def consume(track: MediaStreamTrack, stats: TrackStats) -> None:
    """Read ``track`` until it ends, updating ``stats`` for every decoded frame."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if isinstance(frame, av.VideoFrame):
            stats.width, stats.height = frame.width, frame.height
            stats.luma = mean_luma(frame)
        elif isinstance(frame, av.AudioFrame):
            stats.level = audio_level_dbov(frame)
        stats.frames += 1
        stats.first_at = stats.first_at or now
        stats.last_at = now


async def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """Poll ``predicate`` every 50 ms until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.05)


# -- the client ------------------------------------------------------------------------------


@dataclass
class Publication:
    stream: str
    pc: RTCPeerConnection
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)  # by kind
    senders: dict[str, RTCRtpSender] = field(default_factory=dict)  # by kind
    mids: dict[str, str] = field(default_factory=dict)  # mid -> kind


async def _bounded(awaitable: Awaitable[Any], timeout: float = 5.0) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(awaitable, timeout)


class RoomClient:
    """One participant: a signalling WebSocket plus its publish and subscribe connections."""

    def __init__(
        self,
        base_ws_url: str,
        meeting_id: Any,
        *,
        token: str | None = None,
        cookie: str | dict[str, str] | None = None,
        origin: str | None = None,
        invite: str | None = None,
        occurrence: str | None = None,
        clips: Clips | None = None,
        auto_ping: bool = True,
    ) -> None:
        base = base_ws_url.rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[4:]
        query = {k: v for k, v in (("occurrence", occurrence), ("invite", invite)) if v is not None}
        self.url = f"{base}/ws/meetings/{meeting_id}" + (f"?{urlencode(query)}" if query else "")
        self.headers: dict[str, str] = {}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        if isinstance(cookie, dict):
            cookie = "; ".join(f"{k}={v}" for k, v in cookie.items())
        if cookie is not None:
            self.headers["Cookie"] = cookie
        self.origin = origin
        self.clips = clips
        self.auto_ping = auto_ping

        self.ws: ClientConnection | None = None
        self.events: list[dict[str, Any]] = []  # received, not yet taken by recv()
        self.history: list[dict[str, Any]] = []  # everything received
        self.close_code: int | None = None
        self.close_reason = ""
        self.welcome: dict[str, Any] | None = None
        self.publications: dict[str, Publication] = {}
        self.keyframe_requests: dict[str, int] = {}  # by published track kind
        self.subscriber: RTCPeerConnection | None = None
        self.received: dict[str, TrackStats] = {}  # by mid
        self.slot_mids: dict[str, str] = {}  # slot -> mid, from subscribe_offer
        self.slots: dict[str, dict[str, Any]] = {}  # slot -> latest {slot, mid, participant_id, layer}
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._pings_out = 0

    async def __aenter__(self) -> RoomClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- signalling

    async def connect(self, timeout: float = 5.0) -> None:
        self.ws = await connect(
            self.url,
            additional_headers=self.headers,
            origin=Origin(self.origin) if self.origin else None,
            open_timeout=timeout,
            close_timeout=2,
            ping_interval=None,  # only what the test sends: the server's heartbeat is app-level
            max_size=2**20,
            proxy=None,  # never an HTTP(S)_PROXY from the environment
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = {"type": "_raw", "data": raw}
                if not isinstance(message, dict):
                    message = {"type": "_raw", "data": message}
                await self._deliver(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self._closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def _deliver(self, message: dict[str, Any]) -> None:
        self.history.append(message)
        kind = message.get("type")
        if kind == "slots":
            for entry in message.get("slots", []):
                self.slots[entry["slot"]] = entry
        if kind == "pong" and self._pings_out > 0:
            self._pings_out -= 1  # an answer to our own heartbeat: not an event for the test
            return
        async with self._changed:
            self.events.append(message)
            self._changed.notify_all()

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(message))

    async def send_raw(self, text: str | bytes) -> None:
        if self.ws is None:
            raise RuntimeError("not connected")
        await asyncio.wait_for(self.ws.send(text), 5)

    async def recv(self, type: str | Iterable[str] | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of ``type`` (a name, several, or any), waiting at most ``timeout``;
        earlier messages of other types stay in ``self.events``."""
        wanted = None if type is None else {type} if isinstance(type, str) else set(type)
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    while True:
                        for i, message in enumerate(self.events):
                            if wanted is None or message.get("type") in wanted:
                                return self.events.pop(i)
                        if self._closed.is_set():
                            raise SignalClosed(self.close_code, self.close_reason)
                        await self._changed.wait()
        except TimeoutError:
            pending = [m.get("type") for m in self.events]
            raise TimeoutError(f"no {type or 'message'} within {timeout}s (pending: {pending})") from None

    async def _request(self, message: dict[str, Any], answer: str, timeout: float) -> dict[str, Any]:
        await self.send(message)
        reply = await self.recv((answer, "error"), timeout)
        if reply["type"] == "error":
            raise SignalError(reply)
        return reply

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """The close code, once the server has closed the socket."""
        await asyncio.wait_for(self._closed.wait(), timeout)
        return self.close_code

    async def join(self, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Send ``join`` (protocol 1 unless given) and return ``welcome``; raises SignalError."""
        welcome = await self._request({"type": "join", "protocol": 1, **fields}, "welcome", timeout)
        self.welcome = welcome
        if self.auto_ping:
            heartbeat = float(welcome.get("heartbeat") or 15)
            self._pinger = asyncio.create_task(self._ping_every(heartbeat / 3))
        return welcome

    @property
    def participant_id(self) -> str | None:
        return self.welcome["you"]["id"] if self.welcome else None

    async def _ping_every(self, interval: float) -> None:
        while not self._closed.is_set():
            await asyncio.sleep(interval)
            self._pings_out += 1
            with contextlib.suppress(Exception):
                await self.send({"type": "ping"})

    async def leave(self, timeout: float = 5.0) -> int | None:
        await self.send({"type": "leave"})
        return await self.wait_closed(timeout)

    # -- publishing

    async def publish(
        self,
        brightness: str | None = "mid",
        layers: Sequence[str] = ("camera", "camera_small"),
        audio: str | None = "quiet",
        *,
        stream: str = "camera",
        timeout: float = 10.0,
        tracks: dict[str, MediaStreamTrack] | None = None,
    ) -> Publication:
        """Publish the ``brightness`` clip on each of ``layers`` and the ``audio`` PCM (None: no
        video / no audio) as ``stream``; returns once the connection is up. ``tracks`` (by kind:
        "camera", "camera_small", "audio"…) are published instead of the clips when given."""
        if tracks is not None:
            return await self._publish(stream, dict(tracks), timeout)
        clips = self._need_clips()
        tracks = {}
        if brightness is not None:
            for kind in layers:
                tracks[kind] = EncodedVideoTrack(clips.packets(brightness, TRACK_LAYERS[kind]))
        if audio is not None:
            tracks["audio"] = PcmAudioTrack(clips.pcm(audio))
        return await self._publish(stream, tracks, timeout)

    async def publish_screen(self, brightness: str = "bright", timeout: float = 10.0) -> Publication:
        clips = self._need_clips()
        track = EncodedVideoTrack(clips.packets(brightness, TRACK_LAYERS["screen"]))
        return await self._publish("screen", {"screen": track}, timeout)

    def set_audio(self, name: str) -> None:
        """Switch the published microphone to another PCM ("loud", "quiet", "silent")."""
        track = self.publications["camera"].tracks["audio"]
        assert isinstance(track, PcmAudioTrack)
        track.pcm = self._need_clips().pcm(name)

    async def unpublish(self, stream: str = "camera") -> None:
        await self.send({"type": "unpublish", "stream": stream})
        publication = self.publications.pop(stream, None)
        if publication:
            await _bounded(publication.pc.close())

    def _need_clips(self) -> Clips:
        if self.clips is None:
            raise RuntimeError("RoomClient(clips=...) is needed to publish")
        return self.clips

    async def _publish(self, stream: str, tracks: dict[str, MediaStreamTrack], timeout: float) -> Publication:
        pc = loopback_peer_connection()
        publication = Publication(stream, pc)
        try:
            transceivers = {}
            for kind, track in tracks.items():
                transceiver = pc.addTransceiver(track, direction="sendonly")
                if track.kind == "video":
                    prefer_codec(transceiver, self._need_clips().codec)
                    self._count_requests(transceiver.sender, kind, track)
                transceivers[kind] = transceiver
                publication.tracks[kind] = track
                publication.senders[kind] = transceiver.sender
            await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), timeout)
            publication.mids = {t.mid: kind for kind, t in transceivers.items() if t.mid is not None}
            message = {"type": "publish", "stream": stream, "sdp": pc.localDescription.sdp, "tracks": publication.mids}
            answer = await self._request(message, "publish_answer", timeout)
            await pc.setRemoteDescription(loopback_description(answer["sdp"], "answer"))
            await wait_connected(pc, timeout)
        except BaseException:
            await _bounded(pc.close())
            raise
        previous = self.publications.get(stream)
        self.publications[stream] = publication
        if previous is not None:
            await _bounded(previous.pc.close())
        return publication

    def _count_requests(self, sender: RTCRtpSender, kind: str, track: MediaStreamTrack) -> None:
        self.keyframe_requests.setdefault(kind, 0)

        def on_request() -> None:
            self.keyframe_requests[kind] += 1
            if isinstance(track, EncodedVideoTrack):
                track.request_keyframe()

        count_keyframe_requests(sender, on_request)

    # -- subscribing

    async def subscribe(self, timeout: float = 10.0, tap: Callable[[RTCPeerConnection], None] | None = None) -> dict[str, Any]:
        """Ask for the receiving connection, answer it, and decode every track it carries.
        Returns the ``subscribe_offer``; a second call replaces the connection. With ``tap``,
        nothing is decoded: ``tap`` gets the connection before the answer goes out."""
        offer = await self._request({"type": "subscribe"}, "subscribe_offer", timeout)
        await self._drop_subscriber()
        pc = loopback_peer_connection()
        self.subscriber = pc
        try:
            await pc.setRemoteDescription(loopback_description(offer["sdp"], "offer"))
            await asyncio.wait_for(pc.setLocalDescription(await pc.createAnswer()), timeout)
        except BaseException:
            await self._drop_subscriber()
            raise
        self.slot_mids = {s["slot"]: s["mid"] for s in offer.get("slots", [])}
        slot_of = {mid: slot for slot, mid in self.slot_mids.items()}
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            if mid is None or tap is not None:
                continue
            track = transceiver.receiver.track
            stats = TrackStats(mid=mid, kind=track.kind, slot=slot_of.get(mid))
            self.received[mid] = stats
            self._consumers.append(asyncio.create_task(consume(track, stats)))
        if tap is not None:
            tap(pc)
        await self.send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})
        return offer

    async def _drop_subscriber(self) -> None:
        for task in self._consumers:
            task.cancel()
        self._consumers = []
        self.received = {}
        if self.subscriber is not None:
            pc, self.subscriber = self.subscriber, None
            await _bounded(pc.close())

    def slot_stats(self, slot: str) -> TrackStats:
        """Statistics of the track carrying ``slot`` ("main", "thumb1", "screen", "audio1"…)."""
        return self.received[self.slot_mids[slot]]

    def source(self, slot: str) -> str | None:
        """The participant the latest ``slots`` message names for ``slot``."""
        entry = self.slots.get(slot)
        return entry.get("participant_id") if entry else None

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        return await wait_until(predicate, timeout, what)

    # -- the end

    async def close(self) -> None:
        """Close both media sides and the socket; bounded, never raises."""
        if self._pinger is not None:
            self._pinger.cancel()
        await self._drop_subscriber()
        for publication in list(self.publications.values()):
            await _bounded(publication.pc.close())
        self.publications = {}
        if self.ws is not None:
            await _bounded(self.ws.close(), 3)
        if self._reader is not None:
            self._reader.cancel()
            await _bounded(asyncio.gather(self._reader, return_exceptions=True), 2)
