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
import pylibsrtp
import pytest
from aiortc.codecs import CODECS
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
)

from media import adapter, rtp

VP8_PT, H264_PT, OPUS_PT = 97, 99, 96
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=H264_PT)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, payloadType=0)


# The module globals install() replaces (aiortc's modules import them without re-exporting them).
SEAMS = [(rtcrtpsender, "get_encoder"), (rtcrtpreceiver, "get_decoder"), (rtcrtpreceiver, "decoder_worker")]


def get_encoder() -> Any:
    return rtcrtpsender.get_encoder


def get_decoder() -> Any:
    return rtcrtpreceiver.get_decoder


def decoder_worker() -> Any:
    return rtcrtpreceiver.decoder_worker


@pytest.fixture(autouse=True)
def undo_install() -> Iterator[None]:
    """Whatever a test does, leave aiortc as stock as it found it."""
    saved = [getattr(module, name) for module, name in SEAMS]
    installed = adapter._installed
    try:
        yield
    finally:
        for (module, name), value in zip(SEAMS, saved, strict=True):
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


# -- versions and installation ------------------------------------------------------------


def test_aiortc_is_the_version_the_adapter_is_written_for() -> None:
    assert aiortc.__version__ == adapter.AIORTC_VERSION


def test_install_swaps_encoders_and_decoders() -> None:
    stock_worker = decoder_worker()
    adapter.install()
    assert get_encoder() is adapter._no_encoder
    assert decoder_worker() is adapter._no_decoder_worker
    assert decoder_worker() is not stock_worker
    attempts = adapter.Counters.codec_attempts
    with pytest.raises(RuntimeError):
        get_decoder()(VP8)
    with pytest.raises(RuntimeError):
        get_encoder()(OPUS)
    assert adapter.Counters.codec_attempts == attempts + 2
    assert decoder_worker()(None, None, None, None) is None  # returns at once
    adapter.install()  # a second call changes nothing
    assert get_encoder() is adapter._no_encoder


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
    for name in ("remote_bitrate_estimator", "codecs", "remote_streams", "rtx_ssrc", "nack_generator"):
        assert hasattr(receiver, f"_RTCRtpReceiver__{name}"), name
    for name in ("rtp_started", "rtp_exited", "rtcp_started", "rtcp_exited", "rtx_payload_type", "packet_count",
                 "octet_count", "lsr", "lsr_time", "cname", "stats"):
        assert hasattr(sender, f"_RTCRtpSender__{name}"), name
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_nack)
    # The module-level names install() replaces are the ones the classes look up at run time,
    # and the methods PacketOutput takes the place of are the ones the sender calls.
    assert "target=decoder_worker" in inspect.getsource(RTCRtpReceiver.receive)
    assert "get_encoder(codec)" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "await self._retransmit(seq)" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._run_rtp(parameters.codecs[0])" in inspect.getsource(RTCRtpSender.send)
    assert "self._run_rtcp()" in inspect.getsource(RTCRtpSender.send)
    assert "self.__lsr == report.lsr" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)  # the RTT we feed


# -- the sender seam: PacketOutput ------------------------------------------------------------


class FakeUdp:
    def __init__(self, full: bool = False) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.full = full

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        if self.full:
            raise BlockingIOError
        self.sent.append((data, address))


class FakePair:
    def __init__(self, udp: FakeUdp, address: tuple[str, int]) -> None:
        self.protocol = type("Protocol", (), {"transport": udp})()
        self.remote_addr = address


class FakeSrtp:
    """Stands in for pylibsrtp's Session: marks what it protected."""

    def protect(self, data: bytes) -> bytes:
        return b"SRTP" + data


class FakeDtls(FakeTransport):
    """An RTCDtlsTransport as PacketOutput reaches into it: SRTP session, ICE's nominated pairs."""

    def __init__(self) -> None:
        super().__init__()
        self._tx_srtp = FakeSrtp()
        self.udp = FakeUdp()
        self.nominated: dict[int, FakePair] = {1: FakePair(self.udp, ("127.0.0.1", 40000))}
        self.transport = type("Ice", (), {"_connection": type("Connection", (), {"_nominated": self.nominated})()})()

    def _register_rtp_sender(self, sender: RTCRtpSender, parameters: object) -> None:
        pass

    def _unregister_rtp_sender(self, sender: RTCRtpSender) -> None:
        pass

    def _get_stats(self) -> dict[str, object]:
        return {}


RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": VP8_PT})
MID_ID = 9


def send_parameters() -> RTCRtpSendParameters:
    return RTCRtpSendParameters(codecs=[VP8, RTX], muxId="3", rtcp=RTCRtcpParameters(cname="sfu"),
                                headerExtensions=[RTCRtpHeaderExtensionParameters(id=MID_ID, uri=rtp.MID_URI)])


def parse_sent(data: bytes) -> RtpPacket:
    assert data.startswith(b"SRTP")  # protected before it went out
    extensions = HeaderExtensionsMap()
    extensions.configure(send_parameters())
    return RtpPacket.parse(data[4:], extensions)


def test_a_packet_output_sends_rewritten_packets_and_answers_nacks_over_rtx() -> None:
    async def scenario() -> None:
        dtls = FakeDtls()
        sender = RTCRtpSender("video", dtls)  # type: ignore[arg-type]
        ready: list[bool] = []
        output = adapter.PacketOutput(sender, on_ready=lambda: ready.append(True))
        assert not output.ready
        await sender.send(send_parameters())
        for _ in range(3):
            await asyncio.sleep(0)
        assert output.ready and ready == [True]
        sent_before = adapter.Counters.packets
        output.send(1, 1000, 5555, b"payload-1000")
        output.send(0, 1001, 5555, b"payload-1001")
        assert adapter.Counters.packets == sent_before + 2
        (first, address), _ = dtls.udp.sent
        assert address == ("127.0.0.1", 40000)
        packet = parse_sent(first)
        assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc) == (
            VP8_PT, 1, 1000, 5555, sender._ssrc)
        assert packet.extensions.mid == "3" and packet.payload == b"payload-1000"
        # Its RTCP task sends a sender report with these counts (and none while nothing is sent).
        for _ in range(40):
            await asyncio.sleep(0.05)
            reports = [p for data in dtls.sent for p in RtcpPacket.parse(data) if isinstance(p, RtcpSrPacket)]
            if reports:
                break
        assert len(reports) == 1 and reports[0].ssrc == sender._ssrc
        assert (reports[0].sender_info.packet_count, reports[0].sender_info.octet_count) == (2, 24)
        assert reports[0].sender_info.rtp_timestamp == 5555
        stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
        assert stats[0].packetsSent == 2 and stats[0].bytesSent == 24
        await asyncio.sleep(1.6)  # at least one more interval, nothing sent: no second report
        assert len([p for data in dtls.sent for p in RtcpPacket.parse(data) if isinstance(p, RtcpSrPacket)]) == 1
        # The subscriber's receiver report, as the SFU's statistics read it.
        assert adapter.receiver_report(sender) is None
        report = RtcpReceiverInfo(ssrc=sender._ssrc, fraction_lost=0, packets_lost=1, highest_sequence=1001,
                                  jitter=0, lsr=0, dlsr=0)
        await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=77, reports=[report]))
        assert (adapter.receiver_report(sender).packetsLost, adapter.receiver_report(sender).packetsReceived) == (1, 1)
        # A NACK: the packet goes again over RTX; an unknown one is ignored.
        retransmitted = adapter.Counters.retransmitted
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=[999, 1000])
        await sender._handle_rtcp_packet(nack)
        assert len(dtls.udp.sent) == 3 and adapter.Counters.retransmitted == retransmitted + 1
        again = parse_sent(dtls.udp.sent[2][0])
        assert (again.payload_type, again.ssrc, again.timestamp, again.marker) == (98, sender._rtx_ssrc, 5555, 1)
        assert again.payload == b"\x03\xe8payload-1000"  # 1000, then the original payload
        # A full socket buffer or no ICE pair: dropped and counted, never raised.
        dropped = adapter.Counters.dropped
        dtls.udp.full = True
        output.send(1, 1002, 8555, b"x")
        dtls.nominated.clear()
        output.send(1, 1003, 11555, b"y")
        assert adapter.Counters.dropped == dropped + 2 and len(dtls.udp.sent) == 3
        # A new pair (ICE restart) is picked up.
        other = FakeUdp()
        dtls.nominated[1] = FakePair(other, ("127.0.0.1", 40002))
        output.send(1, 1004, 14555, b"z")
        assert other.sent and other.sent[0][1] == ("127.0.0.1", 40002)
        await sender.stop()
        assert not output.ready

    attempts = adapter.Counters.codec_attempts
    asyncio.run(scenario())
    assert adapter.Counters.codec_attempts == attempts


# -- the receiver seam: tap_packets ------------------------------------------------------------


def rtp_packets(payloads: list[bytes], timestamp: int, first_seq: int, payload_type: int) -> list[RtpPacket]:
    return [
        RtpPacket(payload_type=payload_type, marker=int(i == len(payloads) - 1), sequence_number=first_seq + i,
                  timestamp=timestamp, ssrc=1234, payload=p)
        for i, p in enumerate(payloads)
    ]


TAG = b"-srtp-tag-"  # what FakeSrtp appends and checks, as SRTP's authentication tag


class FakeProtocol:
    """An aioice StunProtocol: records what reaches its stock ``datagram_received``."""

    def __init__(self) -> None:
        self.stock: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stock.append(data)


class FakeRxSrtp:
    def unprotect(self, data: bytes) -> bytes:
        if not data.endswith(TAG):
            raise pylibsrtp.Error("authentication failed")
        return data[: -len(TAG)]


class FakePublisherDtls(FakeTransport):
    """A publisher's RTCDtlsTransport as tap_packets reaches into it."""

    def __init__(self, level_id: int | None = None) -> None:
        super().__init__()
        self.protocol = FakeProtocol()
        self._rx_srtp = FakeRxSrtp()
        self.transport = type("Ice", (), {"_connection": type("Connection", (), {"_protocols": [self.protocol]})()})()
        self._rtp_header_extensions_map = HeaderExtensionsMap()
        if level_id is not None:
            self._rtp_header_extensions_map.configure(RTCRtpParameters(
                headerExtensions=[RTCRtpHeaderExtensionParameters(id=level_id, uri=AUDIO_LEVEL_URI)]))

    def arrive(self, packet: RtpPacket) -> None:
        """A packet reaching the socket, protected."""
        self.protocol_received(packet.serialize(self._rtp_header_extensions_map) + TAG)

    def protocol_received(self, data: bytes) -> None:
        self.protocol.datagram_received(data, ("127.0.0.1", 5000))


AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
Got = tuple[int, int, int, int, bytes, "int | None"]


def test_a_tapped_receiver_hands_over_each_packet_unwraps_rtx_and_nacks_gaps() -> None:
    adapter.install()

    async def scenario() -> None:
        dtls = FakePublisherDtls()
        receiver = RTCRtpReceiver("video", dtls)  # type: ignore[arg-type]
        receiver._track = RemoteStreamTrack(kind="video")
        receiver._set_rtcp_ssrc(42)
        got: list[Got] = []
        adapter.tap_packets(receiver, lambda *fields: got.append(fields))
        encoding = RTCRtpDecodingParameters(ssrc=1234, payloadType=VP8_PT, rtx=RTCRtpRtxParameters(ssrc=5678))
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8, RTX], encodings=[encoding]))
        thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
        thread.join(1)
        assert not thread.is_alive()  # the no-op worker: started and ended
        payloads = Vp8Encoder._packetize(vp8_frame(4000, True, 1), 1)
        packets = rtp_packets(payloads, 90_000, 10, VP8_PT)
        assert len(packets) == 4
        # The stream's first packet comes through aiortc (as RTCDtlsTransport calls it) ...
        await receiver._handle_rtp_packet(packets[0], arrival_time_ms=0)
        assert got == [(1234, 10, 90_000, 0, packets[0].payload, None)]  # at once: nothing waits for the frame
        # ... the next ones straight from the socket; packets[1] is lost.
        direct = adapter.Counters.direct
        dtls.arrive(packets[2])
        dtls.arrive(packets[3])
        assert adapter.Counters.direct == direct + 2 and dtls.protocol.stock == []
        assert [(g[1], g[3], g[4]) for g in got[1:]] == [(12, 0, packets[2].payload), (13, 1, packets[3].payload)]
        for _ in range(3):
            await asyncio.sleep(0)
        nacks = [p for data in dtls.sent for p in RtcpPacket.parse(data) if isinstance(p, RtcpRtpfbPacket)]
        assert nacks and nacks[0].fmt == RTCP_RTPFB_NACK and nacks[0].lost == [11]
        # The retransmission, over RTX, takes aiortc's path and is unwrapped.
        rtx = RtpPacket(payload_type=98, sequence_number=500, timestamp=90_000, ssrc=5678,
                        payload=b"\x00\x0b" + packets[1].payload)
        dtls.arrive(rtx)
        assert dtls.protocol.stock == [rtx.serialize() + TAG]
        await receiver._handle_rtp_packet(rtx, arrival_time_ms=5)
        assert got[-1] == (1234, 11, 90_000, 0, packets[1].payload, None)
        # Padding, RTX of an unknown stream, SRTCP, a forged packet: none reaches the SFU.
        dtls.arrive(RtpPacket(payload_type=VP8_PT, sequence_number=14, timestamp=90_000, ssrc=1234, payload=b""))
        stray_rtx = RtpPacket(payload_type=98, sequence_number=501, ssrc=9999, payload=b"\x00\x0cxx")
        await receiver._handle_rtp_packet(stray_rtx, arrival_time_ms=7)
        bad = adapter.Counters.bad_packets
        dtls.protocol_received(RtpPacket(payload_type=VP8_PT, sequence_number=15, ssrc=1234, payload=b"x").serialize())
        assert adapter.Counters.bad_packets == bad + 1
        rtcp = bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=2)) + TAG
        dtls.protocol_received(rtcp)
        assert dtls.protocol.stock[-1] == rtcp  # RTCP stays on aiortc's path
        assert len(got) == 4
        streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        # what its receiver reports are made of: padding counts, the retransmission counts for RTX
        assert streams[1234].packets_received == 4 and streams[5678].packets_received == 1
        assert receiver._RTCRtpReceiver__jitter_buffer._origin is None  # type: ignore[attr-defined]
        await receiver.stop()
        assert dtls.receivers == []

    attempts = adapter.Counters.codec_attempts
    asyncio.run(scenario())
    assert adapter.Counters.codec_attempts == attempts


def test_a_tapped_audio_receiver_passes_levels_on() -> None:
    adapter.install()

    async def scenario() -> None:
        dtls = FakePublisherDtls(level_id=3)
        receiver = RTCRtpReceiver("audio", dtls)  # type: ignore[arg-type]
        receiver._track = RemoteStreamTrack(kind="audio")
        got: list[Got] = []
        adapter.tap_packets(receiver, lambda *fields: got.append(fields))
        await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
        sent = [bytes([0xFC, i + 1]) * 20 for i in range(10)]
        for i, data in enumerate(sent):
            (packet,) = rtp_packets([data], 960 * i, i, OPUS_PT)
            packet.extensions.audio_level = (True, 30 + i) if i % 2 == 0 else None
            if i == 0:
                await receiver._handle_rtp_packet(packet, arrival_time_ms=20 * i)
            else:
                dtls.arrive(packet)
        assert [g[4] for g in got] == sent
        assert [g[5] for g in got] == [30 + i if i % 2 == 0 else None for i in range(10)]
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
