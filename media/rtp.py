"""RTP as the SFU forwards it: each incoming packet is read once, each subscriber gets a new header.

The SFU never reassembles frames. A publisher's packet (decrypted and parsed by aiortc's
transport) becomes a ``Packet``: its sequence number, timestamp, marker and payload, whether it
starts a keyframe, and for VP8 where its picture ID sits. A slot rewrites sequence number,
timestamp, SSRC, payload type and (after a source switch) the VP8 picture ID, and sends it.

Pure functions and plain data: no aiortc, no sockets (``media.adapter`` sends).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000

HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence number, timestamp, SSRC
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


@dataclass(slots=True)
class Packet:
    seq: int
    timestamp: int
    marker: int
    payload: bytes
    keyframe: bool = False  # the first packet of a keyframe (every audio packet counts as one)
    picture_id: int = 0  # VP8 picture ID, when pid_bits is 7 or 15
    pid_at: int = 0  # where it sits in the payload
    pid_bits: int = 0
    level: int | None = None  # audio: RFC 6464 level, 0 loudest … 127 silence


def vp8_packet(seq: int, timestamp: int, marker: int, payload: bytes) -> Packet:
    """Read a VP8 payload descriptor (RFC 7741 §4.2) and the start of the frame it carries."""
    packet = Packet(seq, timestamp, marker, payload)
    size = len(payload)
    if size < 2:
        return packet
    first = payload[0]
    i = 1
    if first & 0x80:  # X: extended control bits
        control = payload[1]
        i = 2
        if control & 0x80 and i < size:  # I: picture ID
            if payload[i] & 0x80:  # M: 15 bits
                if i + 1 >= size:
                    return packet
                packet.picture_id = ((payload[i] & 0x7F) << 8) | payload[i + 1]
                packet.pid_at, packet.pid_bits = i, 15
                i += 2
            else:
                packet.picture_id = payload[i]
                packet.pid_at, packet.pid_bits = i, 7
                i += 1
        if control & 0x40:  # L: TL0PICIDX
            i += 1
        if control & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    # S set and partition 0: the frame starts here; bit 0 of the frame tag is 0 on a key frame
    packet.keyframe = bool(first & 0x10) and not first & 0x07 and i < size and not payload[i] & 0x01
    return packet


def with_picture_id(payload: bytes, at: int, bits: int, picture_id: int) -> bytes:
    """``payload`` with another VP8 picture ID of the same width."""
    if bits == 15:
        return payload[:at] + bytes((0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF)) + payload[at + 2:]
    return payload[:at] + bytes((picture_id & 0x7F,)) + payload[at + 1:]


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether an H.264 RTP payload (RFC 6184) starts an IDR picture or carries its SPS."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: 16-bit size, then a NAL unit, repeated
        i = 1
        while i + 2 < len(payload):
            size = (payload[i] << 8) | payload[i + 1]
            if payload[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28 and len(payload) > 1:  # FU-A: the start fragment of an IDR slice
        return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
    return False


def h264_packet(seq: int, timestamp: int, marker: int, payload: bytes) -> Packet:
    return Packet(seq, timestamp, marker, payload, h264_keyframe_start(payload))


def audio_packet(seq: int, timestamp: int, marker: int, payload: bytes) -> Packet:
    return Packet(seq, timestamp, marker, payload, True)


def packet_reader(mime_type: str):  # type: ignore[no-untyped-def]
    """How to read a codec's packets: ``(seq, timestamp, marker, payload) -> Packet``."""
    name = mime_type.lower()
    if name == "video/vp8":
        return vp8_packet
    if name == "video/h264":
        return h264_packet
    return audio_packet


def mid_extension(extension_id: int, mid: str) -> bytes:
    """The header extension block (RFC 8285 one-byte form) carrying the MID (RFC 8843)."""
    value = mid.encode()
    if not 1 <= extension_id <= 14 or not 1 <= len(value) <= 16:
        raise ValueError("a one-byte header extension has an id of 1–14 and 1–16 bytes")
    element = bytes(((extension_id << 4) | (len(value) - 1),)) + value
    element += b"\x00" * (-len(element) % 4)
    return struct.pack("!HH", 0xBEDE, len(element) // 4) + element


def rtx_payload(sequence_number: int, payload: bytes) -> bytes:
    """An RTX payload (RFC 4588 §4): the original sequence number, then the original payload."""
    return sequence_number.to_bytes(2, "big") + payload


def payload_bounds(data: bytes) -> tuple[int, int, int]:
    """Where the header extension block and the payload of an RTP packet sit (RFC 3550 §5.1):
    ``(extension_start, payload_start, payload_end)``; extension_start is 0 without one. Raises
    ValueError when the lengths do not fit."""
    first = data[0]
    start = 12 + 4 * (first & 0x0F)
    extension = 0
    if first & 0x10:
        if start + 4 > len(data):
            raise ValueError("RTP header extension cut short")
        extension = start
        start += 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
    end = len(data) - data[-1] if first & 0x20 else len(data)
    if start > end:
        raise ValueError("RTP packet shorter than its header")
    return extension, start, end


def one_byte_element(data: bytes, extension: int, element_id: int) -> bytes | None:
    """The value of element ``element_id`` in a one-byte-header extension block (RFC 8285 §4.2)
    starting at ``extension``; None when absent or the block has another form."""
    if (data[extension] << 8) | data[extension + 1] != 0xBEDE:
        return None
    i = extension + 4
    end = i + 4 * ((data[extension + 2] << 8) | data[extension + 3])
    while i < end:
        byte = data[i]
        if byte == 0:  # padding
            i += 1
            continue
        found, size = byte >> 4, (byte & 0x0F) + 1
        if found == 15:
            return None
        if found == element_id:
            return data[i + 1:i + 1 + size]
        i += 1 + size
    return None
