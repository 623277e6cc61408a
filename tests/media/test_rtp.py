"""media.rtp: reading a publisher's packets once, and the bytes a slot writes, checked against
aiortc's own packetizers and parsers."""

from __future__ import annotations

import random

import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media import rtp


def noise(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(1, 256) for _ in range(size))


@pytest.mark.parametrize("picture_id", [5, 127, 128, 0x7FFF])
def test_vp8_packets_from_aiortcs_packetizer(picture_id: int) -> None:
    key = b"\x10" + noise(3000, 1)  # bit 0 of the frame tag clear: a key frame
    payloads = Vp8Encoder._packetize(key, picture_id)
    packets = [rtp.vp8_packet(i, 9000, int(i == len(payloads) - 1), p) for i, p in enumerate(payloads)]
    assert [p.keyframe for p in packets] == [True] + [False] * (len(packets) - 1)  # only where it starts
    for packet in packets:
        descriptor, _ = VpxPayloadDescriptor.parse(packet.payload)
        assert packet.picture_id == descriptor.picture_id == picture_id
        assert packet.pid_bits == 15  # aiortc, like libwebrtc, always writes 15 bits
    (delta,) = Vp8Encoder._packetize(b"\x11" + noise(50, 2), picture_id)
    assert not rtp.vp8_packet(1, 0, 1, delta).keyframe


def test_a_vp8_descriptor_without_picture_id_and_with_tl0_and_keyidx() -> None:
    plain = rtp.vp8_packet(1, 0, 1, b"\x10\x10abc")  # X clear: the frame tag follows at once
    assert plain.keyframe and plain.pid_bits == 0
    # X, I (15-bit ID 300), L (TL0PICIDX), T (TID/Y/KEYIDX), then a key frame
    full = rtp.vp8_packet(1, 0, 1, bytes((0x90, 0xE0, 0x81, 0x2C, 0x07, 0x40, 0x10)) + b"x")
    assert full.keyframe and full.picture_id == 300 and full.pid_at == 2
    not_start = rtp.vp8_packet(1, 0, 1, bytes((0x80, 0x80, 0x05, 0x10)))  # S clear
    assert not not_start.keyframe and not_start.picture_id == 5
    assert not rtp.vp8_packet(1, 0, 1, b"\x90").keyframe  # truncated: read safely
    assert not rtp.vp8_packet(1, 0, 1, bytes((0x90, 0x80, 0x81))).keyframe


@pytest.mark.parametrize("bits,new", [(15, 0x1234), (15, 0), (7, 99)])
def test_with_picture_id_changes_only_the_picture_id(bits: int, new: int) -> None:
    if bits == 15:
        (payload,) = Vp8Encoder._packetize(b"\x10" + noise(40, 3), 200)
    else:  # a 7-bit picture ID, as RFC 7741 allows
        payload = bytes((0x90, 0x80, 3)) + b"\x10" + noise(40, 3)
    packet = rtp.vp8_packet(1, 0, 1, payload)
    assert packet.pid_bits == bits
    changed = rtp.with_picture_id(payload, packet.pid_at, packet.pid_bits, new)
    descriptor, rest = VpxPayloadDescriptor.parse(changed)
    original, original_rest = VpxPayloadDescriptor.parse(payload)
    assert descriptor.picture_id == new and rest == original_rest and len(changed) == len(payload)
    assert (descriptor.partition_start, descriptor.partition_id) == (original.partition_start, original.partition_id)


def test_h264_keyframe_starts_from_aiortcs_packetizer() -> None:
    nals = [b"\x67" + noise(20, 1), b"\x68" + noise(4, 2), b"\x65" + noise(4000, 3)]  # SPS, PPS, IDR (FU-A)
    payloads = H264Encoder._packetize(nals)
    assert payloads[0][0] & 0x1F == 24  # SPS and PPS in one STAP-A
    starts = [rtp.h264_keyframe_start(p) for p in payloads]
    assert starts[0] and starts[1]  # the STAP-A with the SPS, the first fragment of the IDR slice
    assert not any(starts[2:])  # later fragments
    delta = H264Encoder._packetize([b"\x41" + noise(3000, 4)])
    assert not any(rtp.h264_keyframe_start(p) for p in delta)
    assert rtp.h264_keyframe_start(b"\x65" + noise(10, 5))  # a single IDR NAL unit
    assert not rtp.h264_keyframe_start(b"")
    assert not rtp.h264_keyframe_start(bytes((24, 0, 50, 0x41)))  # a STAP-A cut short


def test_packet_reader_by_codec() -> None:
    assert rtp.packet_reader("video/VP8") is rtp.vp8_packet
    assert rtp.packet_reader("video/H264") is rtp.h264_packet
    audio = rtp.packet_reader("audio/opus")(3, 960, 0, b"\xfc\x01")
    assert audio.keyframe and (audio.seq, audio.timestamp, audio.payload) == (3, 960, b"\xfc\x01")


@pytest.mark.parametrize("mid", ["0", "7", "12", "abcdefgh"])
def test_the_mid_extension_and_header_parse_as_aiortc_reads_them(mid: str) -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=4, uri=rtp.MID_URI)]))
    data = rtp.HEADER.pack(0x90, 0x80 | 97, 4242, 123456, 0xDEADBEEF) + rtp.mid_extension(4, mid) + b"payload"
    packet = RtpPacket.parse(data, extensions)
    assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc) == (
        97, 1, 4242, 123456, 0xDEADBEEF)
    assert packet.extensions.mid == mid and packet.payload == b"payload"
    with pytest.raises(ValueError):
        rtp.mid_extension(15, mid)


def test_rtx_payload_carries_the_original_sequence_number() -> None:
    assert rtp.rtx_payload(0xABCD, b"xyz") == b"\xab\xcdxyz"


def test_payload_bounds_with_csrcs_extension_and_padding() -> None:
    extension = rtp.mid_extension(2, "5")
    data = bytes((0x80 | 0x20 | 0x10 | 2, 97)) + bytes(10) + b"C1C1C2C2" + extension + b"payload" + b"\x00\x00\x03"
    start, payload, end = rtp.payload_bounds(data)
    assert start == 20 and data[payload:end] == b"payload"
    assert rtp.one_byte_element(data, start, 2) == b"5"
    assert rtp.one_byte_element(data, start, 3) is None
    plain = rtp.HEADER.pack(0x80, 97, 1, 2, 3) + b"abc"
    assert rtp.payload_bounds(plain) == (0, 12, 15)
    with pytest.raises(ValueError):
        rtp.payload_bounds(bytes((0x90, 97)) + bytes(10) + b"\xbe\xde\x00\x09")  # a block longer than the packet


def test_one_byte_element_skips_padding_and_stops_at_id_15() -> None:
    block = b"\xbe\xde\x00\x02" + b"\x00\x10\x07" + b"\x21\xaa\xbb" + b"\x00\x00"
    data = bytes(12) + block
    assert rtp.one_byte_element(data, 12, 1) == b"\x07"  # id 1, one byte, after a padding byte
    assert rtp.one_byte_element(data, 12, 2) == b"\xaa\xbb"
    stop = bytes(12) + b"\xbe\xde\x00\x01" + b"\xf0\x10\x07\x00"
    assert rtp.one_byte_element(stop, 12, 1) is None
    two_byte = bytes(12) + b"\x10\x00\x00\x01" + b"\x01\x01\x07\x00"  # RFC 8285 two-byte form
    assert rtp.one_byte_element(two_byte, 12, 1) is None
