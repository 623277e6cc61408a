"""A quick fan-out run of the SFU: one presenter, N receivers, on loopback.

    python -m bench.fanout --receivers 20 --seconds 15 [--processes 2]

Starts the whole service (uvicorn, SFU worker) on 127.0.0.1 with a fresh demo database, plans a
meeting with N ward rooms, has a presenter publish the pre-encoded test clips (VP8 640×360 and
160×90, 15 fps, plus Opus) and N receivers — aiortc clients that never decode, spread over
processes, joining with their ward rooms' accounts — subscribe. Over the measuring window it reads the SFU
worker's CPU from /proc, the packets it forwarded, and what receivers got, and prints one line of
JSON. The full capacity benchmark (against Janus) is issue 8's; this is the quick figure.
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


# -- receivers (child processes) ---------------------------------------------------------
async def receive(ws_url: str, meeting_id: int, tokens: list[str], seconds: float, out: Any, rcvbuf: int = 0) -> None:
    from bench.receivers import counting_tap, set_receive_buffer
    from media import adapter
    from media.ice import use_host_addresses
    from tests.support.rtc_client import RoomClient

    adapter.install()  # no decoding in the load generator: frames are only counted
    use_host_addresses(["127.0.0.1"])
    counts = {"frames": 0, "packets": 0, "joined": 0}
    join_times: list[float] = []

    tap = counting_tap(counts)

    clients = []
    for token in tokens:
        started = time.monotonic()
        client = RoomClient(ws_url, meeting_id, token=token)
        await client.connect()
        await client.join(thumbnails=0)
        offer = await client._request({"type": "subscribe"}, "subscribe_offer", 20)
        from tests.support.rtc_client import loopback_description, loopback_peer_connection

        pc = loopback_peer_connection()
        await pc.setRemoteDescription(loopback_description(offer["sdp"], "offer"))
        for transceiver in pc.getTransceivers():
            tap(transceiver.receiver)
        await pc.setLocalDescription(await pc.createAnswer())
        if rcvbuf:
            set_receive_buffer(pc, rcvbuf)
        await client.send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})
        client.subscriber = pc
        clients.append(client)
        join_times.append(time.monotonic() - started)
        counts["joined"] += 1
    out.put(("ready", counts["joined"]))
    await asyncio.sleep(2)
    before = dict(counts)
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    out.put(("done", {"frames": counts["frames"] - before["frames"], "packets": counts["packets"] - before["packets"],
                      "cpu": time.process_time() - cpu0, "join_times": join_times}))
    await asyncio.gather(*(c.close() for c in clients))


def receiver_main(ws_url: str, meeting_id: int, tokens: list[str], seconds: float, out: Any, rcvbuf: int = 0) -> None:
    asyncio.run(receive(ws_url, meeting_id, tokens, seconds, out, rcvbuf))


# -- the run ------------------------------------------------------------------------------
def demo_database(directory: Path) -> Path:
    from server import demo
    from server.db import Database
    from server.migrate import upgrade_to_head
    from server.workdays import service as workdays

    path = directory / "demo.db"
    upgrade_to_head(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        workdays.seed_if_empty(session)
        demo.load(session, "giaoban-demo", meetings=False)
    db.dispose()
    return path


def run(receivers: int, seconds: float, processes: int, rcvbuf: int = 0) -> dict[str, Any]:
    from sqlmodel import select

    from server.rooms.access import room_name
    from tests.support.live import live_settings, serve
    from tests.support.media_clips import make_clips
    from tests.support.rtc_client import RoomClient

    work = Path(tempfile.mkdtemp(prefix="giaoban-fanout-"))
    database = demo_database(work)
    clips = make_clips(work / "clips")
    live_iter = serve(live_settings(work, database, heartbeat=30, signal_rate=100))
    live = next(live_iter)
    try:
        with live.app.state.giaoban.db.session() as session:
            from server.units.models import Unit

            units = session.exec(select(Unit).where(Unit.active == True, Unit.code != "ct")).all()  # noqa: E712
            wards = [u.code for u in sorted(units, key=lambda u: u.level != "ward")][:receivers]  # wards first
        assert len(wards) == receivers, f"the demo map has only {len(wards)} units to invite"
        meeting = live.meeting(units=wards, users=[])
        tokens = [live.token(code) for code in wards]  # each ward room's endpoint account

        async def presenter() -> dict[str, Any]:
            async with RoomClient(live.ws_url, meeting["id"], token=live.token("lanhdao"), clips=clips) as a:
                welcome = await a.join()
                room = room_name(meeting["id"], __import__("datetime").datetime.fromisoformat(welcome["meeting"]["occurrence"]))
                await a.publish("mid", audio="loud")
                queue: Any = multiprocessing.get_context("spawn").Queue()
                share = [tokens[i::processes] for i in range(processes)]
                procs = [multiprocessing.get_context("spawn").Process(target=receiver_main, args=(live.ws_url, meeting["id"], s, seconds, queue, rcvbuf))
                         for s in share if s]
                for p in procs:
                    p.start()
                ready = 0
                for _ in procs:
                    ready += (await asyncio.to_thread(queue.get, True, 300))[1]
                await asyncio.sleep(2)
                pid = live.hub.media.worker_pid(room)
                debug0 = await live.call(live.hub.media.debug(room))
                cpu0, web0, t0 = cpu_seconds(pid), cpu_seconds(os.getpid()), time.monotonic()
                await asyncio.sleep(seconds)
                elapsed = time.monotonic() - t0
                cpu1, web1 = cpu_seconds(pid), cpu_seconds(os.getpid())
                debug1 = await live.call(live.hub.media.debug(room))
                rss = int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
                results = [(await asyncio.to_thread(queue.get, True, 120))[1] for _ in procs]
                for p in procs:
                    p.join(30)
                forwarded = debug1["forwarded_packets"] - debug0["forwarded_packets"]
                sfu_cpu = cpu1 - cpu0
                join_times = sorted(t for r in results for t in r["join_times"])
                expected_frames = receivers * 15 * seconds  # video main slot, 15 fps
                video_frames = sum(r["frames"] for r in results)
                return {
                    "receivers": receivers, "joined": ready, "seconds": round(elapsed, 1),
                    "sfu_cpu_percent": round(100 * sfu_cpu / elapsed, 1),
                    "forwarded_packets_per_second": round(forwarded / elapsed),
                    "cpu_us_per_packet": round(1e6 * sfu_cpu / forwarded, 1) if forwarded else None,
                    "received_packets_per_second": round(sum(r["packets"] for r in results) / seconds),
                    "received_frames_ratio": round(video_frames / (expected_frames + receivers * 50 * seconds), 3),
                    "load_generator_cpu_percent": round(100 * sum(r["cpu"] for r in results) / seconds, 1),
                    "web_and_presenter_cpu_percent": round(100 * (web1 - web0) / elapsed, 1),
                    "join_time_p95_s": round(join_times[int(0.95 * (len(join_times) - 1))], 2) if join_times else None,
                    "sfu_rss_mib": rss,
                }

        return asyncio.run(presenter())
    finally:
        next(live_iter, None)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receivers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rcvbuf", type=int, default=0,
                        help="SO_RCVBUF of each receiver's socket in bytes (as bench.janus_fanout; 0: the kernel's default)")
    args = parser.parse_args()
    result = run(args.receivers, args.seconds, args.processes, args.rcvbuf)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
