"""The capacity benchmark's load generator: one presenter process and receiver processes, the
same code against both SFUs (only joining differs).

The presenter publishes the clips of ``bench.clips`` — VP8 1280×720 (~1.5 Mbit/s) and 320×180
(~150 kbit/s) at 30 fps, and Opus — replayed, never encoded. Each full-layer frame gets the
8-byte big-endian ``time.monotonic_ns()`` at its end just before aiortc's sender packetizes it
(CLOCK_MONOTONIC is one clock for every process of the machine), so receivers can tell the
latency from the marker packet's last 8 bytes. Keyframe requests are honoured at most once per
``keyframe_interval`` per layer, as libwebrtc's sender does (both SFUs pass subscribers' PLIs on).

Each receiver joins as a ward room does — muted, publishing a microphone that sends Opus
silence 50 times a second — and receives the presenter's full video and audio without decoding
(``bench.receivers``). Our SFU: ``join`` with ``muted`` true, ``camera`` false and no thumbnails, a
``camera`` stream with only an ``audio`` track, and the subscription (main video slot, audio
slots). Janus: one session per receiver, an audio-only publisher in the VideoRoom and a
subscriber to the presenter's full video and audio only.

A process talks to the coordinator through a queue — ``(kind, pid, data)`` messages: "ready",
"done", "error" — and follows two events: ``announced`` (the measuring window's start and end,
on the machine's monotonic clock, are in ``Window.times``) and ``release`` (close everything and
exit). The window is the same for every process and for the coordinator's CPU readings: counters
are read at its start and end, and frames count when their stamp falls in it — so the presenter's
and the receivers' frame counts match exactly, whatever the delays. Every wait is bounded; a
process also ends if the coordinator dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue as queues
import re
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from bench import clips as media
from bench.receivers import stamped as stamp_frame
from tests.support.rtc_client import EncodedVideoTrack, _Pacer

LEVEL_LOUD_DBOV = -9  # the "loud" tone's RFC 6464 level (peak −6 dBFS, RMS 3 dB lower)
READY_TIMEOUT = 30.0  # for a receiver's first packet once joined
LIFETIME = 3600.0  # no process of a run lives longer


@dataclass(frozen=True)
class Presenter:
    """How the presenter joins: ``sfu`` "giaoban" (``url`` = WebSocket base, ``meeting``, ``token``)
    or "janus" (``url`` = HTTP API, ``room``)."""

    sfu: str
    url: str
    meeting: int = 0
    token: str = ""
    room: int = 0
    keyframe_interval: float = 0.3


@dataclass(frozen=True)
class Receivers:
    """A receiver process's share: ``tokens`` (ours) or ``count`` Janus sessions on ``room``'s
    ``feed`` (``mids``: the presenter's full video and audio)."""

    sfu: str
    url: str
    meeting: int = 0
    tokens: tuple[str, ...] = ()
    room: int = 0
    feed: int = 0
    mids: tuple[str, ...] = ()
    count: int = 0
    concurrency: int = 4
    rcvbuf: int = 0
    audio_sender: str = "lean"  # "lean" (bench.receivers.MutedAudioPump) or "aiortc" (its sender)

    @property
    def size(self) -> int:
        return len(self.tokens) if self.sfu == "giaoban" else self.count


GRACE = 1.0  # seconds after the window for its last frames to arrive (and be read)


@dataclass
class Window:
    """The coordinator's multiprocessing events, and the window's [start, end) in monotonic ns."""

    announced: Any
    release: Any
    times: Any  # multiprocessing Array('q', 2)

    def set(self, start_ns: int, end_ns: int) -> None:
        self.times[0], self.times[1] = start_ns, end_ns
        self.announced.set()

    async def wait(self) -> tuple[int, int] | None:
        """The window once announced (None if released first or never)."""
        if not await _wait(self.announced, LIFETIME) or self.release.is_set():
            return None
        return int(self.times[0]), int(self.times[1])


async def _until(ns: int) -> None:
    await asyncio.sleep(max(0.0, (ns - time.monotonic_ns()) / 1e9))


# -- tracks -------------------------------------------------------------------------------------


class BenchVideoTrack(EncodedVideoTrack):
    """Replays a clip at the clip's frame rate; ``stamp``: ends each frame with monotonic_ns;
    keyframe requests closer than ``keyframe_interval`` to the last honoured one are dropped."""

    def __init__(self, packets: list[Any], fps: int, stamp: bool, keyframe_interval: float) -> None:
        super().__init__(packets, fps=fps)
        self.stamp = stamp
        self.keyframe_interval = keyframe_interval
        self.keyframe_requests = 0
        self.keyframes_sent = 0
        self._last_keyframe = -1e9
        self.window = (0, 0)  # frames stamped in [start, end) are counted in ``in_window``
        self.in_window = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        now = time.monotonic()
        if now - self._last_keyframe >= self.keyframe_interval:
            self._last_keyframe = now
            self.keyframes_sent += 1
            super().request_keyframe()

    async def recv(self) -> av.Packet[Any]:
        packet = await super().recv()
        if not self.stamp:
            return packet
        now = time.monotonic_ns()
        if self.window[0] <= now < self.window[1]:
            self.in_window += 1
        stamped = av.Packet(stamp_frame(bytes(packet), now))
        stamped.pts = stamped.dts = packet.pts
        stamped.time_base = packet.time_base
        return stamped


class OpusTrack(MediaStreamTrack):
    """Replays 20 ms Opus packets forever (aiortc's sender only packs them)."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self.sent = 0
        self._pacer = _Pacer(0.02)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.next()
        packet = av.Packet(self.packets[n % len(self.packets)])
        packet.pts = packet.dts = n * media.OPUS_FRAME
        packet.time_base = media.AUDIO_TIME_BASE
        self.sent += 1
        return packet


def payload_types(sdp: str, encoding: str) -> set[int]:
    """The payload types an SDP maps to ``encoding`` ("VP8/90000", "opus/48000")."""
    return {int(pt) for pt in re.findall(rf"^a=rtpmap:(\d+) {re.escape(encoding)}", sdp, re.M | re.I)}


# -- the process around it ----------------------------------------------------------------------


def run_process(role: str, spec: Presenter | Receivers, out: Any, window: Window) -> None:
    """A child process's body: ``role`` "presenter" or "receivers"."""
    from bench.measure import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator ends the run, Ctrl-C or not
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # about 5 µs of loop per received datagram, where asyncio's own takes 30

        runner = uvloop.run
    body = present(spec, out, window) if role == "presenter" else receive(spec, out, window)  # type: ignore[arg-type]
    try:
        runner(asyncio.wait_for(body, LIFETIME))
    except BaseException as e:
        out.put(("error", os.getpid(), f"{role}: {type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"))
        raise SystemExit(1) from None


async def _wait(event: Any, timeout: float) -> bool:
    return bool(await asyncio.to_thread(event.wait, timeout))


async def _bounded(awaitable: Any, timeout: float = 5.0) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(awaitable, timeout)


# -- the presenter ------------------------------------------------------------------------------


async def present(spec: Presenter, out: Any, window: Window) -> None:
    from bench.receivers import set_audio_level
    from tests.support.rtc_client import count_keyframe_requests, prefer_codec

    clips = media.bench_clips()
    video = clips.video()
    full = BenchVideoTrack(video.packets(media.BRIGHTNESS, "full"), media.FPS, True, spec.keyframe_interval)
    small = BenchVideoTrack(video.packets(media.BRIGHTNESS, "small"), media.FPS, False, spec.keyframe_interval)
    audio = OpusTrack(clips.opus("loud"))
    info: dict[str, Any] = {}
    closers: list[Any] = []
    try:
        if spec.sfu == "giaoban":
            from tests.support.rtc_client import RoomClient

            client = RoomClient(spec.url, spec.meeting, token=spec.token, clips=video)
            closers.append(client.close)
            await client.connect()
            welcome = await client.join()
            publication = await client.publish(tracks={"camera": full, "camera_small": small, "audio": audio}, timeout=20)
            set_audio_level(publication.senders["audio"], LEVEL_LOUD_DBOV)
            info["occurrence"] = welcome["meeting"]["occurrence"]
        else:
            from bench.janus import JanusSession
            from tests.support.rtc_client import loopback_description, loopback_peer_connection, wait_connected

            session = await JanusSession(spec.url).create()
            closers.append(session.destroy)
            handle = await session.attach()
            pc = loopback_peer_connection()
            closers.insert(0, pc.close)
            mids: dict[str, Any] = {}
            for name, track in (("full", full), ("small", small), ("audio", audio)):
                transceiver = pc.addTransceiver(track, direction="sendonly")
                if isinstance(track, BenchVideoTrack):
                    prefer_codec(transceiver, media.CODEC)
                    count_keyframe_requests(transceiver.sender, track.request_keyframe)
                else:
                    set_audio_level(transceiver.sender, LEVEL_LOUD_DBOV)
                mids[name] = transceiver
            await pc.setLocalDescription(await pc.createOffer())
            feed, answer = await handle.publish(spec.room, pc.localDescription.sdp, timeout=20)
            await pc.setRemoteDescription(loopback_description(answer, "answer"))
            await wait_connected(pc, 20)
            info.update(feed=feed, mids=[mids["full"].mid, mids["audio"].mid])
        out.put(("ready", os.getpid(), info))
        times = await window.wait()
        if times is not None:
            full.window = times
            await _until(times[0])
            audio0 = audio.sent
            await _until(times[1])
            audio1 = audio.sent
            await asyncio.sleep(GRACE)
            out.put(("done", os.getpid(), {
                "frames": full.in_window, "audio_packets": audio1 - audio0,
                "keyframe_requests": {"full": full.keyframe_requests, "small": small.keyframe_requests},
                "keyframes_on_request": {"full": full.keyframes_sent, "small": small.keyframes_sent},
            }))
        await _wait(window.release, LIFETIME)
    finally:
        for closer in closers:
            await _bounded(closer())


# -- the receivers ------------------------------------------------------------------------------


@dataclass
class _Endpoint:
    tap: Any
    started: float  # monotonic_ns when its signalling began
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)  # first first
    pcs: list[Any] = field(default_factory=list)
    microphone: Any = None


def _muted_sent(pump: Any, endpoints: list[_Endpoint]) -> int:
    """Silent packets sent so far, by the pump or by aiortc's senders (``OpusTrack.sent``)."""
    return int(pump.sent + sum(getattr(e.microphone, "sent", 0) for e in endpoints))


async def receive(spec: Receivers, out: Any, window: Window) -> None:
    from bench.receivers import MutedAudioPump, Recorder, quiet_receivers, srtp_profile

    quiet_receivers()
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    pump = MutedAudioPump(deadline=loop.time() + LIFETIME)
    silence = media.bench_clips().opus("silent")
    silent_packet = silence[len(silence) // 2]
    endpoints: list[_Endpoint] = []
    errors: list[str] = []
    shared: dict[str, Any] = {}
    gate = asyncio.Semaphore(max(1, spec.concurrency))

    async def one(index: int) -> None:
        async with gate:
            try:
                join = _join_giaoban if spec.sfu == "giaoban" else _join_janus
                endpoints.append(await join(spec, index, recorder, pump, silent_packet, shared))
            except Exception as e:  # report, carry on with the others
                errors.append(f"{type(e).__name__}: {e}")

    try:
        await asyncio.gather(*(one(i) for i in range(spec.size)))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and any(not e.tap.first_packet_ns for e in endpoints):
            await asyncio.sleep(0.1)
        joins = sorted((e.tap.first_packet_ns - e.started) / 1e9 for e in endpoints if e.tap.first_packet_ns)
        profiles = sorted({srtp_profile(pc) for e in endpoints for pc in e.pcs} - {""})
        out.put(("ready", os.getpid(), {"joined": len(endpoints), "receiving": len(joins), "errors": errors[:5],
                                        "srtp_profiles": profiles}))
        times = await window.wait()
        if times is not None:
            recorder.window = times
            await _until(times[0])
            before = [e.tap.snapshot() for e in endpoints]
            packets0, sent0 = sum(e.tap.packets for e in endpoints), _muted_sent(pump, endpoints)
            await _until(times[1])
            expected = received = 0
            for endpoint, snapshot in zip(endpoints, before, strict=True):
                e, r = endpoint.tap.since(snapshot)
                expected, received = expected + e, received + r
            packets, sent = sum(e.tap.packets for e in endpoints) - packets0, _muted_sent(pump, endpoints) - sent0
            await asyncio.sleep(GRACE)  # the window's last frames
            out.put(("done", os.getpid(), {
                "expected": expected, "received": received, "packets": packets,
                "frames": sum(e.tap.frames for e in endpoints), "latencies_us": [v // 1000 for v in recorder.latencies],
                "join_times": joins, "muted_audio_sent": sent, "muted_audio_errors": pump.errors,
                "connected": sum(all(pc.connectionState == "connected" for pc in e.pcs) for e in endpoints),
            }))
        await _wait(window.release, LIFETIME)
    finally:
        await pump.stop()
        await asyncio.gather(*(_close(e) for e in endpoints))
        if "http" in shared:
            await _bounded(shared["http"].aclose())


async def _close(endpoint: _Endpoint) -> None:
    for closer in endpoint.closers:
        await _bounded(closer())


def _subscriber_tap(recorder: Any, holder: dict[str, Any]) -> Any:
    from bench.receivers import tap_subscriber

    def tap(pc: Any) -> None:
        holder["tap"] = tap_subscriber(pc, payload_types(pc.remoteDescription.sdp, "VP8/90000"), recorder)

    return tap


async def _mute(pc: Any, spec: Receivers, pump: Any, silent_packet: bytes) -> None:
    """Once ``pc`` (publishing a SilentTrack, or an OpusTrack for ``audio_sender`` "aiortc") is up."""
    if spec.audio_sender != "lean":
        return
    transceiver = pc.getTransceivers()[0]
    pt = min(payload_types(pc.localDescription.sdp, "opus/48000"))
    pump.add(pc, transceiver.sender, silent_packet, pt, transceiver.mid)


def _microphone(spec: Receivers, silent_packet: bytes) -> Any:
    from bench.receivers import SilentTrack

    return SilentTrack() if spec.audio_sender == "lean" else OpusTrack([silent_packet])


async def _join_giaoban(spec: Receivers, index: int, recorder: Any, pump: Any, silent_packet: bytes,
                        shared: dict[str, Any]) -> _Endpoint:
    from bench.receivers import set_receive_buffer
    from tests.support.rtc_client import RoomClient

    started = time.monotonic_ns()
    client = RoomClient(spec.url, spec.meeting, token=spec.tokens[index])
    holder: dict[str, Any] = {}
    try:
        await client.connect(timeout=20)
        await client.join(timeout=20, thumbnails=0, muted=True, camera=False)
        await client.subscribe(timeout=20, tap=_subscriber_tap(recorder, holder))
        assert client.subscriber is not None
        if spec.rcvbuf:
            set_receive_buffer(client.subscriber, spec.rcvbuf)
        microphone = _microphone(spec, silent_packet)
        publication = await client.publish(tracks={"audio": microphone}, timeout=20)
        await _mute(publication.pc, spec, pump, silent_packet)
    except BaseException:
        await _bounded(client.close())
        raise
    return _Endpoint(holder["tap"], started, [client.close], [client.subscriber, publication.pc], microphone)


async def _join_janus(spec: Receivers, index: int, recorder: Any, pump: Any, silent_packet: bytes,
                      shared: dict[str, Any]) -> _Endpoint:
    import httpx

    from bench.janus import JanusSession
    from bench.receivers import set_receive_buffer
    from tests.support.rtc_client import loopback_description, loopback_peer_connection, wait_connected

    if "http" not in shared:  # one long-poll per session stays open: no connection limit
        shared["http"] = httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=None,
                                                                          max_keepalive_connections=2 * spec.count + 4))
    started = time.monotonic_ns()
    session = await JanusSession(spec.url, shared["http"], timeout=20).create()
    endpoint = _Endpoint(None, started, [session.destroy])
    try:
        subscriber = await session.attach()
        offer = await subscriber.subscribe(spec.room, spec.feed, list(spec.mids))
        pc = loopback_peer_connection()
        endpoint.closers.insert(0, pc.close)
        endpoint.pcs.append(pc)
        await pc.setRemoteDescription(loopback_description(offer, "offer"))
        await asyncio.wait_for(pc.setLocalDescription(await pc.createAnswer()), 20)
        holder: dict[str, Any] = {}
        _subscriber_tap(recorder, holder)(pc)
        endpoint.tap = holder["tap"]
        if spec.rcvbuf:
            set_receive_buffer(pc, spec.rcvbuf)
        await subscriber.start(pc.localDescription.sdp)

        publisher = await session.attach()
        mic = loopback_peer_connection()
        endpoint.closers.insert(0, mic.close)
        endpoint.pcs.append(mic)
        endpoint.microphone = _microphone(spec, silent_packet)
        mic.addTransceiver(endpoint.microphone, direction="sendonly")
        await mic.setLocalDescription(await mic.createOffer())
        _, answer = await publisher.publish(spec.room, mic.localDescription.sdp, display=f"ward {os.getpid()}-{index}")
        await mic.setRemoteDescription(loopback_description(answer, "answer"))
        await wait_connected(mic, 20)
        await _mute(mic, spec, pump, silent_packet)
    except BaseException:
        await _close(endpoint)
        raise
    return endpoint


# -- the coordinator's side -----------------------------------------------------------------------


class Fleet:
    """The presenter and receiver processes of one run, started with multiprocessing's spawn."""

    def __init__(self) -> None:
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.queue: Any = self.context.Queue()
        self.window = Window(self.context.Event(), self.context.Event(), self.context.Array("q", 2))
        self.presenter: Any = None
        self.receivers: list[Any] = []
        self._backlog: list[tuple[str, int, Any]] = []  # messages nobody asked for yet

    @property
    def processes(self) -> list[Any]:
        return ([self.presenter] if self.presenter is not None else []) + self.receivers

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def _start(self, role: str, spec: Presenter | Receivers) -> Any:
        process = self.context.Process(target=run_process, args=(role, spec, self.queue, self.window), daemon=True,
                                       name=f"bench-{role}")
        process.start()
        return process

    def start_presenter(self, spec: Presenter, timeout: float = 60) -> dict[str, Any]:
        self.presenter = self._start("presenter", spec)
        return dict(self.collect("ready", [self.presenter], timeout)[0])

    def start_receivers(self, specs: list[Receivers], timeout: float) -> list[dict[str, Any]]:
        group = [self._start("receivers", spec) for spec in specs if spec.size]
        self.receivers += group
        return self.collect("ready", group, timeout)

    def collect(self, kind: str, processes: list[Any], timeout: float) -> list[Any]:
        """One ``kind`` message from each of ``processes`` (in their order), within ``timeout``;
        raises as soon as one reports an error or dies."""
        wanted = {p.pid for p in processes}
        got: dict[int, Any] = {}
        for item in list(self._backlog):
            if item[0] == kind and item[1] in wanted:
                self._backlog.remove(item)
                got[item[1]] = item[2]
        deadline = time.monotonic() + timeout
        while len(got) < len(wanted):
            try:
                message, pid, data = self.queue.get(True, 0.5)
            except queues.Empty:
                dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    reasons = [data for message, _, data in self._backlog if message == "error"]
                    raise RuntimeError(f"a load generator process died (exit codes {dead}) before '{kind}'"
                                       + (f": {reasons[0]}" if reasons else "")) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(got)} of {len(wanted)} load generator processes sent '{kind}' "
                                       f"within {timeout:.0f}s") from None
                continue
            if message == "error":
                raise RuntimeError(f"load generator process {pid} failed: {data}")
            if message == kind and pid in wanted:
                got[pid] = data
            else:
                self._backlog.append((message, pid, data))
        return [got[p.pid] for p in processes]

    def stop(self, grace: float = 20.0) -> None:
        """Release every process, wait for it (bounded), then terminate and kill what is left."""
        self.window.release.set()
        self.window.announced.set()
        deadline = time.monotonic() + grace
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(3)
            if process.is_alive():
                process.kill()
                process.join(3)
        self.queue.close()
        self.queue.join_thread()

