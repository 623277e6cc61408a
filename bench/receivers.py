"""The capacity benchmark's lean endpoints: every use of aiortc's and aioice's PRIVATE parts in
``bench/`` is in this module (aiortc 1.16.0, aioice 0.13.0, both pinned in pyproject.toml).

Receivers use aiortc peer connections for what a browser negotiates — ICE, DTLS, the SRTP keys —
and then leave aiortc's per-packet path, which would cost the load generator more CPU than the
SFU spends forwarding (aioice's ``StunProtocol.datagram_received`` tries a STUN parse, queues the
datagram; ``RTCDtlsTransport._recv_next`` unprotects it, ``RtpPacket.parse`` and the router hand
it to the receiver's jitter buffer, NACK generator and decoder thread):

- ``tap_subscriber`` puts a direct handler on the instance of each of the connection's aioice
  ``StunProtocol`` (``datagram_received`` is looked up on the protocol for every datagram): SRTP
  packets are unprotected with the DTLS transport's ``_rx_srtp`` session and only the 12-byte RTP
  header is read (sequence number and SSRC, for loss from sequence gaps per SSRC), plus, on video
  packets carrying the marker bit, the presenter's 8-byte ``time.monotonic_ns()`` stamp at the end
  of the frame. The latency runs from that stamp to the packet's arrival in the receiver's socket,
  which the kernel records (the SIOCGSTAMPNS ioctl: the last datagram read from the socket, i.e.
  this one, as the event loop reads one datagram per callback), so a load generator that falls
  behind does not add its own delay. STUN, DTLS and SRTCP (byte 1 in 192–208, aiortc's
  ``is_rtcp``) still take aiortc's path.
  Receivers send no NACK and no receiver report: loss is the network's and the SFU's.
- ``MutedAudioPump`` is the muted microphone of every receiver of a process: one task that every
  20 ms stamps a prebuilt silent Opus RTP packet (the sender's SSRC, MID and RFC 6464 level 127
  extensions, serialized with the DTLS transport's ``_rtp_header_extensions_map``) with each
  receiver's own sequence number and timestamp, protects it with the transport's ``_tx_srtp`` and
  sends it on aioice's nominated pair (``Connection._nominated``). aiortc's own sender for that
  track waits on a track that never yields (its RTCP sender reports still go out).
- ``stamped`` ends a frame with the latency stamp so that aiortc's VP8 packetizer
  (``Vp8Encoder._packetize``: chunks of ``PACKET_MAX`` minus the payload descriptor) puts all
  8 bytes in the frame's last (marker) packet.
- ``set_audio_level`` makes an aiortc sender put an RFC 6464 level on pre-encoded audio (aiortc
  computes levels only from the PCM it encodes): it wraps the sender's ``_next_encoded_frame``.
- ``set_receive_buffer`` sets SO_RCVBUF on a connection's aioice sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from pylibsrtp import Error as SrtpError

STAMP_BYTES = 8
MAX_LATENCY_NS = 5_000_000_000  # a stamp further back than this is not one
SIOCGSTAMPNS = 0x8907  # Linux: the arrival time (CLOCK_REALTIME) of the last datagram read
_TIMESPEC = struct.Struct("@qq")
_SEQ_SSRC = struct.Struct("!2xH4xI")  # sequence number and SSRC from the 12-byte RTP header
_SEQ_TS = struct.Struct("!HI")


# aiortc's VP8 payload descriptor: 3 bytes with a 7-bit picture ID, 4 with a 15-bit one
_VP8_CHUNKS = (PACKET_MAX - 3, PACKET_MAX - 4)


def stamped(frame: bytes, now_ns: int) -> bytes:
    """``frame`` ending with ``now_ns`` (8 bytes, big-endian), zeros put before the stamp where
    the packetizer would otherwise split it over the last two RTP packets."""
    pad = 0
    while any(0 < (len(frame) + pad + STAMP_BYTES) % chunk < STAMP_BYTES for chunk in _VP8_CHUNKS):
        pad += 1
    return frame + bytes(pad) + now_ns.to_bytes(STAMP_BYTES, "big")


def quiet_receivers() -> None:
    """This process's aiortc receivers start a decoder thread that returns at once."""

    def no_decoder(*args: object) -> None:
        return None

    rtcrtpreceiver.decoder_worker = no_decoder


# -- receiving --------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What every tap of one process shares: the measuring window [start, end) in monotonic ns;
    the latency (ns) of each video frame stamped in it (at most ``limit`` kept)."""

    window: tuple[int, int] = (0, 0)
    latencies: array[int] = field(default_factory=lambda: array("q"))
    limit: int = 5_000_000  # 40 MB

    def add(self, latency: int) -> None:
        if len(self.latencies) < self.limit:
            self.latencies.append(latency)


@dataclass
class ReceiverTap:
    """One subscriber's counters, kept by its datagram handler.

    ``streams``: SSRC → [highest extended sequence number, packets received, first sequence
    number]; ``state``: [monotonic_ns of the first RTP packet (0: none yet), video frames stamped
    in the recorder's window, packets received]."""

    streams: dict[int, list[int]] = field(default_factory=dict)
    state: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def first_packet_ns(self) -> int:
        return self.state[0]

    @property
    def frames(self) -> int:
        return self.state[1]

    @property
    def packets(self) -> int:
        return self.state[2]

    def snapshot(self) -> dict[int, tuple[int, int]]:
        """SSRC → (highest extended sequence number, packets received) now."""
        return {ssrc: (s[0], s[1]) for ssrc, s in self.streams.items()}

    def since(self, before: dict[int, tuple[int, int]]) -> tuple[int, int]:
        """(expected, received) packets since ``before`` (a ``snapshot``), over all SSRCs: a stream
        that began since then is expected from its first sequence number."""
        expected = received = 0
        for ssrc, s in self.streams.items():
            high, count = before.get(ssrc, (s[2] - 1, 0))
            expected += s[0] - high
            received += s[1] - count
        return expected, received


def _dtls_transports(pc: RTCPeerConnection) -> list[Any]:
    found: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is not None:
                found[id(transport)] = transport
    return list(found.values())


async def _no_rtp(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
    return None


def tap_subscriber(pc: RTCPeerConnection, video_payload_types: Iterable[int], recorder: Recorder) -> ReceiverTap:
    """Count what arrives on ``pc`` (call it once its local description is set, before media flows)."""
    tap = ReceiverTap()
    for transceiver in pc.getTransceivers():
        transceiver.receiver._handle_rtp_packet = _no_rtp
    for dtls in _dtls_transports(pc):
        for protocol in dtls.transport._connection._protocols:
            fd = _arrival_stamps(protocol)
            handler = _handler(dtls, protocol.datagram_received, tap, frozenset(video_payload_types), recorder, fd)
            protocol.datagram_received = handler
    return tap


def _arrival_stamps(protocol: Any) -> int:
    """The descriptor of ``protocol``'s socket, with the kernel's receive timestamps on (the first
    SIOCGSTAMPNS turns them on); -1 when there is none."""
    sock = protocol.transport.get_extra_info("socket")
    if sock is None:
        return -1
    with contextlib.suppress(OSError):
        fcntl.ioctl(sock.fileno(), SIOCGSTAMPNS, bytes(_TIMESPEC.size))
    return int(sock.fileno())


def _handler(dtls: Any, original: Any, tap: ReceiverTap, video: frozenset[int], recorder: Recorder, fd: int) -> Any:
    streams, state = tap.streams, tap.state
    unpack_seq_ssrc = _SEQ_SSRC.unpack_from
    now_ns = time.monotonic_ns
    wall_ns = time.time_ns
    from_bytes = int.from_bytes
    add = recorder.add
    ioctl, unpack_timespec, empty = fcntl.ioctl, _TIMESPEC.unpack, bytes(_TIMESPEC.size)

    def arrival() -> int:
        """When the datagram being handled reached the socket, on the monotonic clock."""
        now = now_ns()
        if fd >= 0:
            try:
                seconds, nanoseconds = unpack_timespec(ioctl(fd, SIOCGSTAMPNS, empty))
            except OSError:
                return now
            return int(seconds * 1_000_000_000 + nanoseconds - (wall_ns() - now))
        return now

    def datagram_received(data: bytes, addr: Any) -> None:
        srtp = dtls._rx_srtp
        if srtp is None or not 127 < data[0] < 192 or 191 < data[1] < 209:
            original(data, addr)  # STUN, DTLS, SRTCP: aiortc's path
            return
        try:
            data = srtp.unprotect(data)
        except SrtpError:
            return
        seq, ssrc = unpack_seq_ssrc(data)
        stream = streams.get(ssrc)
        if stream is None:
            streams[ssrc] = [seq, 1, seq]
            if not state[0]:
                state[0] = now_ns()
        else:
            delta = (seq - stream[0]) & 0xFFFF
            if delta < 0x8000:
                stream[0] += delta
            stream[1] += 1
        state[2] += 1
        second = data[1]
        if second > 127 and (second & 0x7F) in video and not data[0] & 0x20:
            stamp = from_bytes(data[-STAMP_BYTES:], "big")
            latency = arrival() - stamp
            window = recorder.window
            if 0 < latency < MAX_LATENCY_NS and window[0] <= stamp < window[1]:
                state[1] += 1
                add(latency)

    return datagram_received


def srtp_profile(pc: RTCPeerConnection) -> str:
    """The SRTP protection profile ``pc``'s DTLS handshake chose ("" before it is done)."""
    for dtls in _dtls_transports(pc):
        try:
            return bytes(dtls._ssl.get_selected_srtp_profile() or b"").decode()
        except Exception:
            return ""
    return ""


def set_receive_buffer(pc: RTCPeerConnection, size: int) -> None:
    """SO_RCVBUF of ``pc``'s ICE sockets (the kernel caps it at net.core.rmem_max)."""
    for dtls in _dtls_transports(pc):
        for protocol in dtls.transport._connection._protocols:
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


# -- sending ----------------------------------------------------------------------------------


class SilentTrack(MediaStreamTrack):
    """An audio track that never yields a frame (aiortc's sender waits on it until it stops)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._ended: asyncio.Future[None] | None = None

    async def recv(self) -> Any:
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
        if self.readyState == "live":
            await self._ended
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)


@dataclass
class _Muted:
    buffer: bytearray
    sequence: int
    timestamp: int
    dtls: Any


class MutedAudioPump:
    """Sends each added connection's silent Opus packet every 20 ms from one task, until ``stop``
    or ``deadline`` (loop time); bounded either way."""

    interval = 0.02

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.muted: list[_Muted] = []
        self.sent = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, pc: RTCPeerConnection, sender: RTCRtpSender, payload: bytes, payload_type: int, mid: str | None) -> None:
        """Start sending silence for ``sender`` (of ``pc``, connected): its SSRC, MID and level 127."""
        dtls = sender.transport
        packet = RtpPacket(payload_type=payload_type, sequence_number=0, timestamp=0, ssrc=sender._ssrc, payload=payload)
        packet.extensions.mid = mid
        packet.extensions.audio_level = (False, 127)
        buffer = bytearray(packet.serialize(dtls._rtp_header_extensions_map))
        import random

        self.muted.append(_Muted(buffer, random.randrange(1 << 16), random.randrange(1 << 32), dtls))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        pack_into = _SEQ_TS.pack_into
        while loop.time() < self.deadline:
            for m in self.muted:
                pair = m.dtls.transport._connection._nominated.get(1)
                srtp = m.dtls._tx_srtp
                if pair is None or srtp is None:
                    continue
                pack_into(m.buffer, 2, m.sequence, m.timestamp)
                m.sequence = (m.sequence + 1) & 0xFFFF
                m.timestamp = (m.timestamp + 960) & 0xFFFFFFFF
                try:
                    pair.protocol.transport.sendto(srtp.protect(bytes(m.buffer)), pair.remote_addr)
                    self.sent += 1
                except (OSError, SrtpError, AttributeError):
                    self.errors += 1
            n += 1
            delay = start + n * self.interval - loop.time()
            if delay < -0.5:  # fell far behind: carry on from now, no burst
                start, n = loop.time(), 0
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def set_audio_level(sender: RTCRtpSender, level_dbov: int) -> None:
    """Put ``level_dbov`` (−127…0) as the RFC 6464 level on every packet ``sender`` sends from
    pre-encoded audio (aiortc leaves it out for packets it does not encode itself)."""
    original = sender._next_encoded_frame

    async def next_encoded_frame(codec: Any) -> Any:
        frame = await original(codec)
        if frame is not None and frame.audio_level is None:
            frame.audio_level = level_dbov
        return frame

    sender._next_encoded_frame = next_encoded_frame
