"""media.adapter pins each seam into aiortc's private parts: an aiortc upgrade that moves one of
them fails here, not in production.

``install()`` patches aiortc for the whole process, and other tests in the same pytest process
run stock aiortc clients, so every test here undoes it (``undo_install``). Nothing here goes on
the network: receivers and senders get a stand-in transport.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import random
from collections.abc import Iterator
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import av
import pytest
from aiortc.codecs import CODECS
from aiortc.codecs.h264 import PACKET_MAX as H264_PACKET_MAX
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import PACKET_MAX as VP8_PACKET_MAX
from aiortc.codecs.vpx import VpxPayloadDescriptor, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPacket, RtcpPsfbPacket, RtpPacket

from media import adapter
from media.forwarding import Slot, Source
from media.frames import EncodedFrame, h264_keyframe, keyframe_test, vp8_keyframe

VP8_PT, H264_PT, OPUS_PT = 97, 99, 96
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=H264_PT)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, payloadType=0)


# The module globals install() replaces (aiortc's modules import them without re-exporting them).
SEAMS = [(rtcrtpsender, "get_encoder"), (rtcrtpreceiver, "get_decoder"), (rtcrtpreceiver, "decoder_worker")]


def get_encoder() -> Any:
    return getattr(rtcrtpsender, "get_encoder")


def get_decoder() -> Any:
    return getattr(rtcrtpreceiver, "get_decoder")


def decoder_worker() -> Any:
    return getattr(rtcrtpreceiver, "decoder_worker")


@pytest.fixture(autouse=True)
def undo_install() -> Iterator[None]:
    """Whatever a test does, leave aiortc as stock as it found it."""
    saved = [getattr(module, name) for module, name in SEAMS]
    installed = adapter._installed
    try:
        yield
    finally:
        for (module, name), value in zip(SEAMS, saved):
            setattr(module, name, value)
        adapter._installed = installed


class FakeTransport:
    """Stands in for an RTCDtlsTransport: records what a receiver or sender sends."""

    state = "new"
    _stats_id = "transport_test"

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.receivers: list[RTCRtpReceiver] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _register_rtp_receiver(self, receiver: RTCRtpReceiver, parameters: object) -> None:
        self.receivers.append(receiver)

    def _unregister_rtp_receiver(self, receiver: RTCRtpReceiver) -> None:
        self.receivers.remove(receiver)


def noise(size: int, seed: int) -> bytes:
    """Bytes without zeros, so no start code can appear inside a fake NAL unit."""
    rng = random.Random(seed)
    return bytes(rng.randrange(1, 256) for _ in range(size))


def vp8_frame(size: int, key: bool, seed: int) -> bytes:
    return bytes([0x10 if key else 0x11]) + noise(size - 1, seed)


def split_annex_b(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B stream whose NAL units hold no zero bytes (see ``noise``)."""
    return [n.rstrip(b"\x00") for n in data.split(b"\x00\x00\x01")[1:]]


def h264_access_unit() -> tuple[bytes, list[bytes]]:
    nals = [
        b"\x67" + noise(24, 1),  # SPS
        b"\x68" + noise(4, 2),  # PPS
        b"\x06" + noise(30, 3),  # SEI
        b"\x65" + noise(5000, 4),  # IDR slice, > PACKET_MAX: FU-A
        b"\x65" + noise(600, 5),  # a second slice of the same picture
    ]
    starts = [b"\x00\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00\x00\x01"]
    return b"".join(s + n for s, n in zip(starts, nals)), nals


# -- versions and installation ------------------------------------------------------------


def test_aiortc_is_the_version_the_adapter_is_written_for() -> None:
    assert aiortc.__version__ == adapter.AIORTC_VERSION


def test_install_swaps_encoders_and_decoders() -> None:
    stock_worker = decoder_worker()
    adapter.install()
    assert get_encoder() is adapter.packer_for
    assert decoder_worker() is adapter._no_decoder_worker
    assert decoder_worker() is not stock_worker
    attempts = adapter.Counters.codec_attempts
    with pytest.raises(RuntimeError):
        get_decoder()(VP8)
    assert adapter.Counters.codec_attempts == attempts + 1
    assert decoder_worker()(None, None, None, None) is None  # returns at once
    adapter.install()  # a second call changes nothing
    assert get_encoder() is adapter.packer_for


def test_install_refuses_another_aiortc(monkeypatch: pytest.MonkeyPatch) -> None:
    stock = get_encoder()
    monkeypatch.setattr(aiortc, "__version__", "99.0.0")
    with pytest.raises(RuntimeError, match="99.0.0"):
        adapter.install()
    assert get_encoder() is stock and not adapter._installed


def test_the_fixture_left_aiortc_stock() -> None:
    """Runs after the tests that install: the stock factories are back."""
    assert get_encoder() is aiortc.codecs.get_encoder
    assert get_decoder() is aiortc.codecs.get_decoder
    assert decoder_worker().__module__ == "aiortc.rtcrtpreceiver"


# -- the private names the adapter relies on ----------------------------------------------


def test_private_names_still_exist() -> None:
    async def construct() -> tuple[RTCRtpReceiver, RTCRtpSender]:
        return RTCRtpReceiver("video", FakeTransport()), RTCRtpSender("video", FakeTransport())  # type: ignore[arg-type]

    receiver, sender = asyncio.run(construct())
    assert hasattr(receiver, "_RTCRtpReceiver__decoder_queue")
    assert hasattr(receiver, "_RTCRtpReceiver__decoder_thread")
    assert inspect.iscoroutinefunction(RTCRtpReceiver._handle_rtp_packet)
    assert list(inspect.signature(RTCRtpReceiver._handle_rtp_packet).parameters) == ["self", "packet", "arrival_time_ms"]
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli)
    assert callable(sender._send_keyframe)
    assert callable(Vp8Encoder._packetize) and callable(H264Encoder._packetize) and callable(H264Encoder._split_bitstream)
    # The module-level names install() replaces are the ones the classes look up at run time.
    assert "target=decoder_worker" in inspect.getsource(RTCRtpReceiver.receive)
    assert "get_encoder(codec)" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert ".pack(data)" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle
    assert "self.__decoder_thread" in handle


# -- packers ------------------------------------------------------------------------------


def test_vp8_packer_payloads_depayload_to_the_frame() -> None:
    packer = adapter.packer_for(VP8)
    assert isinstance(packer, adapter.Vp8Packer)
    data = vp8_frame(3000, True, 7)
    payloads, timestamp = packer.pack(EncodedFrame(data, 123456, True))
    assert timestamp == 123456
    assert len(payloads) == 3 and all(len(p) <= VP8_PACKET_MAX for p in payloads)
    assert b"".join(vp8_depayload(p) for p in payloads) == data
    descriptors = [VpxPayloadDescriptor.parse(p)[0] for p in payloads]
    assert [d.partition_start for d in descriptors] == [1, 0, 0]
    assert {d.picture_id for d in descriptors} == {0}
    # The picture id counts frames and wraps at 15 bits.
    payloads, _ = packer.pack(EncodedFrame(b"\x11abc", 126456))
    assert VpxPayloadDescriptor.parse(payloads[0])[0].picture_id == 1
    assert isinstance(packer, adapter.Vp8Packer)
    packer.picture_id = (1 << 15) - 1
    packer.pack(EncodedFrame(b"\x11abc", 129456))
    payloads, _ = packer.pack(EncodedFrame(b"\x11abc", 132456))
    assert VpxPayloadDescriptor.parse(payloads[0])[0].picture_id == 0


def test_h264_packer_payloads_depayload_to_the_same_nal_units() -> None:
    packer = adapter.packer_for(H264)
    assert isinstance(packer, adapter.H264Packer)
    data, nals = h264_access_unit()
    assert split_annex_b(data) == nals
    payloads, timestamp = packer.pack(EncodedFrame(data, 90000, True))
    assert timestamp == 90000
    assert all(len(p) <= H264_PACKET_MAX for p in payloads)
    types = [p[0] & 0x1F for p in payloads]
    assert types[0] == 24  # SPS, PPS and SEI aggregated (STAP-A)
    assert types.count(28) >= 4  # the big IDR slice fragmented (FU-A)
    depayloaded = b"".join(h264_depayload(p) for p in payloads)
    assert split_annex_b(depayloaded) == nals
    assert h264_keyframe(depayloaded)


def test_opus_packer_passes_frames_through() -> None:
    packer = adapter.packer_for(OPUS)
    assert isinstance(packer, adapter.OpusPacker)
    assert packer.pack(EncodedFrame(b"\xfc\x01\x02", 960)) == ([b"\xfc\x01\x02"], 960)


def test_packer_for_refuses_other_codecs_and_packers_never_encode() -> None:
    attempts = adapter.Counters.codec_attempts
    with pytest.raises(ValueError, match="PCMU"):
        adapter.packer_for(PCMU)
    with pytest.raises(ValueError):
        adapter.packer_for(RTCRtpCodecParameters(mimeType="video/VP9", clockRate=90000, payloadType=98))
    assert adapter.Counters.codec_attempts == attempts + 2
    with pytest.raises(RuntimeError):
        adapter.packer_for(VP8).encode(object(), True)
    assert adapter.Counters.codec_attempts == attempts + 3


def test_counters_count_packets_bytes_and_frames() -> None:
    before = (adapter.Counters.frames, adapter.Counters.packets, adapter.Counters.bytes)
    vp8, _ = adapter.Vp8Packer().pack(EncodedFrame(vp8_frame(2000, True, 1), 0, True))
    opus, _ = adapter.OpusPacker().pack(EncodedFrame(b"x" * 80, 0))
    sent = vp8 + opus
    assert adapter.Counters.frames == before[0] + 2
    assert adapter.Counters.packets == before[1] + len(sent) == before[1] + 3
    assert adapter.Counters.bytes == before[2] + sum(len(p) for p in sent)


# -- the sender seam: what a Slot yields is packed, not encoded ----------------------------


def test_an_installed_sender_packs_what_a_slot_yields() -> None:
    adapter.install()

    async def scenario() -> None:
        for codec, kind, data in [
            (VP8, "video", vp8_frame(2600, True, 3)),
            (H264, "video", h264_access_unit()[0]),
            (OPUS, "audio", b"\xfc" + noise(100, 9)),
        ]:
            source = Source("p", "camera" if kind == "video" else "audio", kind)
            slot = Slot("s", kind)
            slot.switch(source)
            source.push(EncodedFrame(data, 5000, True))
            sender = RTCRtpSender(slot, FakeTransport())  # type: ignore[arg-type]
            encoded = await asyncio.wait_for(sender._next_encoded_frame(codec), 1)
            assert isinstance(encoded, RTCEncodedFrame)
            assert encoded.timestamp == 0  # the slot's rebased timestamp
            if codec is VP8:
                assert b"".join(vp8_depayload(p) for p in encoded.payloads) == data
            elif codec is H264:
                assert split_annex_b(b"".join(h264_depayload(p) for p in encoded.payloads)) == split_annex_b(data)
            else:
                assert encoded.payloads == [data]
            slot.stop()

    attempts = adapter.Counters.codec_attempts
    asyncio.run(scenario())
    assert adapter.Counters.codec_attempts == attempts


# -- the receiver seam --------------------------------------------------------------------


def test_frame_tap_turns_jitter_frames_into_encoded_frames() -> None:
    frames: list[EncodedFrame] = []
    ended: list[bool] = []
    tap = adapter._FrameTap(frames.append, vp8_keyframe, lambda: ended.append(True))
    tap.put((VP8, JitterFrame(b"\x10key", 3000)))
    tap.put((VP8, JitterFrame(b"\x11delta", 6000)))
    assert [(f.data, f.timestamp, f.keyframe) for f in frames] == [(b"\x10key", 3000, True), (b"\x11delta", 6000, False)]
    assert ended == []
    tap.put(None)
    assert ended == [True] and len(frames) == 2


def rtp_packets(payloads: list[bytes], timestamp: int, first_seq: int, payload_type: int) -> list[RtpPacket]:
    return [
        RtpPacket(payload_type=payload_type, marker=int(i == len(payloads) - 1), sequence_number=first_seq + i,
                  timestamp=timestamp, ssrc=1234, payload=p)
        for i, p in enumerate(payloads)
    ]


def test_a_tapped_receiver_delivers_reassembled_frames_and_no_decoder_runs() -> None:
    adapter.install()

    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        receiver._track = RemoteStreamTrack(kind="video")
        frames: list[EncodedFrame] = []
        seen: list[tuple[int, int | None]] = []
        ended: list[bool] = []
        adapter.tap_receiver(receiver, on_frame=frames.append, keyframe=vp8_keyframe,
                             on_packet=lambda ssrc, level: seen.append((ssrc, level)), on_end=lambda: ended.append(True))
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
        thread.join(1)
        assert not thread.is_alive()  # the no-op worker: started and ended
        sent = [vp8_frame(2800, True, 1), vp8_frame(900, False, 2), vp8_frame(700, False, 3)]
        packer = adapter.Vp8Packer()
        seq = 0
        for i, data in enumerate(sent):
            payloads, _ = packer.pack(EncodedFrame(data, 0))
            for packet in rtp_packets(payloads, 1_000_000 + 3000 * i, seq, VP8_PT):
                # the way RTCDtlsTransport calls it
                await receiver._handle_rtp_packet(packet, arrival_time_ms=seq)
                seq += 1
        # The jitter buffer hands a frame over when the next one starts: two of three so far.
        assert [(f.data, f.timestamp, f.keyframe) for f in frames] == [(sent[0], 0, True), (sent[1], 3000, False)]
        assert seen == [(1234, None)] * seq
        await receiver.stop()
        assert ended == [True] and transport.receivers == []

    attempts = adapter.Counters.codec_attempts
    asyncio.run(scenario())
    assert adapter.Counters.codec_attempts == attempts


def test_a_tapped_audio_receiver_reports_levels() -> None:
    adapter.install()

    async def scenario() -> None:
        receiver = RTCRtpReceiver("audio", FakeTransport())  # type: ignore[arg-type]
        receiver._track = RemoteStreamTrack(kind="audio")
        frames: list[EncodedFrame] = []
        seen: list[tuple[int, int | None]] = []
        adapter.tap_receiver(receiver, on_frame=frames.append, keyframe=keyframe_test("audio/opus"),
                             on_packet=lambda ssrc, level: seen.append((ssrc, level)))
        await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
        sent = [bytes([0xFC, i + 1]) * 20 for i in range(10)]
        for i, data in enumerate(sent):
            (packet,) = rtp_packets([data], 960 * i, i, OPUS_PT)
            packet.extensions.audio_level = (True, 30 + i) if i % 2 == 0 else None
            await receiver._handle_rtp_packet(packet, arrival_time_ms=20 * i)
        assert seen == [(1234, 30 + i if i % 2 == 0 else None) for i in range(10)]
        assert frames and [f.data for f in frames] == sent[: len(frames)]
        assert all(f.keyframe for f in frames)
        await receiver.stop()

    asyncio.run(scenario())


def test_send_pli_sends_a_picture_loss_indication() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        receiver._set_rtcp_ssrc(42)
        adapter.send_pli(receiver, 1234)
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(transport.sent) == 1
        (packet,) = RtcpPacket.parse(transport.sent[0])
        assert isinstance(packet, RtcpPsfbPacket)
        assert (packet.fmt, packet.ssrc, packet.media_ssrc) == (RTCP_PSFB_PLI, 42, 1234)

    asyncio.run(scenario())


def test_on_keyframe_request_routes_pli_and_fir() -> None:
    async def scenario() -> None:
        sender = RTCRtpSender("video", FakeTransport())  # type: ignore[arg-type]
        calls: list[str] = []
        adapter.on_keyframe_request(sender, lambda: calls.append("kf"))
        for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=7, media_ssrc=sender._ssrc))
        assert calls == ["kf", "kf"]

    asyncio.run(scenario())


# -- codec contexts and codec restriction ---------------------------------------------------


def test_live_codec_contexts_counts_pyav_contexts() -> None:
    gc.collect()
    before = adapter.live_codec_contexts()
    context = av.CodecContext.create("vp8", "r")
    assert adapter.live_codec_contexts() == before + 1
    del context
    gc.collect()
    assert adapter.live_codec_contexts() == before


@pytest.fixture
def stock_codecs() -> Iterator[None]:
    saved = {kind: list(codecs) for kind, codecs in CODECS.items()}
    try:
        yield
    finally:
        for kind, codecs in saved.items():
            CODECS[kind][:] = codecs


@pytest.mark.usefixtures("stock_codecs")
def test_restrict_codecs_keeps_one_video_codec_its_rtx_and_opus() -> None:
    adapter.restrict_codecs("VP8")
    assert [(c.mimeType.lower(), c.payloadType) for c in CODECS["video"]] == [("video/vp8", 97), ("video/rtx", 98)]
    assert CODECS["video"][1].parameters["apt"] == 97
    assert [c.mimeType.lower() for c in CODECS["audio"]] == ["audio/opus"]


@pytest.mark.usefixtures("stock_codecs")
def test_restrict_codecs_h264() -> None:
    video = list(CODECS["video"])
    adapter.restrict_codecs("H264")
    kept = CODECS["video"]
    assert {c.mimeType.lower() for c in kept} == {"video/h264", "video/rtx"}
    h264 = {c.payloadType for c in kept if c.mimeType.lower() == "video/h264"}
    assert h264 == {c.payloadType for c in video if c.mimeType.lower() == "video/h264"} and h264
    assert {c.parameters["apt"] for c in kept if c.mimeType.lower() == "video/rtx"} == h264
    with pytest.raises(ValueError):
        adapter.restrict_codecs("VP8")  # no longer negotiable in this process


@pytest.mark.usefixtures("stock_codecs")
def test_restrict_codecs_refuses_an_unknown_codec() -> None:
    video = list(CODECS["video"])
    with pytest.raises(ValueError, match="av1"):
        adapter.restrict_codecs("AV1")
    assert CODECS["video"] == video


def test_route_by_mid_sends_an_unknown_ssrc_to_the_receiver_its_mid_names() -> None:
    """Two m-lines of a bundle share payload types (97 video, 98 RTX): aiortc alone discards a
    retransmission from the RTX SSRC; with route_by_mid it reaches the receiver of its MID."""
    from aiortc.rtcdtlstransport import RtpRouter
    from aiortc.rtp import RtpPacket

    patched_before = RtpRouter.route_rtp
    stock = adapter._STOCK_ROUTE_RTP
    try:
        router = RtpRouter()
        first, second = object(), object()
        router.register_receiver(first, ssrcs=[1111], payload_types=[97, 98], mid="0")  # type: ignore[arg-type]
        router.register_receiver(second, ssrcs=[2222], payload_types=[97, 98], mid="1")  # type: ignore[arg-type]
        rtx = RtpPacket(payload_type=98, sequence_number=1, ssrc=9999)
        rtx.extensions.mid = "1"
        assert stock(router, rtx) is None  # what aiortc 1.16.0 does
        adapter.route_by_mid()
        assert router.route_rtp(rtx) is second
        later = RtpPacket(payload_type=98, sequence_number=2, ssrc=9999)  # no MID any more: learnt
        assert router.route_rtp(later) is second
        stray = RtpPacket(payload_type=98, sequence_number=3, ssrc=7777)
        assert router.route_rtp(stray) is None
    finally:
        RtpRouter.route_rtp = patched_before  # type: ignore[method-assign]
