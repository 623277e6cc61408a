"""Every use of aiortc's private parts, in one place (aiortc is pinned to 1.16.0).

The SFU forwards encoded frames. aiortc's receive path reassembles and depayloads frames in its
jitter buffer (sending NACKs and receiver reports as usual) and would then hand them to a
decoder thread; its send path asks for an encoder, then packetizes. This module cuts both:

- ``install()`` (once per process) makes receivers start no decoder thread and senders use
  pack-only packers (``packer_for``), and turns any attempt to get a decoder into an error;
- ``tap_receiver`` delivers a receiver's reassembled frames (and every RTP packet, for the
  RFC 6464 audio level) to the SFU instead of the decoder queue;
- ``send_pli`` asks a publisher for a keyframe; ``on_keyframe_request`` routes a subscriber's
  PLI/FIR on one of our senders to the SFU (aiortc would only set a flag its packet path never
  reads).

``tests/media/test_adapter.py`` pins each seam, so an aiortc upgrade that moves one fails there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

import aiortc
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from media.frames import EncodedFrame

AIORTC_VERSION = "1.16.0"


class Counters:
    """What this process's packers sent, and what tried to reach a codec."""

    packets = 0
    bytes = 0
    frames = 0
    codec_attempts = 0


class Packer:
    """Packetizes an ``EncodedFrame``; never opens a codec."""

    def encode(self, frame: Any, force_keyframe: bool = False) -> NoReturn:
        Counters.codec_attempts += 1
        raise RuntimeError("the SFU never encodes")

    @staticmethod
    def _count(payloads: list[bytes]) -> None:
        Counters.frames += 1
        Counters.packets += len(payloads)
        Counters.bytes += sum(len(p) for p in payloads)


class Vp8Packer(Packer):
    def __init__(self) -> None:
        self.picture_id = 0

    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        payloads: list[bytes] = Vp8Encoder._packetize(frame.data, self.picture_id)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        self._count(payloads)
        return payloads, frame.timestamp


class H264Packer(Packer):
    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        payloads: list[bytes] = H264Encoder._packetize(H264Encoder._split_bitstream(frame.data))
        self._count(payloads)
        return payloads, frame.timestamp


class OpusPacker(Packer):
    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        payloads = [frame.data]
        self._count(payloads)
        return payloads, frame.timestamp


def packer_for(codec: RTCRtpCodecParameters) -> Packer:
    name = codec.mimeType.lower()
    if name == "video/vp8":
        return Vp8Packer()
    if name == "video/h264":
        return H264Packer()
    if name == "audio/opus":
        return OpusPacker()
    Counters.codec_attempts += 1
    raise ValueError(f"the SFU does not forward {codec.mimeType}")


def _no_decoder(*args: object) -> NoReturn:
    Counters.codec_attempts += 1
    raise RuntimeError("the SFU never decodes")


def _no_decoder_worker(*args: object) -> None:
    """Stands in for aiortc's decoder thread body: the thread starts and ends at once; frames go
    to the tap instead (see ``tap_receiver``)."""


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
    """Switch this process's aiortc to forwarding: no decoder threads, pack-only senders."""
    global _installed
    if aiortc.__version__ != AIORTC_VERSION:
        raise RuntimeError(f"media.adapter is written for aiortc {AIORTC_VERSION}, found {aiortc.__version__}")
    if _installed:
        return
    setattr(rtcrtpreceiver, "decoder_worker", _no_decoder_worker)
    setattr(rtcrtpreceiver, "get_decoder", _no_decoder)
    setattr(rtcrtpsender, "get_encoder", packer_for)
    route_by_mid()
    _installed = True


class _FrameTap:
    """Takes the place of a receiver's decoder queue: ``put((codec, JitterFrame))`` is called
    on the event loop by ``_handle_rtp_packet``; ``None`` means the receiver stopped."""

    def __init__(self, on_frame: Callable[[EncodedFrame], None], keyframe: Callable[[bytes], bool], on_end: Callable[[], None]) -> None:
        self.on_frame = on_frame
        self.keyframe = keyframe
        self.on_end = on_end

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self.on_end()
            return
        data = item[1].data
        self.on_frame(EncodedFrame(data, item[1].timestamp, self.keyframe(data)))


def tap_receiver(
    receiver: RTCRtpReceiver,
    *,
    on_frame: Callable[[EncodedFrame], None],
    keyframe: Callable[[bytes], bool],
    on_packet: Callable[[int, int | None], None],
    on_end: Callable[[], None] = lambda: None,
) -> None:
    """Send ``receiver``'s reassembled frames to ``on_frame`` and, for every RTP packet, its
    SSRC and RFC 6464 level (0 loudest … 127 silence, None when absent) to ``on_packet``."""
    receiver._RTCRtpReceiver__decoder_queue = _FrameTap(on_frame, keyframe, on_end)  # type: ignore[attr-defined]
    # aiortc's receive-side estimate, sent as REMB, kept Chrome's camera near 60 kbit/s on
    # loopback; the SFU sends its own REMB instead (``send_remb``: the layer's cap).
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
    codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
    original = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = codecs.get(packet.payload_type)
        if codec is None or not is_rtx(codec):  # RTX (padding, retransmissions) is not the stream's SSRC
            level = packet.extensions.audio_level
            on_packet(packet.ssrc, None if level is None else level[1])
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


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
