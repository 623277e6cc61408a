"""The unit the SFU forwards: one encoded frame, never decoded.

A frame comes out of a publisher's receive path (reassembled and depayloaded by aiortc's
jitter buffer), goes through the room's slots, and is packetized again by a subscriber's
sender. ``timestamp`` is in the codec's RTP clock (90 kHz video, 48 kHz Opus).
"""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000


@dataclass(slots=True)
class EncodedFrame:
    data: bytes
    timestamp: int
    keyframe: bool = False


def vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the frame tag is 0 on a key frame."""
    return bool(data) and not data[0] & 0x01


def h264_keyframe(data: bytes) -> bool:
    """Whether an Annex-B access unit holds an IDR slice or a sequence parameter set."""
    start = 0
    size = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", start)
        if i < 0 or i + 3 >= size:
            return False
        nal_type = data[i + 3] & 0x1F
        if nal_type in (5, 7):
            return True
        start = i + 3


def keyframe_test(mime_type: str):  # type: ignore[no-untyped-def]
    """The keyframe test for a codec's depayloaded frames (audio frames all count as keyframes)."""
    name = mime_type.lower()
    if name == "video/vp8":
        return vp8_keyframe
    if name == "video/h264":
        return h264_keyframe
    return lambda data: True
