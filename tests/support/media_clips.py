"""Known media for the SFU tests, encoded once per test session.

Video: a 2 s, 15 fps clip per *brightness* ("dark", "mid", "bright") in two layers ("full"
640×360 ~600 kbit/s, "small" 160×90 ~100 kbit/s), VP8 or H.264 (constrained baseline, no
B-frames, a keyframe each second). The picture is a background of a known luma with a faint
scrolling texture (so frames are realistic in size and span several RTP packets) and a small
moving square; its mean luma stays within a few units of the brightness, so a receiver can tell
a publisher by the mean luma of a decoded frame (±20) and the layer by the frame's size.

Audio: raw PCM, s16 mono 48 kHz, a 400 Hz sine at "loud" (peak −6 dBFS) and "quiet" (peak
−50 dBFS), and "silent". aiortc's RFC 6465 level of a 20 ms frame is RMS-based, so ~3 dB below
the peak: about −9 and −53 dBov, and −127 for silence.

File format, one file per clip ``{name}-{layer}.{codec}.clip``: the line ``GBCLIP 1``, one line of
JSON (codec, width, height, fps, brightness, time_base "1/90000"), then per packet a
``<qBI`` header (pts in 1/90000, flags bit 0 = keyframe, length) and the packet's bytes.
Audio: ``{name}.s16`` holds the raw samples (little-endian).
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import pytest

FPS = 15
SECONDS = 2
GOP = FPS  # a keyframe each second; the clip is a whole number of GOPs, so it loops cleanly
VIDEO_TIME_BASE = Fraction(1, 90000)
PTS_STEP = 90000 // FPS

BRIGHTNESS: dict[str, int] = {"dark": 60, "mid": 120, "bright": 190}
# layer: (width, height, bit rate)
LAYERS: dict[str, tuple[int, int, int]] = {"full": (640, 360, 600_000), "small": (160, 90, 100_000)}
LUMA_TOLERANCE = 20

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
TONE_HZ = 400  # 8 whole periods in 20 ms: every frame is the same and the loop is seamless
AUDIO_PEAK_DBFS: dict[str, float | None] = {"loud": -6.0, "quiet": -50.0, "silent": None}

_MAGIC = b"GBCLIP 1\n"
_RECORD = struct.Struct("<qBI")
_ENCODERS = {"vp8": "libvpx", "h264": "libx264"}


@dataclass(frozen=True)
class EncodedPacket:
    data: bytes
    pts: int  # in 1/90000
    keyframe: bool


@dataclass(frozen=True)
class ClipInfo:
    codec: str
    width: int
    height: int
    fps: int
    brightness: int


class Clips:
    """The clips written by :func:`make_clips` in ``directory`` (read lazily, then cached)."""

    def __init__(self, directory: Path, codec: str) -> None:
        self.directory = directory
        self.codec = codec
        self._cache: dict[tuple[str, str], tuple[ClipInfo, list[EncodedPacket]]] = {}

    def _load(self, name: str, layer: str) -> tuple[ClipInfo, list[EncodedPacket]]:
        key = (name, layer)
        if key not in self._cache:
            self._cache[key] = read_clip(self.directory / f"{name}-{layer}.{self.codec}.clip")
        return self._cache[key]

    def packets(self, name: str, layer: str) -> list[EncodedPacket]:
        return self._load(name, layer)[1]

    def info(self, name: str, layer: str) -> ClipInfo:
        return self._load(name, layer)[0]

    def brightness(self, name: str) -> int:
        return BRIGHTNESS[name]

    def pcm(self, name: str) -> bytes:
        """s16le mono 48 kHz samples of "loud", "quiet" or "silent" (1 s, loops seamlessly)."""
        return (self.directory / f"{name}.s16").read_bytes()


# -- video -------------------------------------------------------------------------------------


def _texture(width: int, height: int, seed: int) -> bytes:
    """Random bytes twice as wide as the picture, to scroll through."""
    return random.Random(seed).randbytes(2 * width * height)


def _luma_plane(width: int, height: int, line_size: int, brightness: int, texture: bytes, index: int,
                frames: int = FPS * SECONDS) -> bytes:
    """The Y plane of frame ``index`` (of ``frames``): texture of ±12 around ``brightness`` plus a square."""
    table = bytes(max(16, min(235, brightness - 12 + v * 25 // 256)) for v in range(256))
    shift = (index * 4 * width // 640) % width
    square = max(4, height // 8)
    sx = (index * (width - square)) // (frames - 1)
    sy = (height - square) // 2
    square_row = bytes([235 if brightness < 128 else 16]) * square
    pad = b"\x80" * (line_size - width)
    rows = []
    for y in range(height):
        start = y * 2 * width + shift
        row = texture[start : start + width].translate(table)
        if sy <= y < sy + square:
            row = row[:sx] + square_row + row[sx + square :]
        rows.append(row + pad)
    return b"".join(rows)


def _video_frame(width: int, height: int, brightness: int, texture: bytes, index: int, fps: int = FPS,
                 frames: int = FPS * SECONDS) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    y, u, v = frame.planes
    y.update(_luma_plane(width, height, y.line_size, brightness, texture, index, frames))
    for plane in (u, v):
        plane.update(b"\x80" * (plane.line_size * plane.height))
    frame.pts = index
    frame.time_base = Fraction(1, fps)
    return frame


def _encoder(codec: str, width: int, height: int, bit_rate: int, fps: int = FPS, gop: int = GOP,
             vp8_options: dict[str, str] | None = None) -> av.VideoCodecContext:
    ctx = cast(av.VideoCodecContext, av.CodecContext.create(_ENCODERS[codec], "w"))
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = bit_rate
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    if codec == "vp8":
        # lag-in-frames 0 and no alt-ref: one visible packet per frame, nothing hidden
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0",
                       **(vp8_options or {})}
    else:
        # repeat-headers: SPS/PPS before every keyframe, for subscribers that join late
        ctx.options = {
            "profile": "baseline",
            "preset": "veryfast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
        }
    return ctx


def encode_clip(codec: str, layer: str, brightness: int, seed: int = 1, *,
                layers: dict[str, tuple[int, int, int]] | None = None, fps: int = FPS, seconds: int = SECONDS,
                gop: int | None = None, vp8_options: dict[str, str] | None = None) -> list[EncodedPacket]:
    """``layer`` of ``layers`` (default :data:`LAYERS`) at ``fps`` for ``seconds``, a keyframe every
    ``gop`` frames (default: each second); ``vp8_options`` are added to libvpx's."""
    width, height, bit_rate = (layers or LAYERS)[layer]
    count, gop = fps * seconds, gop or fps
    ctx = _encoder(codec, width, height, bit_rate, fps, gop, vp8_options)
    texture = _texture(width, height, seed)
    raw: list[av.Packet[Any]] = []
    for index in range(count):
        raw += ctx.encode(_video_frame(width, height, brightness, texture, index, fps, count))
    raw += ctx.encode(None)
    pts_step = 90000 // fps
    packets = [EncodedPacket(bytes(p), (p.pts or 0) * pts_step, bool(p.is_keyframe)) for p in raw if p.size]
    if len(packets) != count or not packets[0].keyframe:
        raise RuntimeError(f"{codec} {layer}: expected {count} packets starting with a keyframe")
    return packets


def write_clip(path: Path, info: ClipInfo, packets: list[EncodedPacket]) -> None:
    header = dict(vars(info), time_base="1/90000")
    with path.open("wb") as f:
        f.write(_MAGIC + json.dumps(header).encode() + b"\n")
        for p in packets:
            f.write(_RECORD.pack(p.pts, int(p.keyframe), len(p.data)) + p.data)


def read_clip(path: Path) -> tuple[ClipInfo, list[EncodedPacket]]:
    blob = path.read_bytes()
    if not blob.startswith(_MAGIC):
        raise ValueError(f"{path} is not a clip")
    end = blob.index(b"\n", len(_MAGIC))
    header = json.loads(blob[len(_MAGIC) : end])
    header.pop("time_base")
    packets = []
    offset = end + 1
    while offset < len(blob):
        pts, flags, length = _RECORD.unpack_from(blob, offset)
        offset += _RECORD.size
        packets.append(EncodedPacket(blob[offset : offset + length], pts, bool(flags & 1)))
        offset += length
    return ClipInfo(**header), packets


# -- audio -------------------------------------------------------------------------------------


def sine_pcm(peak_dbfs: float | None, seconds: float = 1.0) -> bytes:
    """s16le mono 48 kHz: a 400 Hz sine whose peak is ``peak_dbfs`` (None: silence)."""
    count = int(SAMPLE_RATE * seconds)
    if peak_dbfs is None:
        return bytes(2 * count)
    amplitude = 32767 * 10 ** (peak_dbfs / 20)
    period = [round(amplitude * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE // TONE_HZ)]
    one = struct.pack(f"<{len(period)}h", *period)
    return (one * (count // len(period) + 1))[: 2 * count]


# -- building ----------------------------------------------------------------------------------


def make_clips(directory: Path, codec: str = "vp8", *, names: Sequence[str] | None = None,
               layers: dict[str, tuple[int, int, int]] | None = None, fps: int = FPS, seconds: int = SECONDS,
               gop: int | None = None, vp8_options: dict[str, str] | None = None) -> Clips:
    """Encode every brightness (or only ``names``) in both layers with ``codec`` ("vp8" or "h264"),
    write the audio. The keyword arguments change the clips' layers (sizes and bit rates), frame
    rate, length, keyframe interval and libvpx options (see :func:`encode_clip`)."""
    if codec not in _ENCODERS:
        raise ValueError(f"unknown codec {codec!r}")
    directory.mkdir(parents=True, exist_ok=True)
    for seed, (name, brightness) in enumerate(BRIGHTNESS.items(), start=1):
        if names is not None and name not in names:
            continue
        for layer, (width, height, _) in (layers or LAYERS).items():
            packets = encode_clip(codec, layer, brightness, seed, layers=layers, fps=fps, seconds=seconds, gop=gop,
                                  vp8_options=vp8_options)
            info = ClipInfo(codec, width, height, fps, brightness)
            write_clip(directory / f"{name}-{layer}.{codec}.clip", info, packets)
    for name, peak in AUDIO_PEAK_DBFS.items():
        (directory / f"{name}.s16").write_bytes(sine_pcm(peak))
    return Clips(directory, codec)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("clips-vp8"), "vp8")


@pytest.fixture(scope="session")
def h264_clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("clips-h264"), "h264")
