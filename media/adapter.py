"""Every use of aiortc's and aioice's private parts, in one place (pinned: aiortc 1.16.0,
aioice 0.13.0).

The SFU forwards RTP packets and never touches a codec. aiortc negotiates, runs ICE, DTLS and
SRTP, and answers RTCP; its per-packet paths are cut short:

- ``tap_packets`` hands a publisher's packets to the SFU as they arrive (after SRTP, RTX
  unwrapping, NACK generation and receiver statistics) — no depayloading, no jitter buffer;
- ``PacketOutput`` sends a subscriber's stream itself: a 12-byte header and the MID extension
  per packet, SRTP protect, the ICE pair's socket — instead of aiortc's per-frame task,
  ``RtpPacket`` objects and coroutine per packet; it answers NACKs from its own history and
  feeds the sender's RTCP reports;
- ``install()`` (once per process) makes receivers start no decoder thread, turns any attempt
  to get a decoder or an encoder into an error (counted: tests check the SFU makes none), and
  fixes BUNDLE routing (``route_by_mid``);
- ``send_pli`` / ``send_remb`` talk to a publisher; ``on_keyframe_request`` routes a
  subscriber's PLI/FIR to the SFU (aiortc would only set a flag).

``tests/media/test_adapter.py`` pins each seam, so an aiortc upgrade that moves one fails there.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Callable
from typing import Any, NoReturn

import aiortc
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import pylibsrtp
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from media.rtp import MID_URI, mid_extension, one_byte_element, payload_bounds, rtx_payload

AIORTC_VERSION = "1.16.0"


class Counters:
    """What this process's packers sent, and what tried to reach a codec."""

    packets = 0  # forwarded by the SFU (PacketOutput)
    bytes = 0
    retransmitted = 0  # answers to subscribers' NACKs
    dropped = 0  # not sent: no ICE pair yet or the socket buffer full
    direct = 0  # received packets that took the direct path (_DirectPath)
    bad_packets = 0  # received packets that failed SRTP or did not parse
    codec_attempts = 0


def _no_encoder(*args: object) -> NoReturn:
    Counters.codec_attempts += 1
    raise RuntimeError("the SFU never encodes")


def _no_decoder(*args: object) -> NoReturn:
    Counters.codec_attempts += 1
    raise RuntimeError("the SFU never decodes")


def _no_decoder_worker(*args: object) -> None:
    """Stands in for aiortc's decoder thread body: the thread starts and ends at once; packets go
    to the SFU instead (see ``tap_packets``)."""


_STOCK_ROUTE_RTP = RtpRouter.route_rtp


def _route_rtp(self: RtpRouter, packet: RtpPacket) -> Any:
    """aiortc's ``RtpRouter.route_rtp``, plus BUNDLE demultiplexing by MID (RFC 8843 §9.2).

    aiortc registers only a receiver's media SSRC and otherwise routes by payload type, which
    fails as soon as two m-lines of a bundle share payload types — a camera sent in two layers,
    or several slots: their RTX retransmissions (an SSRC announced only in ``ssrc-group:FID``)
    were discarded, so no NACK was ever answered. An unknown SSRC is now learnt from the MID
    header extension first."""
    ssrc_receiver = self.ssrc_table.get(packet.ssrc)
    pt_receivers = self.payload_type_table.get(packet.payload_type, set())
    if ssrc_receiver is not None and ssrc_receiver in pt_receivers:
        return ssrc_receiver
    if ssrc_receiver is None:
        mid = packet.extensions.mid
        mid_receiver = self.mid_table.get(mid) if mid is not None else None
        if mid_receiver is not None and mid_receiver in pt_receivers:
            self.ssrc_table[packet.ssrc] = mid_receiver
            return mid_receiver
        if len(pt_receivers) == 1:
            receiver = next(iter(pt_receivers))
            self.ssrc_table[packet.ssrc] = receiver
            return receiver
    return None


def route_by_mid() -> None:
    """Fix aiortc's BUNDLE routing in this process (the SFU, and aiortc clients in tests)."""
    setattr(RtpRouter, "route_rtp", _route_rtp)


_installed = False


def install() -> None:
    """Switch this process's aiortc to forwarding: no decoder threads, no codecs at all."""
    global _installed
    if aiortc.__version__ != AIORTC_VERSION:
        raise RuntimeError(f"media.adapter is written for aiortc {AIORTC_VERSION}, found {aiortc.__version__}")
    if _installed:
        return
    setattr(rtcrtpreceiver, "decoder_worker", _no_decoder_worker)
    setattr(rtcrtpreceiver, "get_decoder", _no_decoder)
    setattr(rtcrtpsender, "get_encoder", _no_encoder)
    route_by_mid()
    _installed = True


OnPacket = Callable[[int, int, int, int, bytes, "int | None"], None]
"""(ssrc, sequence number, timestamp, marker, payload, RFC 6464 level or None)"""


class _Seen:
    """What aiortc's receive statistics and NACK generator read of a packet."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = self.timestamp = 0


class _DirectPath:
    """RTP of known streams straight from a publisher's sockets to the SFU.

    aiortc's receive path costs ~50 µs a packet on this machine (a STUN parse attempt, a queue
    and a task switch, ``RtpPacket`` and header-extension objects, datetimes): more than
    forwarding the packet to 20 subscribers. Each of the connection's aioice sockets gets a
    ``datagram_received`` that takes SRTP packets of streams already seen (``streams``: SSRC →
    handler, filled by ``tap_packets``), unprotects them with the transport's SRTP session and
    hands them over in the socket's callback. Everything else — STUN, DTLS, RTCP, RTX, a
    stream's first packets — takes aiortc's path as before. An ICE-lite connection on the shared
    port (``media.icelite``) has one such protocol, fed by the mux."""

    def __init__(self, dtls: Any) -> None:
        self.dtls = dtls
        self.streams: dict[int, Callable[[bytes], None]] = {}
        for protocol in dtls.transport._connection._protocols:
            self._hook(protocol)

    @classmethod
    def of(cls, dtls: Any) -> _DirectPath:
        found = getattr(dtls, "_giaoban_direct", None)
        if found is None:
            found = dtls._giaoban_direct = cls(dtls)
        return found

    def _hook(self, protocol: Any) -> None:
        stock = protocol.datagram_received
        streams = self.streams
        dtls = self.dtls

        def datagram_received(data: bytes, addr: Any) -> Any:
            # SRTP (first byte 128–191) but not SRTCP (payload type 192–223), of a known SSRC
            if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224 and dtls._rx_srtp is not None:
                handler = streams.get(int.from_bytes(data[8:12], "big"))
                if handler is not None:
                    Counters.direct += 1
                    try:
                        handler(dtls._rx_srtp.unprotect(data))
                    except (pylibsrtp.Error, ValueError, IndexError):
                        Counters.bad_packets += 1
                    return None
            return stock(data, addr)  # an ICE-lite connection's receiver returns a drop reason or None

        protocol.datagram_received = datagram_received


def tap_packets(receiver: RTCRtpReceiver, on_packet: OnPacket) -> None:
    """Hand every media packet ``receiver`` gets to ``on_packet`` as it arrives, with nothing
    reassembled or buffered.

    What aiortc's ``_handle_rtp_packet`` does that the SFU needs is kept: statistics for its
    receiver reports, RTX retransmissions unwrapped to the original stream, NACKs for gaps. What
    it does not need is skipped: depayloading, the jitter buffer, the decoder queue, and the
    receive-side bandwidth estimate (its REMB kept Chrome's camera near 60 kbit/s on loopback;
    the SFU sends each layer's cap instead, ``send_remb``). Padding-only packets are dropped.
    Once a stream's first packet has come through aiortc, the rest take the direct path
    (``_DirectPath``) — call this after the connection's ICE gathering (``setLocalDescription``)."""
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
    codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    rtx_ssrcs = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    direct = _DirectPath.of(receiver.transport)

    def nack(ssrc: int, missing: set[int]) -> None:
        asyncio.ensure_future(receiver._send_rtcp_nack(ssrc, sorted(missing)))

    def go_direct(ssrc: int, statistics: StreamStatistics) -> Callable[[bytes], None]:
        seen = _Seen()
        nacks = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        extension_ids = receiver.transport._rtp_header_extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
        level_id = extension_ids.audio_level

        def handle(data: bytes) -> None:
            if data[1] & 0x7F not in codecs:
                return
            extension, start, end = payload_bounds(data)
            seen.sequence_number, seen.timestamp = seq, timestamp = _SEQ_TS.unpack_from(data, 2)
            statistics.add(seen)  # type: ignore[arg-type]
            if nacks is not None and nacks.add(seen):
                nack(ssrc, nacks.missing)
            if start < end:
                level = None
                if extension and level_id:
                    value = one_byte_element(data, extension, level_id)
                    if value:
                        level = value[0] & 0x7F
                on_packet(ssrc, seq, timestamp, data[1] >> 7, data[start:end], level)

        return handle

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        statistics = streams.get(packet.ssrc)
        if statistics is None:
            statistics = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        statistics.add(packet)
        if is_rtx(codec):
            original = rtx_ssrcs.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original is None or len(packet.payload) < 2 or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
        elif packet.ssrc not in direct.streams:
            direct.streams[packet.ssrc] = go_direct(packet.ssrc, statistics)
        nacks = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        if nacks is not None and nacks.add(packet):
            nack(packet.ssrc, nacks.missing)
        if packet.payload:
            level = packet.extensions.audio_level
            on_packet(packet.ssrc, packet.sequence_number, packet.timestamp, packet.marker, packet.payload,
                      None if level is None else level[1])

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


HISTORY = 256  # packets kept per outgoing stream to answer NACKs (~1.5 s of a full layer)
_HEADER = struct.Struct("!BBHII")
_SEQ_TS = struct.Struct("!HI")
_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 to 1970


class PacketOutput:
    """Sends a slot's packets on one ``RTCRtpSender``'s stream, without aiortc's RTP task.

    aiortc negotiates the stream (SSRC, payload type, RTX, MID) and keeps its RTCP task: sender
    reports (fed with this output's counts), receiver reports, PLI/FIR (``on_keyframe_request``).
    Each packet gets a new 12-byte header plus the MID extension, is protected with the
    transport's SRTP session and handed to the socket of ICE's nominated pair: no coroutine, no
    ``RtpPacket`` object, no copy of the payload but the one SRTP needs. NACKs are answered from
    a history of the last ``HISTORY`` packets, over RTX when negotiated. When the socket buffer
    is full the packet is dropped and counted: a slow subscriber never holds anything up.
    """

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[], None] = lambda: None) -> None:
        self.ready = False
        self.sent = self.octets = 0
        self.retransmitted = 0
        self._ntp = self._rtp_timestamp = 0
        self._sender = sender
        self._on_ready = on_ready
        self._parameters: RTCRtpSendParameters | None = None
        # two lists, not a list of tuples: no object for the garbage collector per packet
        self._headers: list[bytes] = [b""] * HISTORY
        self._payloads: list[bytes] = [b""] * HISTORY
        self._audio = sender.kind == "audio"
        self._first = 0x80
        self._ext = b""
        self._payload_type = self._rtx_payload_type = 0
        self._rtx_seq = random.randrange(1 << 15)
        self._protect: Callable[[bytes], bytes] = lambda data: data
        self._nominated: dict[int, Any] = {}
        self._pair: Any = None
        self._udp: Any = None
        self._address: Any = None
        stock_send = sender.send

        async def send(parameters: RTCRtpSendParameters) -> None:
            self._parameters = parameters
            await stock_send(parameters)

        sender.send = send  # type: ignore[method-assign]
        sender._run_rtp = self._run  # type: ignore[method-assign]
        sender._run_rtcp = self._run_rtcp  # type: ignore[method-assign]
        sender._retransmit = self._retransmit  # type: ignore[method-assign]

    async def _run(self, codec: RTCRtpCodecParameters) -> None:
        """Takes the place of the sender's RTP task: sets the stream up, then only waits."""
        sender = self._sender
        sender._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        try:
            parameters = self._parameters
            self._payload_type = codec.payloadType or 0
            self._rtx_payload_type = sender._RTCRtpSender__rtx_payload_type or 0  # type: ignore[attr-defined]
            mid_id = next((e.id for e in parameters.headerExtensions if e.uri == MID_URI), None) if parameters else None
            if parameters is not None and parameters.muxId and mid_id is not None:
                self._ext = mid_extension(mid_id, parameters.muxId)
                self._first = 0x90  # version 2, extension present
            dtls = sender.transport
            self._protect = dtls._tx_srtp.protect
            self._nominated = dtls.transport._connection._nominated
            self.ready = True
            self._on_ready()
            await asyncio.Future()  # until the sender stops
        except asyncio.CancelledError:
            pass
        finally:
            self.ready = False
            sender._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    async def _run_rtcp(self) -> None:
        """Takes the place of the sender's RTCP task: aiortc's, but a sender report (and SDES)
        only when packets went out since the last one — most of a subscriber's slots are idle
        at any time — with this output's counts."""
        sender = self._sender
        sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
        reported = 0
        try:
            while True:
                await asyncio.sleep(0.5 + random.random())  # RFC 3550's randomised interval
                if self.sent == reported:
                    continue
                reported = self.sent
                self._sync_counts()
                info = RtcpSenderInfo(ntp_timestamp=self._ntp, rtp_timestamp=self._rtp_timestamp,
                                      packet_count=self.sent & 0xFFFFFFFF, octet_count=self.octets & 0xFFFFFFFF)
                packets: list[Any] = [RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)]
                sender._RTCRtpSender__lsr = (self._ntp >> 16) & 0xFFFFFFFF  # type: ignore[attr-defined]  # for the RTT
                sender._RTCRtpSender__lsr_time = time.time()  # type: ignore[attr-defined]
                cname = sender._RTCRtpSender__cname  # type: ignore[attr-defined]
                if cname is not None:
                    packets.append(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode())])]))
                await sender._send_rtcp(packets)
        except asyncio.CancelledError:
            pass
        await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]

    def _sync_counts(self) -> None:
        """What the sender's statistics read (``getStats``, receiver reports' packetsReceived)."""
        sender = self._sender
        sender._RTCRtpSender__packet_count = self.sent  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]

    def send(self, marker: int, seq: int, timestamp: int, payload: bytes) -> None:
        header = _HEADER.pack(self._first, (marker << 7) | self._payload_type, seq, timestamp, self._sender._ssrc) + self._ext
        self._headers[seq % HISTORY] = header
        self._payloads[seq % HISTORY] = payload
        self._transmit(header + payload)
        self.sent += 1
        self.octets += len(payload)
        if marker or self._audio:  # a frame's last packet: the instant its sender report pairs
            self._ntp = int((time.time() + _NTP_EPOCH_OFFSET) * (1 << 32))
            self._rtp_timestamp = timestamp
        Counters.packets += 1
        Counters.bytes += len(payload)

    def _transmit(self, data: bytes) -> None:
        pair = self._nominated.get(1)
        if pair is None:
            Counters.dropped += 1
            return
        if pair is not self._pair:
            self._pair, self._udp, self._address = pair, pair.protocol.transport, pair.remote_addr
        try:
            self._udp.sendto(self._protect(data), self._address)
        except (OSError, pylibsrtp.Error):
            Counters.dropped += 1

    async def _retransmit(self, sequence_number: int) -> None:
        """Takes the place of the sender's ``_retransmit``: answer a NACK from the history."""
        seq = sequence_number
        header, payload = self._headers[seq % HISTORY], self._payloads[seq % HISTORY]
        if not header or (header[2] << 8 | header[3]) != seq:
            return
        if self._rtx_payload_type:
            timestamp = int.from_bytes(header[4:8], "big")
            header = _HEADER.pack(self._first, (header[1] & 0x80) | self._rtx_payload_type, self._rtx_seq, timestamp,
                                  self._sender._rtx_ssrc) + self._ext
            payload = rtx_payload(seq, payload)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        self.retransmitted += 1
        Counters.retransmitted += 1
        self._transmit(header + payload)


def receiver_report(sender: RTCRtpSender) -> Any:
    """What the subscriber last reported about ``sender``'s stream (an aiortc
    ``RTCRemoteInboundRtpStreamStats``: packetsLost, packetsReceived, roundTripTime), or None
    before its first receiver report. Reads what aiortc kept when the report arrived, without
    ``getStats()``, which also rebuilds the transport's statistics each call (~0.2 ms)."""
    kept = sender._RTCRtpSender__stats  # type: ignore[attr-defined]
    return kept.get("remote-inbound-rtp_" + str(id(sender)))


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher behind ``receiver`` for a keyframe (RTCP PLI, RFC 4585)."""
    asyncio.ensure_future(receiver._send_rtcp_pli(media_ssrc))


def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrc: int) -> None:
    """Tell the publisher behind ``receiver`` the most it may send on ``media_ssrc`` (REMB)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    if rtcp_ssrc is None:
        return
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [media_ssrc]))
    asyncio.ensure_future(receiver._send_rtcp(packet))


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the subscriber sends PLI or FIR for ``sender``'s stream."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def live_codec_contexts() -> int:
    """How many PyAV codec contexts exist in this process (the SFU's answer must be 0)."""
    import gc

    import av

    return sum(1 for o in gc.get_objects() if isinstance(o, av.CodecContext))


def restrict_codecs(video: str) -> None:
    """Negotiate only ``video`` (``VP8`` or ``H264``, with RTX) and Opus in this process: the
    SFU forwards what it receives, so every publisher and subscriber must use the same codec."""
    from aiortc.codecs import CODECS

    wanted = {"video": f"video/{video}".lower(), "audio": "audio/opus"}
    for kind, mime in wanted.items():
        kept = [c for c in CODECS[kind] if c.mimeType.lower() == mime]
        if not kept:
            raise ValueError(f"aiortc cannot negotiate {mime}")
        types = {c.payloadType for c in kept}
        kept += [c for c in CODECS[kind] if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in types]
        CODECS[kind][:] = sorted(kept, key=lambda c: c.payloadType or 0)
