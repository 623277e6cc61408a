"""Issue 8's capacity benchmark: our SFU and Janus side by side, one presenter to N receivers.

    python -m bench.capacity --receivers 10 30 60 --seconds 20 [--sfu both|giaoban|janus]
                             [--processes P] [--plot [PATH]]
    make bench N="10 30 60 120 200" SECONDS=20

For each N, ours then Janus (same clips, same receiver code, same measuring window), each on a
fresh server on 127.0.0.1: our whole service as ``tests/support/live.py`` starts it, Debian's
Janus 1.1 VideoRoom (installed with apt when missing) as ``bench/janus.py`` does. One presenter
publishes pre-encoded VP8 in two layers — 1280×720 at ~1.5 Mbit/s and 320×180 at ~150 kbit/s,
30 fps — and Opus (``bench/clips.py``: encoded once, cached under ``bench/results/.build/``). N
receivers spread over processes join as ward rooms do, muted but sending Opus silence 50 times a
second, and receive the full video and the audio without decoding (``bench/loadgen.py``,
``bench/receivers.py``). An SFU whose receivers lose more than ``--loss-limit`` % (RTP sequence
gaps, or video frames that never arrived) is not run at larger N.

Per run, over the window: the SFU's CPU (% of one core, summed over its processes: our SFU
workers, the janus process; our web process apart), forwarded packets per second (our workers'
``counters`` op, Janus's admin API), CPU µs per forwarded packet, receiver loss (sequence gaps per
SSRC: expected vs received), the presenter → receiver latency p50/p95 (the monotonic clock stamp
the presenter puts at the end of each full-layer frame), join time p95 (signalling start → first
media packet), the SFU's memory (RSS, summed), the load generator's own CPU (a warning when one of
its processes passes 85 % of a core or the machine is nearly all busy), which side ran out of CPU,
and the capacity per dedicated SFU core: 1e6 / (µs per packet) / (packets per second one
receiver gets). A table on screen, ``bench/results/capacity.json`` (one record per SFU and N, and
the ratio ours/Janus of µs per packet for each N), and with ``--plot`` a PNG (``bench.plot``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import measure

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_JSON = RESULTS / "capacity.json"
DEFAULT_PLOT = Path("docs/performance.png")
SFUS = ("giaoban", "janus")
GENERATOR_BUSY = 85.0  # % of a core: a load generator process this busy may be the bottleneck
SFU_BUSY = 90.0  # % of a core: an SFU process this busy is out of CPU
MACHINE_BUSY = 0.9  # of every core
LEAD = 0.5  # seconds between announcing the window and its start


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``values`` (nearest rank on sorted values), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def auto_processes(receivers: int) -> int:
    """Receiver processes for ``receivers``: one per 100 receivers, at most one per core."""
    return max(1, min(os.cpu_count() or 1, math.ceil(receivers / 100)))


def shares(receivers: int, processes: int) -> list[int]:
    return [len(range(i, receivers, processes)) for i in range(processes) if i < receivers]


# -- one run --------------------------------------------------------------------------------------


def run_one(target: Any, receivers: int, seconds: float, *, processes: int, settle: float = 2.0,
            keyframe_interval: float = 0.3, concurrency: int = 4, rcvbuf: int = 0, audio_sender: str = "lean") -> dict[str, Any]:
    """Start ``target`` for ``receivers``, run the load, measure one window, stop everything."""
    from bench.loadgen import Fleet

    fleet = Fleet()
    started = time.monotonic()
    try:
        target.start(receivers)
        target.presenting(fleet.start_presenter(target.presenter(keyframe_interval)))
        specs = target.receivers(shares(receivers, processes), concurrency=concurrency, rcvbuf=rcvbuf, audio_sender=audio_sender)
        ready = fleet.start_receivers(specs, timeout=60 + 3 * receivers)
        setup = time.monotonic() - started
        time.sleep(settle)

        generator = fleet.pids
        sfu = target.sfu_pids(generator)
        commands = sorted({measure.cmdline(pid)[:120] for pid in sfu})
        web = target.web_pid()
        watched = sfu + generator + ([web] if web else [])
        forwarded0, read0 = target.forwarded_packets()
        start = time.monotonic_ns() + int(LEAD * 1e9)  # every process knows the window before it starts
        end = start + int(seconds * 1e9)
        fleet.window.set(start, end)
        _sleep_until(start)
        cpu0 = {pid: measure.cpu_seconds(pid) for pid in watched}
        idle0, drops0, t0 = measure.machine_idle_seconds(), measure.udp_receive_buffer_errors(), time.monotonic()
        _sleep_until(end)
        elapsed = time.monotonic() - t0
        cpu1 = {pid: measure.cpu_seconds(pid) for pid in watched}
        idle, drops = measure.machine_idle_seconds() - idle0, measure.udp_receive_buffer_errors() - drops0
        forwarded1, read1 = target.forwarded_packets()
        rss = sum(measure.rss_mib(pid) for pid in sfu)
        presenter = fleet.collect("done", [fleet.presenter], 60)[0]
        done = fleet.collect("done", fleet.receivers, 60)
    finally:
        fleet.stop()
        target.stop()

    def percent(pids: list[int]) -> float:
        return 100 * sum(cpu1[p] - cpu0[p] for p in pids) / elapsed

    sfu_cpu = sum(cpu1[p] - cpu0[p] for p in sfu)
    forwarded_rate = (forwarded1 - forwarded0) / (read1 - read0)
    joined = sum(r["joined"] for r in ready)
    expected = sum(d["expected"] for d in done)
    received = sum(d["received"] for d in done)
    frames = sum(d["frames"] for d in done)
    latencies = [v for d in done for v in d["latencies_us"]]
    joins = [t for d in done for t in d["join_times"]]
    per_process = {pid: 100 * (cpu1[pid] - cpu0[pid]) / elapsed for pid in watched}
    generator_max = max((per_process[p] for p in generator), default=0.0)
    receivers_cpu = sum(cpu1[p.pid] - cpu0[p.pid] for p in fleet.receivers)
    cores = os.cpu_count() or 1
    busy = max(0.0, cores * elapsed - idle)
    record: dict[str, Any] = {
        "sfu": target.name, "sfu_version": target.version, "receivers": receivers, "joined": joined,
        "receiving": sum(r["receiving"] for r in ready), "connected": sum(d["connected"] for d in done),
        "seconds": round(elapsed, 2), "setup_seconds": round(setup, 1), "processes": len(fleet.receivers),
        "sfu_processes": len(sfu), "sfu_commands": commands,
        "sfu_cpu_percent": round(100 * sfu_cpu / elapsed, 1),
        "sfu_process_max_cpu_percent": round(max((per_process[p] for p in sfu), default=0.0), 1),
        "web_cpu_percent": round(per_process[web], 1) if web else None,
        "forwarded_packets_per_second": round(forwarded_rate),
        "cpu_us_per_packet": round(1e6 * sfu_cpu / (forwarded_rate * elapsed), 2) if forwarded_rate > 0 else None,
        "received_packets_per_second": round(sum(d["packets"] for d in done) / elapsed),
        "packets_per_receiver_per_second": round(forwarded_rate / joined, 1) if joined else None,
        "loss_percent": round(max(0.0, 100 * (expected - received) / expected), 3) if expected else None,
        "expected_packets": expected, "received_packets": received,
        "video_frames_percent": round(100 * frames / (presenter["frames"] * joined), 2) if presenter["frames"] and joined else None,
        "latency_ms_p50": _ms(percentile(latencies, 0.5)), "latency_ms_p95": _ms(percentile(latencies, 0.95)),
        "latency_samples": len(latencies),
        "join_time_p95_s": round(percentile(joins, 0.95) or 0, 3) if joins else None,
        "sfu_rss_mib": round(rss, 1),
        "presenter_cpu_percent": round(per_process[fleet.presenter.pid], 1),
        "receivers_cpu_percent": round(100 * receivers_cpu / elapsed, 1),
        "load_generator_max_process_cpu_percent": round(generator_max, 1),
        "load_generator_us_per_received_packet": round(1e6 * receivers_cpu / received, 2) if received else None,
        "machine_cpu_percent": round(100 * busy / elapsed, 1), "cores": cores,
        "udp_receive_buffer_errors": drops,
        "presenter": presenter, "muted_audio_packets_per_second": round(sum(d["muted_audio_sent"] for d in done) / elapsed),
        "srtp_profiles": sorted({p for r in ready for p in r["srtp_profiles"]}),
        "errors": [e for r in ready for e in r["errors"]][:5],
    }
    limited = []
    if record["sfu_process_max_cpu_percent"] >= SFU_BUSY:
        limited.append("sfu")
    warnings = []
    if generator_max >= GENERATOR_BUSY:
        warnings.append(f"a load generator process used {generator_max:.0f} % of a core")
    if busy / elapsed >= MACHINE_BUSY * cores:
        warnings.append(f"the machine was {100 * busy / elapsed:.0f} % busy (of {100 * cores} %)")
    if warnings:
        limited.append("load_generator")
    record["limited_by"] = limited
    record["warnings"] = warnings
    if record["cpu_us_per_packet"] and record["packets_per_receiver_per_second"]:
        record["receivers_per_sfu_core"] = round(1e6 / record["cpu_us_per_packet"] / record["packets_per_receiver_per_second"])
    else:
        record["receivers_per_sfu_core"] = None
    return record


def _sleep_until(ns: int) -> None:
    time.sleep(max(0.0, (ns - time.monotonic_ns()) / 1e9))


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 2)


def delivery_loss(record: dict[str, Any]) -> float:
    """The worst of the sequence-gap loss, the video frames that never arrived and the receivers
    that could not join, in % (100 for a run that failed)."""
    if not record.get("joined") or record.get("error"):
        return 100.0
    frames = record.get("video_frames_percent")
    missing = max(0.0, 100 - frames) if frames is not None else 100.0
    absent = 100 * (record["receivers"] - record["joined"]) / record["receivers"]
    return float(max(record.get("loss_percent") or 0.0, missing, absent))


# -- the report -----------------------------------------------------------------------------------

COLUMNS = [
    ("sfu", "sfu", "{}"), ("N", "receivers", "{}"), ("joined", "joined", "{}"),
    ("SFU cpu%", "sfu_cpu_percent", "{:.1f}"), ("web%", "web_cpu_percent", "{:.1f}"),
    ("fwd pkt/s", "forwarded_packets_per_second", "{}"), ("µs/pkt", "cpu_us_per_packet", "{:.1f}"),
    ("loss%", "loss_percent", "{:.2f}"), ("frames%", "video_frames_percent", "{:.1f}"),
    ("lat p50", "latency_ms_p50", "{:.1f}"), ("lat p95", "latency_ms_p95", "{:.1f}"),
    ("join p95", "join_time_p95_s", "{:.2f}"), ("RSS MiB", "sfu_rss_mib", "{:.0f}"),
    ("gen max%", "load_generator_max_process_cpu_percent", "{:.0f}"), ("rcv/core", "receivers_per_sfu_core", "{}"),
    ("limited by", "limited_by", "{}"),
]


def _cell(value: Any, form: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return ",".join(value) or "–"
    return form.format(value)


def table(records: list[dict[str, Any]]) -> str:
    rows = [[title for title, _, _ in COLUMNS]] + [[_cell(r.get(key), form) for _, key, form in COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours/Janus µs per forwarded packet, for each N both ran."""
    out = []
    for n in sorted({r["receivers"] for r in records}):
        ours = next((r for r in records if r["sfu"] == "giaoban" and r["receivers"] == n), None)
        theirs = next((r for r in records if r["sfu"] == "janus" and r["receivers"] == n), None)
        if ours and theirs and ours.get("cpu_us_per_packet") and theirs.get("cpu_us_per_packet"):
            out.append({"receivers": n, "giaoban_us_per_packet": ours["cpu_us_per_packet"],
                        "janus_us_per_packet": theirs["cpu_us_per_packet"],
                        "ratio": round(ours["cpu_us_per_packet"] / theirs["cpu_us_per_packet"], 2)})
    return out


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": platform.python_version()}


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# -- the whole benchmark ---------------------------------------------------------------------------


def run(receivers: list[int], seconds: float, *, sfu: str = "both", processes: int | None = None,
        json_path: Path = DEFAULT_JSON, plot: Path | None = None, loss_limit: float = 1.0, settle: float = 2.0,
        keyframe_interval: float = 0.3, concurrency: int = 4, rcvbuf: int = 0, audio_sender: str = "lean",
        out: Any = sys.stdout) -> dict[str, Any]:
    """Every run, in order; returns (and writes to ``json_path``) the document."""
    from bench.clips import bench_clips
    from bench.targets import GiaoBan, JanusTarget, demo_database

    sides = SFUS if sfu == "both" else (sfu,)
    clips = bench_clips()  # encode now (or find the cache), not inside a run
    document: dict[str, Any] = {
        "tool": "bench.capacity", "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
        "media": clips.info(), "settings": {
            "receivers": receivers, "seconds": seconds, "sfu": sfu, "processes": processes or "auto", "loss_limit_percent": loss_limit,
            "settle_seconds": settle, "keyframe_interval_s": keyframe_interval, "join_concurrency": concurrency,
            "receiver_rcvbuf": rcvbuf or None, "muted_audio_sender": audio_sender,
        },
        "runs": [], "ratios": [], "stopped": {},
    }
    work = Path(tempfile.mkdtemp(prefix="giaoban-capacity-"))
    failed = False
    try:
        targets: dict[str, Any] = {}
        if "giaoban" in sides:
            targets["giaoban"] = GiaoBan(work, demo_database(work, max(receivers)))
        if "janus" in sides:
            targets["janus"] = JanusTarget(work)
        for n in receivers:
            for name in sides:
                if name in document["stopped"]:
                    continue
                p = processes or auto_processes(n)
                print(f"capacity: {name}, {n} receivers in {p} process{'es' if p > 1 else ''}, {seconds:g} s …", file=out, flush=True)
                try:
                    record = run_one(targets[name], n, seconds, processes=p, settle=settle, keyframe_interval=keyframe_interval,
                                     concurrency=concurrency, rcvbuf=rcvbuf, audio_sender=audio_sender)
                except Exception as e:  # recorded; this SFU goes no further, the other carries on
                    failed = True
                    record = {"sfu": name, "receivers": n, "joined": 0, "error": f"{type(e).__name__}: {e}"[:2000],
                              "warnings": [], "limited_by": []}
                    print(f"capacity: {name} at N={n} failed: {record['error'][:500]}", file=out, flush=True)
                document["runs"].append(record)
                document["ratios"] = ratios(document["runs"])
                write_json(json_path, document)
                print(table([record]), file=out, flush=True)
                for warning in record["warnings"]:
                    print(f"WARNING: {warning}: the load generator may be the bottleneck of this run", file=out, flush=True)
                loss = delivery_loss(record)
                if loss > loss_limit:
                    document["stopped"][name] = {"receivers": n, "loss_percent": round(loss, 2)}
                    print(f"capacity: {name} lost {loss:.2f} % at N={n}: no larger N for it", file=out, flush=True)
    except KeyboardInterrupt:
        failed = False
        raise
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            print(f"capacity: something failed; the logs (Janus's, our server's folder) are kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    write_json(json_path, document)
    print("\n" + table(document["runs"]), file=out)
    for r in document["ratios"]:
        print(f"N={r['receivers']}: ours/Janus µs per packet = {r['giaoban_us_per_packet']}/{r['janus_us_per_packet']} "
              f"= {r['ratio']}", file=out)
    print(f"written: {json_path}", file=out)
    if plot is not None:
        from bench.plot import plot as draw

        draw(document, plot)
        print(f"plotted: {plot}", file=out)
    return document


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receivers", type=int, nargs="+", default=[10, 30, 60], metavar="N", help="receiver counts, in order")
    parser.add_argument("--seconds", type=float, default=20, help="the measuring window of each run")
    parser.add_argument("--sfu", choices=("both",) + SFUS, default="both")
    parser.add_argument("--processes", type=int, default=None,
                        help="receiver processes (default: one per 100 receivers, at most one per core)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where the records go (default {DEFAULT_JSON})")
    parser.add_argument("--plot", type=Path, nargs="?", const=DEFAULT_PLOT, default=None,
                        help=f"also draw µs per packet and loss against N as a PNG (default path {DEFAULT_PLOT})")
    parser.add_argument("--loss-limit", type=float, default=1.0, help="%% loss past which an SFU is not run at larger N")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the last join and the window")
    parser.add_argument("--keyframe-interval", type=float, default=0.3,
                        help="the presenter honours at most one keyframe request per this many seconds per layer (libwebrtc: 0.3)")
    parser.add_argument("--join-concurrency", type=int, default=4, help="receivers joining at once in each process")
    parser.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of the receivers' sockets in bytes (0: the kernel's)")
    parser.add_argument("--audio-sender", choices=("lean", "aiortc"), default="lean",
                        help="how receivers send their muted microphone: one task per process (lean) or aiortc's sender")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.receivers):
        parser.error("receiver counts must be at least 1")

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # clean up (children, Janus, servers) as for Ctrl-C
    try:
        run(args.receivers, args.seconds, sfu=args.sfu, processes=args.processes, json_path=args.json, plot=args.plot,
            loss_limit=args.loss_limit, settle=args.settle, keyframe_interval=args.keyframe_interval,
            concurrency=args.join_concurrency, rcvbuf=args.rcvbuf, audio_sender=args.audio_sender)
    except KeyboardInterrupt:
        print("capacity: interrupted; every process stopped", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
