"""The fan-out benchmark runs (on a tiny N): figures come from a real run, not a timed test."""

from __future__ import annotations

from bench.fanout import run


def test_the_fanout_benchmark_runs_and_reports_its_figures() -> None:
    result = run(receivers=2, seconds=2, processes=1)
    assert result["receivers"] == 2 and result["joined"] == 2
    assert result["forwarded_packets_per_second"] > 0 and result["cpu_us_per_packet"] > 0
    assert result["received_packets_per_second"] > 0 and result["sfu_rss_mib"] > 0
    assert 0.8 < result["received_frames_ratio"] < 1.2
