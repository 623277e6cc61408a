"""The capacity benchmark runs end to end on a tiny N, against our SFU and against Janus: the
figures come from real runs (2 receivers, 3 s each), not from timed tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bench.capacity import run, table


def test_the_capacity_benchmark_measures_both_sfus_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "capacity.json"
    out = io.StringIO()
    document = run([2], 3, sfu="both", processes=1, json_path=path, settle=1, out=out)

    assert json.loads(path.read_text()) == json.loads(json.dumps(document))
    runs = {r["sfu"]: r for r in document["runs"]}
    assert set(runs) == {"giaoban", "janus"}
    for sfu, record in runs.items():
        assert "error" not in record, record["error"]
        assert record["receivers"] == 2 and record["joined"] == 2 and record["connected"] == 2, (sfu, record)
        assert record["forwarded_packets_per_second"] > 0 and record["received_packets_per_second"] > 0, (sfu, record)
        assert record["cpu_us_per_packet"] > 0 and record["sfu_cpu_percent"] > 0, (sfu, record)
        assert 0 <= record["loss_percent"] <= 100, (sfu, record)
        assert 0 < record["latency_ms_p50"] <= record["latency_ms_p95"] < 1000, (sfu, record)
        assert 0 < record["join_time_p95_s"] < 30 and record["sfu_rss_mib"] > 0, (sfu, record)
        assert record["video_frames_percent"] > 0 and record["presenter"]["frames"] > 0, (sfu, record)
        # every receiver sends its muted microphone, 50 packets a second
        assert 70 < record["muted_audio_packets_per_second"] < 130, (sfu, record)
        assert record["receivers_per_sfu_core"] > 0 and record["load_generator_us_per_received_packet"] > 0, (sfu, record)
    assert runs["giaoban"]["web_cpu_percent"] is not None and runs["janus"]["web_cpu_percent"] is None
    assert runs["giaoban"]["sfu_processes"] >= 1 and runs["janus"]["sfu_processes"] == 1
    [ratio] = document["ratios"]
    assert ratio["receivers"] == 2 and ratio["ratio"] > 0
    assert "giaoban" in out.getvalue() and "janus" in out.getvalue() and "ours/Janus" in out.getvalue()
    assert "µs/pkt" in table(document["runs"])
