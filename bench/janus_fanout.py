"""The fan-out run of ``bench/fanout.py``, against Janus's VideoRoom instead of our SFU.

    python -m bench.janus_fanout --receivers 20 --seconds 15 [--processes 2] [--layers full]

Starts Debian's Janus on loopback (see ``bench/janus.py``), creates a VideoRoom room over the HTTP
API, has a presenter publish the same pre-encoded clips as ``bench.fanout`` (VP8 640×360 and
160×90 as two video m-lines, 15 fps, plus Opus from PCM) and N receivers — aiortc clients that
never decode, spread over processes, one Janus session each — subscribe to the presenter's
audio and full video (``--layers full``: what our SFU sends a receiver with no thumbnails;
``--layers both`` adds the small video). Over the measuring window (opened and closed by this
process for Janus and the receivers alike) it reads Janus's CPU from /proc, the RTP packets Janus
sent (its admin API's per-handle counters, on 127.0.0.1; ``--no-admin``: what receivers got) and
what receivers got, and prints one line of JSON with the fields of ``bench.fanout`` plus a few
of Janus's own (``connected``, UDP drops, the machine's whole CPU, keyframe requests…).

The presenter honours at most one keyframe request per 0.3 s, as libwebrtc's sender does: Janus
1.1.2 asks the publisher for a keyframe for each new subscriber and passes subscribers' PLIs on
(dozens a second once receivers lose packets; our SFU throttles them itself), and an aiortc
presenter answering each one makes nearly every frame a keyframe. ``--keyframe-interval 0``
answers them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def udp_receive_buffer_errors() -> int:
    """The machine's count of UDP datagrams dropped for a full socket buffer (/proc/net/snmp)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores; /proc/stat, idle and iowait excluded):
    over a window, minus Janus and the load generator, what else ran (another job skews the figures)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK


def rss_mib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024


# -- receivers (child processes) ---------------------------------------------------------
async def receive(base_url: str, room: int, feed: int, mids: list[str], count: int, out: Any, window: tuple[Any, Any, Any],
                  rcvbuf: int = 0) -> None:
    """Join ``count`` subscribers one after the other, report "ready", then count what arrives
    between the coordinator's ``window`` events (open, close) and report "done"; close all once
    released. The window is read by a thread, so it holds even when this event loop falls behind."""
    import threading

    import httpx

    from bench.janus import JanusSession
    from bench.receivers import counting_tap, set_receive_buffer
    from media import adapter
    from media.ice import use_host_addresses
    from tests.support.rtc_client import loopback_description, loopback_peer_connection

    adapter.install()  # no decoding in the load generator: frames are only counted
    use_host_addresses(["127.0.0.1"])
    window_open, window_close, release = window
    counts = {"frames": 0, "packets": 0, "joined": 0}
    join_times: list[float] = []

    tap = counting_tap(counts)

    # one long-poll per session stays open: no connection limit
    client = httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=None, max_keepalive_connections=2 * count + 4))
    sessions: list[JanusSession] = []
    pcs = []
    errors: list[str] = []
    for _ in range(count):
        started = time.monotonic()
        try:
            session = await JanusSession(base_url, client).create()
            sessions.append(session)
            handle = await session.attach()
            offer = await handle.subscribe(room, feed, mids)
            pc = loopback_peer_connection()
            pcs.append(pc)
            await pc.setRemoteDescription(loopback_description(offer, "offer"))
            for transceiver in pc.getTransceivers():
                tap(transceiver.receiver)
            await asyncio.wait_for(pc.setLocalDescription(await pc.createAnswer()), 15)
            if rcvbuf:
                set_receive_buffer(pc, rcvbuf)
            await handle.start(pc.localDescription.sdp)
        except Exception as e:  # report, carry on with the others
            errors.append(f"{type(e).__name__}: {e}")
            continue
        join_times.append(time.monotonic() - started)
        counts["joined"] += 1
    deadline = time.monotonic() + 30  # let ICE/DTLS finish (bounded) before the window opens
    while time.monotonic() < deadline and any(pc.connectionState not in ("connected", "failed", "closed") for pc in pcs):
        await asyncio.sleep(0.1)

    def measure() -> None:
        if not window_open.wait(300):
            return
        before, cpu0 = dict(counts), time.process_time()
        window_close.wait(300)
        out.put(("done", {"frames": counts["frames"] - before["frames"], "packets": counts["packets"] - before["packets"],
                          "cpu": time.process_time() - cpu0, "join_times": join_times,
                          "connected": sum(pc.connectionState == "connected" for pc in pcs), "errors": errors[:5]}))

    threading.Thread(target=measure, daemon=True).start()
    out.put(("ready", counts["joined"]))
    await asyncio.to_thread(release.wait, 900)
    for pc in pcs:
        try:
            await asyncio.wait_for(pc.close(), 5)
        except Exception:
            pass
    await asyncio.gather(*(s.destroy() for s in sessions))
    await client.aclose()


def receiver_main(base_url: str, room: int, feed: int, mids: list[str], count: int, out: Any, window: tuple[Any, Any, Any],
                  rcvbuf: int) -> None:
    asyncio.run(receive(base_url, room, feed, mids, count, out, window, rcvbuf))


async def collect(queue: Any, procs: list[Any], kind: str, timeout: float) -> list[Any]:
    """One ``kind`` message from each receiver process, within ``timeout``; raises as soon as a
    process has died without sending it."""
    import queue as queues

    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(messages) < len(procs):
        try:
            message = await asyncio.to_thread(queue.get, True, 1.0)
        except queues.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a receiver process died (exit codes {dead}) before '{kind}'") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(messages)} of {len(procs)} receiver processes sent '{kind}' in {timeout:.0f}s") from None
            continue
        if message[0] == kind:
            messages.append(message)
    return messages


# -- Janus's own counters (admin API) -----------------------------------------------------
async def sent_packets(janus: Any, profiles: set[str] | None = None) -> int | None:
    """RTP packets Janus has sent on every handle so far (admin ``handle_info``: each medium's
    ``stats.out.packets``); None without the admin API. Adds the SRTP profiles seen to ``profiles``."""
    import httpx

    from bench.janus import admin

    if not janus.admin_url:
        return None
    secret = janus.config.admin_secret
    total = 0
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=8)) as client:
        sessions = (await admin(client, janus.admin_url, secret, "list_sessions"))["sessions"]
        for session in sessions:
            handles = (await admin(client, janus.admin_url, secret, "list_handles", f"/{session}")).get("handles", [])
            for handle in handles:
                try:
                    info = (await admin(client, janus.admin_url, secret, "handle_info", f"/{session}/{handle}"))["info"]
                except Exception:
                    continue  # gone meanwhile
                if profiles is not None and info.get("webrtc", {}).get("dtls", {}).get("srtp-profile"):
                    profiles.add(info["webrtc"]["dtls"]["srtp-profile"])
                for medium in info.get("webrtc", {}).get("media", {}).values():
                    total += int(medium.get("stats", {}).get("out", {}).get("packets", 0))
    return total


# -- the run ------------------------------------------------------------------------------
def run(receivers: int, seconds: float, processes: int, layers: str = "full", admin: bool = True,
        keyframe_interval: float = 0.3, rcvbuf: int = 0) -> dict[str, Any]:
    from bench.janus import Janus, JanusConfig, JanusSession
    from tests.support.media_clips import make_clips
    from tests.support.rtc_client import (
        EncodedVideoTrack,
        PcmAudioTrack,
        count_keyframe_requests,
        loopback_description,
        loopback_peer_connection,
        prefer_codec,
        wait_connected,
    )

    work = Path(tempfile.mkdtemp(prefix="giaoban-janus-fanout-"))
    clips = make_clips(work / "clips")
    janus = Janus(JanusConfig(admin=admin), log_path=work / "janus.log")
    janus.start()
    try:
        async def presenter() -> dict[str, Any]:
            async with JanusSession(janus.base_url) as session:
                handle = await session.attach()
                room = await handle.create_room(publishers=1)
                pc = loopback_peer_connection()
                tracks = {"full": EncodedVideoTrack(clips.packets("mid", "full")),
                          "small": EncodedVideoTrack(clips.packets("mid", "small")),
                          "audio": PcmAudioTrack(clips.pcm("loud"))}
                transceivers = {}
                keyframe_requests = {"full": 0, "small": 0}
                keyframes_sent = {"full": 0, "small": 0}
                last_keyframe = {"full": -1e9, "small": -1e9}
                for kind, track in tracks.items():
                    transceiver = pc.addTransceiver(track, direction="sendonly")
                    if track.kind == "video":
                        prefer_codec(transceiver, clips.codec)

                        def on_request(kind: str = kind, track: Any = track) -> None:
                            # like libwebrtc's sender (EncoderRtcpFeedback): requests closer than
                            # keyframe_interval to the last honoured one are dropped
                            keyframe_requests[kind] += 1
                            now = time.monotonic()
                            if now - last_keyframe[kind] >= keyframe_interval:
                                last_keyframe[kind] = now
                                keyframes_sent[kind] += 1
                                track.request_keyframe()

                        count_keyframe_requests(transceiver.sender, on_request)
                    transceivers[kind] = transceiver
                await pc.setLocalDescription(await pc.createOffer())
                feed, answer = await handle.publish(room, pc.localDescription.sdp)
                janus_candidates = [ln.split()[4] for ln in answer.splitlines() if ln.startswith("a=candidate:")]
                await pc.setRemoteDescription(loopback_description(answer, "answer"))
                await wait_connected(pc, 15)
                mids = [transceivers["full"].mid, transceivers["audio"].mid]
                if layers == "both":
                    mids.insert(1, transceivers["small"].mid)
                video_streams = 2 if layers == "both" else 1

                context = multiprocessing.get_context("spawn")
                queue: Any = context.Queue()
                window = (context.Event(), context.Event(), context.Event())  # open, close, release
                share = [len(range(i, receivers, processes)) for i in range(processes)]
                procs = [context.Process(target=receiver_main, args=(janus.base_url, room, feed, mids, n, queue, window, rcvbuf),
                                         daemon=True)
                         for n in share if n]
                for p in procs:
                    p.start()
                try:
                    ready = sum(m[1] for m in await collect(queue, procs, "ready", 60 + 5 * receivers))
                    await asyncio.sleep(2)
                    pid = janus.pid
                    a0 = time.monotonic()
                    sent0 = await sent_packets(janus)  # each handle read at some time in [a0, a1]
                    a1 = time.monotonic()
                    cpu0, me0, t0 = cpu_seconds(pid), cpu_seconds(os.getpid()), time.monotonic()
                    drops0, busy0 = udp_receive_buffer_errors(), machine_busy_seconds()
                    window[0].set()
                    await asyncio.sleep(seconds)
                    window[1].set()
                    elapsed = time.monotonic() - t0
                    cpu1, me1 = cpu_seconds(pid), cpu_seconds(os.getpid())
                    drops, busy = udp_receive_buffer_errors() - drops0, machine_busy_seconds() - busy0
                    b0 = time.monotonic()
                    profiles: set[str] = set()
                    sent1 = await sent_packets(janus, profiles)
                    admin_elapsed = (b0 + time.monotonic()) / 2 - (a0 + a1) / 2
                    rss = rss_mib(pid)
                    results = [m[1] for m in await collect(queue, procs, "done", 60)]
                finally:
                    for event in window:
                        event.set()
                    for p in procs:
                        await asyncio.to_thread(p.join, 30)
                        if p.is_alive():
                            p.terminate()
                    await asyncio.wait_for(pc.close(), 10)
                sfu_cpu = cpu1 - cpu0
                received = sum(r["packets"] for r in results)
                if sent0 is not None and sent1 is not None:
                    forwarded_rate, source = (sent1 - sent0) / admin_elapsed, "janus_admin_out_stats"
                else:
                    forwarded_rate, source = received / elapsed, "receivers"
                join_times = sorted(t for r in results for t in r["join_times"])
                expected_frames = receivers * 15 * elapsed * video_streams
                frames = sum(r["frames"] for r in results)
                return {
                    "sfu": "janus " + str(janus_version()), "receivers": receivers, "joined": ready,
                    "connected": sum(r["connected"] for r in results), "seconds": round(elapsed, 1),
                    "sfu_cpu_percent": round(100 * sfu_cpu / elapsed, 1),
                    "forwarded_packets_per_second": round(forwarded_rate),
                    "forwarded_packets_source": source,
                    "cpu_us_per_packet": round(1e6 * sfu_cpu / (forwarded_rate * elapsed), 1) if forwarded_rate else None,
                    "received_packets_per_second": round(received / elapsed),
                    "received_frames_ratio": round(frames / (expected_frames + receivers * 50 * elapsed), 3),
                    "load_generator_cpu_percent": round(100 * sum(r["cpu"] for r in results) / elapsed, 1),
                    "presenter_cpu_percent": round(100 * (me1 - me0) / elapsed, 1),
                    "join_time_p95_s": round(join_times[int(0.95 * (len(join_times) - 1))], 2) if join_times else None,
                    "sfu_rss_mib": rss,
                    "udp_receive_buffer_errors": drops,  # machine-wide, over the window: the load generator dropping
                    "machine_cpu_percent": round(100 * busy / elapsed, 1),  # all cores (200 = both of 2 busy)
                    "cores": os.cpu_count(),
                    "video_streams_published": 2, "video_streams_received": video_streams,
                    "janus_candidates": sorted(set(janus_candidates)), "srtp_profiles": sorted(profiles),
                    "keyframe_requests": keyframe_requests, "keyframes_on_request": keyframes_sent,
                    "presenter_keyframe_interval_s": keyframe_interval, "receiver_rcvbuf": rcvbuf or None,
                    "errors": [e for r in results for e in r["errors"]][:5],
                }

        result = asyncio.run(presenter())
    except BaseException:
        janus.stop()
        print(f"janus_fanout: failed; Janus's log is {janus.log_path}", file=sys.stderr)
        raise
    janus.stop()
    shutil.rmtree(work, ignore_errors=True)
    return result


def janus_version() -> str:
    import subprocess

    from bench.janus import JANUS_BINARY

    try:
        out = subprocess.run([JANUS_BINARY, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return next((ln.split("(")[-1].rstrip(")") for ln in out.splitlines() if ln.startswith("Janus version")), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receivers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--layers", choices=("full", "both"), default="full",
                        help="which of the presenter's videos each receiver subscribes to, besides audio")
    parser.add_argument("--no-admin", action="store_true", help="count forwarded packets at the receivers instead")
    parser.add_argument("--keyframe-interval", type=float, default=0.3,
                        help="the presenter honours at most one keyframe request per this many seconds (libwebrtc: 0.3; 0: all)")
    parser.add_argument("--rcvbuf", type=int, default=0,
                        help="SO_RCVBUF (bytes) of each receiver's UDP socket (default: the OS's, as bench.fanout)")
    args = parser.parse_args()
    result = run(args.receivers, args.seconds, args.processes, args.layers, admin=not args.no_admin,
                 keyframe_interval=args.keyframe_interval, rcvbuf=args.rcvbuf)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
