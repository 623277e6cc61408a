"""An SFU worker process: ``python -m media.worker``, driven by the web process over its
standard input and output, one JSON object per line (see ``media.supervisor`` for the other end).

Requests ``{"id", "op", "args"}`` are answered ``{"id", "ok": true, "result"}`` or
``{"id", "ok": false, "error": {"code", "message"}}``; events ``{"event", …}`` go out unasked.
Operations on one room run one at a time, in order. The worker ends when its input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from media import adapter, forwarding
from media.config import MediaConfig
from media.errors import MediaError
from media.ice import use_host_addresses
from media.relay import Relay
from media.room import Room

log = logging.getLogger("media.worker")
MAX_LINE = 1024 * 1024
GC_THRESHOLD = 20_000  # allocations between young collections (CPython: 700)


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


class Worker:
    def __init__(self, config: MediaConfig, send: Callable[[dict[str, Any]], None], relay: Relay | None = None) -> None:
        self.config = config
        self.send = send
        self.relay = relay  # packets to and from this worker's part of rooms spread over workers
        self.rooms: dict[str, Room] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.ops: dict[str, Callable[..., Awaitable[Any]]] = {
            "join": self.join, "publish": self.publish, "unpublish": self.unpublish,
            "subscribe": self.subscribe, "answer": self.answer, "update": self.update,
            "quality": self.quality, "pin": self.pin, "leave": self.leave,
            "close_room": self.close_room, "debug": self.debug, "ping": self.ping,
            "link": self.link, "unlink": self.unlink, "remote_member": self.remote_member,
            "remote_source": self.remote_source, "remote_source_gone": self.remote_source_gone,
            "remote_leave": self.remote_leave, "counters": self.counters,
        }
        self.baseline_sockets = open_sockets()  # stdin/stdout may be socket pairs

    def room(self, room: str, create: bool = False, echo: bool = False) -> Room:
        found = self.rooms.get(room)
        if found is None:
            if not create:
                raise MediaError("not_found", f"no room {room} on this worker")
            found = self.rooms[room] = Room(room, self.config, self.send, echo=echo, relay=self.relay)
        return found

    async def handle(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        op = self.ops.get(str(message.get("op")))
        args = message.get("args") or {}
        try:
            if op is None or not isinstance(args, dict):
                raise MediaError("invalid", f"unknown operation {message.get('op')!r}")
            room = args.get("room")
            if isinstance(room, str):
                lock = self.locks.setdefault(room, asyncio.Lock())
                async with lock:
                    result = await op(**args)
            else:
                result = await op(**args)
            self.send({"id": request_id, "ok": True, "result": result})
        except MediaError as exc:
            self.send({"id": request_id, "ok": False, "error": {"code": exc.code, "message": exc.message}})
        except TypeError as exc:
            self.send({"id": request_id, "ok": False, "error": {"code": "invalid", "message": str(exc)}})
        except Exception as exc:
            log.exception("operation %s failed", message.get("op"))
            self.send({"id": request_id, "ok": False, "error": {"code": "internal", "message": repr(exc)}})

    # -- operations ------------------------------------------------------------
    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def join(self, room: str, participant: str, muted: bool = False, echo: bool = False) -> None:
        self.room(room, create=True, echo=echo).join(participant, muted=muted)

    async def publish(self, room: str, participant: str, stream: str, sdp: str, tracks: dict[str, str]) -> dict[str, str]:
        return {"sdp": await self.room(room).publish(participant, stream, sdp, tracks)}

    async def unpublish(self, room: str, participant: str, stream: str) -> None:
        await self.room(room).unpublish(participant, stream)

    async def subscribe(self, room: str, participant: str, thumbnails: int = 4, weak_line: bool = False) -> dict[str, Any]:
        return await self.room(room).subscribe(participant, thumbnails=thumbnails, weak_line=weak_line)

    async def answer(self, room: str, participant: str, sdp: str) -> None:
        await self.room(room).answer(participant, sdp)

    async def update(self, room: str, participant: str, muted: bool) -> None:
        self.room(room).update(participant, muted=muted)

    async def quality(self, room: str, participant: str, weak_line: bool, audio_only: bool = False) -> None:
        self.room(room).quality(participant, weak_line=weak_line, audio_only=audio_only)

    async def pin(self, room: str, participant: str | None) -> None:
        self.room(room).pin(participant)

    async def leave(self, room: str, participant: str) -> dict[str, Any]:
        found = self.rooms.get(room)
        if found is None:
            return {}
        summary = await found.connection_summary(participant)
        await found.leave(participant)
        if not found.local_members():  # the room's other workers hold the rest, if any
            await self.close_room(room)
        return summary

    # -- a room spread over workers (the supervisor links them and passes their events on) --
    async def link(self, room: str, worker: int, port: int) -> None:
        self.room(room, create=True).link(worker, ("127.0.0.1", port))

    async def unlink(self, room: str, worker: int) -> None:
        found = self.rooms.get(room)
        if found is not None:
            found.unlink(worker)

    async def remote_member(self, room: str, participant: str, muted: bool) -> None:
        self.room(room, create=True).remote_member(participant, muted=muted)

    async def remote_source(self, room: str, participant: str, layer: str, kind: str, id: int, home: int) -> None:
        self.room(room).remote_source(participant, layer, kind, id, ("127.0.0.1", home))

    async def remote_source_gone(self, room: str, participant: str, layer: str, id: int) -> None:
        found = self.rooms.get(room)
        if found is not None:
            found.remote_source_gone(participant, layer, id)

    async def remote_leave(self, room: str, participant: str) -> None:
        found = self.rooms.get(room)
        if found is not None and participant in found.members and found.members[participant].remote:
            await found.leave(participant)

    async def close_room(self, room: str) -> None:
        found = self.rooms.pop(room, None)
        self.locks.pop(room, None)
        if found is not None:
            await found.close()

    async def counters(self) -> dict[str, int]:
        """The packet counters alone: cheap enough to read around a measuring window."""
        return {
            "forwarded_packets": adapter.Counters.packets,
            "retransmitted": adapter.Counters.retransmitted,
            "dropped_packets": adapter.Counters.dropped,
            "direct_packets": adapter.Counters.direct,
            "relayed_out": self.relay.sent if self.relay else 0,
            "relayed_in": self.relay.received if self.relay else 0,
        }

    async def debug(self) -> dict[str, Any]:
        """What this process holds: the leak and no-codec checks read it."""
        own = {asyncio.current_task()}
        return {
            "pid": os.getpid(),
            "rooms": len(self.rooms),
            "tasks": len([t for t in asyncio.all_tasks() if t not in own and not getattr(t, "_giaoban_worker", False)]),
            # threads besides the loop's bounded executor pool (which getaddrinfo uses)
            "threads": sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_")),
            "sockets": open_sockets() - self.baseline_sockets,  # beyond the worker's own stdio
            "codec_contexts": adapter.live_codec_contexts(),
            "codec_attempts": adapter.Counters.codec_attempts,
            "keyframe_requests": forwarding.Stats.keyframe_requests,
            **(await self.counters()),
        }

    # -- statistics ------------------------------------------------------------
    def subscriber_loss(self) -> tuple[int, int]:
        """Packets lost and expected over every subscriber stream, from their receiver reports."""
        lost = received = 0
        for room in self.rooms.values():
            for member in room.members.values():
                if member.subscription is None:
                    continue
                for transceiver in member.subscription.pc.getTransceivers():
                    report = adapter.receiver_report(transceiver.sender)
                    if report is not None:
                        lost += max(0, report.packetsLost)
                        received += max(0, report.packetsReceived)
        return lost, lost + received

    async def report(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            lost, expected = self.subscriber_loss()
            self.send({
                "event": "stats",
                "time": time.time(),
                "rooms": len(self.rooms),
                "participants": sum(r.stats()["participants"] for r in self.rooms.values()),
                "publishers": sum(r.stats()["publishers"] for r in self.rooms.values()),
                "packets": adapter.Counters.packets,
                "bytes": adapter.Counters.bytes,
                "retransmitted": adapter.Counters.retransmitted,
                "keyframe_requests": forwarding.Stats.keyframe_requests,
                "dropped_packets": adapter.Counters.dropped,
                "subscriber_lost": lost,
                "subscriber_expected": expected,
            })

    async def close(self) -> None:
        for room in list(self.rooms):
            await self.close_room(room)


async def serve(config: MediaConfig) -> None:
    adapter.install()
    adapter.restrict_codecs(config.video_codec)
    use_host_addresses(config.addresses)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        out.flush()

    relay = await Relay.open()
    worker = Worker(config, send, relay)
    this = asyncio.current_task()
    this._giaoban_worker = True  # type: ignore[union-attr]
    reporter = asyncio.ensure_future(worker.report())
    reporter._giaoban_worker = True  # type: ignore[attr-defined]
    pending: set[asyncio.Task[None]] = set()
    send({"event": "ready", "pid": os.getpid(), "relay": relay.port})
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line over MAX_LINE: the web process never sends one
            log.error("request line too long, ignored")
            continue
        if not line:
            break
        try:
            message = json.loads(line)
        except ValueError:
            log.error("unreadable request line ignored")
            continue
        if not isinstance(message, dict):
            continue
        task = asyncio.ensure_future(worker.handle(message))
        task._giaoban_worker = True  # type: ignore[attr-defined]
        pending.add(task)
        task.add_done_callback(pending.discard)
    reporter.cancel()
    await worker.close()
    relay.close()


def quiet_garbage_collector() -> None:
    """Fewer, cheaper collections: a worker's objects are peer connections that live for a
    meeting, and its per-packet work makes few containers, so CPython's defaults (a young
    collection every 700 allocations, and full ones walking every connection's objects) spent
    ~15 % of the worker's CPU at 100 subscribers. What is loaded at start is frozen out of
    collection; cycles are still collected, less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def main() -> None:
    logging.basicConfig(level=os.environ.get("GIAOBAN_MEDIA_LOG", "WARNING"), stream=sys.stderr,
                        format="sfu[%(process)d] %(levelname)s %(name)s: %(message)s")
    config = MediaConfig.from_json(os.environ.get("GIAOBAN_MEDIA_CONFIG", "{}"))
    quiet_garbage_collector()
    try:
        import uvloop  # uvicorn[standard] brings it: a cheaper event loop for the packet paths (~7 %)

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(config))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
