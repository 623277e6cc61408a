"""The capacity benchmark's media, encoded once and cached under ``bench/results/.build/``.

Video: VP8 in two layers, "full" 1280×720 at ~1.5 Mbit/s and "small" 320×180 at ~150 kbit/s,
30 fps, 4 s looped (one keyframe per loop; constant bit rate with keyframes capped at 9× an
average frame, as libwebrtc's VP8 encoder does), made by ``tests.support.media_clips``.
Audio: Opus, 20 ms packets — the "loud" 400 Hz tone the presenter sends, and digital silence
(one packet of it is what every receiver's muted microphone repeats). Nothing is encoded while a
benchmark runs: tracks replay these packets.

The cache folder is named by a hash of the settings and of the encoding code, so a change
re-encodes; building happens in a temporary folder renamed into place (concurrent runs are safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent / "results" / ".build"

CODEC = "vp8"
FPS = 30
SECONDS = 4
LAYERS: dict[str, tuple[int, int, int]] = {"full": (1280, 720, 1_500_000), "small": (320, 180, 150_000)}
BRIGHTNESS = "mid"
OPUS_BITRATE = 32_000
OPUS_FRAME = 960  # samples at 48 kHz: 20 ms
AUDIO_TIME_BASE = Fraction(1, 48000)
_VERSION = 1  # bump to re-encode


def _vp8_options(bit_rate: int) -> dict[str, str]:
    return {"minrate": str(bit_rate), "maxrate": str(bit_rate), "bufsize": str(bit_rate), "max-intra-rate": "900"}


@dataclass(frozen=True)
class BenchClips:
    """Where the clips are, and how to read them."""

    directory: Path

    def video(self) -> Any:
        """The ``tests.support.media_clips.Clips`` of the two video layers (name ``BRIGHTNESS``)."""
        from tests.support.media_clips import Clips

        return Clips(self.directory, CODEC)

    def opus(self, name: str) -> list[bytes]:
        """The 20 ms Opus packets of ``name`` ("loud" or "silent")."""
        return read_packets(self.directory / f"{name}.opus")

    def info(self) -> dict[str, Any]:
        """What the clips are, measured (for the report)."""
        return dict(json.loads((self.directory / "info.json").read_text()))


def _key() -> str:
    import av

    from tests.support import media_clips

    source = Path(media_clips.__file__).read_bytes() + Path(__file__).read_bytes()
    settings = json.dumps([_VERSION, CODEC, FPS, SECONDS, LAYERS, BRIGHTNESS, OPUS_BITRATE, av.__version__])
    return hashlib.sha256(source + settings.encode()).hexdigest()[:16]


def bench_clips(build_dir: Path = BUILD_DIR) -> BenchClips:
    """The clips, encoded now unless already cached."""
    target = build_dir / f"clips-{_key()}"
    if (target / "info.json").exists():
        return BenchClips(target)
    build_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="clips-", dir=build_dir))
    try:
        _build(work)
        try:
            os.rename(work, target)  # atomic; fails if another run got there first
        except OSError:
            if not (target / "info.json").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BenchClips(target)


def _build(directory: Path) -> None:
    from tests.support.media_clips import (
        BRIGHTNESS as LUMA,
    )
    from tests.support.media_clips import (
        FRAME_SAMPLES,
        SAMPLE_RATE,
        ClipInfo,
        encode_clip,
        sine_pcm,
        write_clip,
    )

    assert FRAME_SAMPLES == OPUS_FRAME and SAMPLE_RATE == 48000
    info: dict[str, Any] = {"codec": CODEC, "fps": FPS, "seconds": SECONDS, "layers": {}}
    for layer, (width, height, rate) in LAYERS.items():
        packets = encode_clip(CODEC, layer, LUMA[BRIGHTNESS], layers=LAYERS, fps=FPS, seconds=SECONDS, gop=FPS * SECONDS,
                              vp8_options=_vp8_options(rate))
        write_clip(directory / f"{BRIGHTNESS}-{layer}.{CODEC}.clip", ClipInfo(CODEC, width, height, FPS, LUMA[BRIGHTNESS]),
                   packets)
        sizes = [len(p.data) for p in packets]
        info["layers"][layer] = {"width": width, "height": height, "target_kbit_s": rate // 1000,
                                 "kbit_s": round(sum(sizes) * 8 / SECONDS / 1000), "keyframe_bytes": sizes[0],
                                 "largest_frame_bytes": max(sizes)}
    for name, peak in (("loud", -6.0), ("silent", None)):
        opus = encode_opus(sine_pcm(peak, SECONDS))
        write_packets(directory / f"{name}.opus", opus)
        info[f"opus_{name}_kbit_s"] = round(sum(len(p) for p in opus) * 8 / (len(opus) * 0.02) / 1000, 1)
        info[f"opus_{name}_packet_bytes"] = sorted(len(p) for p in opus)[len(opus) // 2]
    (directory / "info.json").write_text(json.dumps(info, indent=1))


def encode_opus(pcm: bytes) -> list[bytes]:
    """s16le mono 48 kHz PCM as 20 ms Opus packets (libopus through PyAV); whole frames only."""
    import av

    codec: Any = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = OPUS_BITRATE
    codec.time_base = AUDIO_TIME_BASE
    codec.options = {"frame_duration": "20", "application": "voip"}
    out: list[bytes] = []
    step = 2 * OPUS_FRAME
    for i, offset in enumerate(range(0, len(pcm) - step + 1, step)):
        frame = av.AudioFrame(format="s16", layout="mono", samples=OPUS_FRAME)
        frame.planes[0].update(pcm[offset : offset + step])
        frame.sample_rate = 48000
        frame.pts = i * OPUS_FRAME
        frame.time_base = AUDIO_TIME_BASE
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return [p for p in out if p]


_LENGTH = struct.Struct("<H")


def write_packets(path: Path, packets: list[bytes]) -> None:
    path.write_bytes(b"".join(_LENGTH.pack(len(p)) + p for p in packets))


def read_packets(path: Path) -> list[bytes]:
    blob, out, offset = path.read_bytes(), [], 0
    while offset < len(blob):
        (length,) = _LENGTH.unpack_from(blob, offset)
        out.append(blob[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return out
