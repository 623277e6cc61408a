"""The test clips are what the SFU tests take them for: right sizes, luma, levels, keyframes."""

from __future__ import annotations

import asyncio
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import pytest
from aiortc.rtp import compute_audio_level_dbov

from tests.support.media_clips import BRIGHTNESS, FPS, FRAME_SAMPLES, LAYERS, PTS_STEP, SECONDS, make_clips, read_clip
from tests.support.rtc_client import EncodedVideoTrack, PcmAudioTrack, mean_luma

DECODERS = {"vp8": "vp8", "h264": "h264"}


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_clips_decode_to_their_size_and_luma(tmp_path: Path, codec: str) -> None:
    clips = make_clips(tmp_path, codec)
    for name, brightness in BRIGHTNESS.items():
        for layer, (width, height, bit_rate) in LAYERS.items():
            packets = clips.packets(name, layer)
            assert len(packets) == FPS * SECONDS
            assert [i for i, p in enumerate(packets) if p.keyframe] == [0, FPS]
            assert [p.pts for p in packets] == [i * PTS_STEP for i in range(FPS * SECONDS)]
            kbits = sum(len(p.data) for p in packets) * 8 / SECONDS / 1000
            assert bit_rate / 1000 * 0.5 < kbits < bit_rate / 1000 * 1.6, (name, layer, kbits)

            decoder = cast(av.VideoCodecContext, av.CodecContext.create(DECODERS[codec], "r"))
            frames = []
            for p in packets:
                frames += decoder.decode(av.Packet(p.data))
            frames += decoder.decode(None)
            assert len(frames) == len(packets)
            for frame in frames:
                assert (frame.width, frame.height) == (width, height)
                assert abs(mean_luma(frame) - brightness) < 8, (name, layer, mean_luma(frame))

    assert read_clip(tmp_path / f"mid-full.{codec}.clip")[0].width == 640


def test_pcm_levels(tmp_path: Path) -> None:
    clips = make_clips(tmp_path / "clips")
    expected = {"loud": (-6.0, -9), "quiet": (-50.0, -53)}
    for name, (peak_dbfs, dbov) in expected.items():
        pcm = clips.pcm(name)
        assert len(pcm) == 2 * 48000
        samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
        assert max(samples) == pytest.approx(32767 * 10 ** (peak_dbfs / 20), abs=1)
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm[: 2 * FRAME_SAMPLES])
        assert compute_audio_level_dbov(frame) == dbov  # what aiortc puts in the RFC 6464 header
    assert clips.pcm("silent") == bytes(2 * 48000)


def test_replay_track_loops_with_running_pts_and_answers_keyframe_requests(tmp_path: Path) -> None:
    clips = make_clips(tmp_path)
    source = clips.packets("mid", "small")[:4]  # keyframe + 3 delta frames

    async def run() -> list[av.Packet[Any]]:
        track = EncodedVideoTrack(source, fps=200)
        out = [await track.recv() for _ in range(6)]
        track.request_keyframe()
        out.append(await track.recv())
        audio = PcmAudioTrack(clips.pcm("loud"))
        frame = await audio.recv()
        assert (frame.samples, frame.sample_rate, frame.format.name, frame.time_base) == (960, 48000, "s16", Fraction(1, 48000))
        return out

    out = asyncio.run(asyncio.wait_for(run(), 5))
    assert [bytes(p) for p in out[:6]] == [p.data for p in source + source[:2]]
    assert [p.pts for p in out] == [i * 450 for i in range(7)]
    assert out[0].time_base == Fraction(1, 90000)
    assert bytes(out[6]) == source[0].data  # the GOP restarted: a keyframe
