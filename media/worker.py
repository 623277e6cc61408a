"""An SFU worker process: ``python -m media.worker``, driven by the web process over its
standard input and output, one JSON object per line (``media.protocol``; docs/worker-protocol.md;
``media.supervisor`` is the other end).

Each request line is read into its ``media.protocol`` class and handed to the handler the
dispatch table names; a line that is not a valid request is answered with an ``invalid`` error
and the worker serves on. Events go out unasked. Operations on one room run one at a time, in
order. The worker ends when its input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from media.protocol import (
    Answer,
    CloseRoom,
    ConnectionSummary,
    Counters,
    Debug,
    Diagnostics,
    ErrorReply,
    FromWorker,
    Join,
    Leave,
    Link,
    Offer,
    OfferedSlot,
    PacketCounters,
    Pin,
    Ping,
    Pong,
    ProtocolError,
    Publish,
    PublishAnswer,
    Quality,
    Ready,
    RemoteLeave,
    RemoteMember,
    RemoteSource,
    RemoteSourceGone,
    Reply,
    Request,
    RoomRequest,
    Stats,
    Subscribe,
    Unlink,
    Unpublish,
    Update,
    UpdateMany,
    decode_call,
    encode,
    event_from_dict,
)
from media.relay import Relay
from media.room import Room
from media.udpmux import UdpMux

log = logging.getLogger("media.worker")
MAX_LINE = 1024 * 1024
GC_THRESHOLD = 20_000  # allocations between young collections (CPython: 700)

Send = Callable[[FromWorker], None]
Handler = Callable[[Any], Awaitable[object]]  # takes the request class the table pairs it with


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


class Worker:
    def __init__(self, config: MediaConfig, send: Send, relay: Relay | None = None, mux: UdpMux | None = None) -> None:
        self.config = config
        self.send = send
        self.relay = relay  # packets to and from this worker's part of rooms spread over workers
        self.mux = mux  # the one UDP port every peer connection shares (ICE-lite), when configured
        self.rooms: dict[str, Room] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.handlers: dict[type[Request[Any]], Handler] = {
            Ping: self.ping, Counters: self.counters, Debug: self.debug,
            Join: self.join, Publish: self.publish, Unpublish: self.unpublish, Subscribe: self.subscribe,
            Answer: self.answer, Update: self.update, UpdateMany: self.update_many, Quality: self.quality,
            Pin: self.pin, Leave: self.leave, CloseRoom: self.close_room,
            Link: self.link, Unlink: self.unlink, RemoteMember: self.remote_member, RemoteSource: self.remote_source,
            RemoteSourceGone: self.remote_source_gone, RemoteLeave: self.remote_leave,
        }
        self.baseline_sockets = open_sockets()  # stdin/stdout may be socket pairs

    def room(self, room: str, create: bool = False, echo: bool = False) -> Room:
        found = self.rooms.get(room)
        if found is None:
            if not create:
                raise MediaError("not_found", f"no room {room} on this worker")
            found = self.rooms[room] = Room(room, self.config, self.emit, echo=echo, relay=self.relay, mux=self.mux)
        return found

    def emit(self, event: dict[str, Any]) -> None:
        """A room's event, typed on its way out (one the protocol does not know is a bug here:
        logged, not sent, and the room's operation goes on)."""
        try:
            typed = event_from_dict(event)
        except ProtocolError:
            log.exception("a room emitted an event outside the protocol: %r", event)
            return
        self.send(typed)

    async def handle(self, line: bytes) -> None:
        """Read one request line and answer it; nothing a line holds stops the worker."""
        try:
            call = decode_call(line)
        except ProtocolError as exc:
            log.error("refused a request line: %s", exc.message)
            self.send(ErrorReply(exc.request_id, exc.code, exc.message))
            return
        request = call.request
        try:
            handler = self.handlers[type(request)]
            if isinstance(request, RoomRequest):
                # no await before the lock: requests take their room's lock in the order they came
                async with self.locks.setdefault(request.room, asyncio.Lock()):
                    result = await handler(request)
            else:
                result = await handler(request)
            self.send(Reply(call.id, result))
        except MediaError as exc:
            self.send(ErrorReply(call.id, exc.code, exc.message))
        except Exception as exc:
            log.exception("operation %s failed", request.OP)
            self.send(ErrorReply(call.id, "internal", repr(exc)))

    # -- operations ------------------------------------------------------------
    async def ping(self, request: Ping) -> Pong:
        return Pong(os.getpid())

    async def join(self, request: Join) -> None:
        self.room(request.room, create=True, echo=request.echo).join(request.participant, muted=request.muted)

    async def publish(self, request: Publish) -> PublishAnswer:
        r = request
        return PublishAnswer(await self.room(r.room).publish(r.participant, r.stream, r.sdp, r.tracks))

    async def unpublish(self, request: Unpublish) -> None:
        await self.room(request.room).unpublish(request.participant, request.stream)

    async def subscribe(self, request: Subscribe) -> Offer:
        r = request
        offer = await self.room(r.room).subscribe(r.participant, thumbnails=r.thumbnails, weak_line=r.weak_line)
        return Offer(offer["sdp"], tuple(OfferedSlot(s["mid"], s["slot"], s["kind"]) for s in offer["slots"]))

    async def answer(self, request: Answer) -> None:
        await self.room(request.room).answer(request.participant, request.sdp)

    async def update(self, request: Update) -> None:
        self.room(request.room).update(request.participant, muted=request.muted)

    async def update_many(self, request: UpdateMany) -> None:
        found = self.rooms.get(request.room)
        if found is None:  # everyone in it left meanwhile: nobody to update
            return
        for participant in request.participants:
            member = found.members.get(participant)
            if member is not None and not member.remote:
                found.update(participant, muted=request.muted)

    async def quality(self, request: Quality) -> None:
        r = request
        self.room(r.room).quality(r.participant, weak_line=r.weak_line, audio_only=r.audio_only)

    async def pin(self, request: Pin) -> None:
        self.room(request.room).pin(request.participant)

    async def leave(self, request: Leave) -> ConnectionSummary | None:
        found = self.rooms.get(request.room)
        if found is None:
            return None
        summary = await found.connection_summary(request.participant)
        await found.leave(request.participant)
        if not found.local_members():  # the room's other workers hold the rest, if any
            await self._close_room(request.room)
        return ConnectionSummary(summary["rtt_ms"], summary["loss_percent"])

    # -- a room spread over workers (the supervisor links them and passes their events on) --
    async def link(self, request: Link) -> None:
        self.room(request.room, create=True).link(request.worker, ("127.0.0.1", request.port))

    async def unlink(self, request: Unlink) -> None:
        found = self.rooms.get(request.room)
        if found is not None:
            found.unlink(request.worker)

    async def remote_member(self, request: RemoteMember) -> None:
        self.room(request.room, create=True).remote_member(request.participant, muted=request.muted)

    async def remote_source(self, request: RemoteSource) -> None:
        r = request
        self.room(r.room).remote_source(r.participant, r.layer, r.kind, r.source_id, ("127.0.0.1", r.home))

    async def remote_source_gone(self, request: RemoteSourceGone) -> None:
        found = self.rooms.get(request.room)
        if found is not None:
            found.remote_source_gone(request.participant, request.layer, request.source_id)

    async def remote_leave(self, request: RemoteLeave) -> None:
        found = self.rooms.get(request.room)
        member = found.members.get(request.participant) if found is not None else None
        if found is not None and member is not None and member.remote:
            await found.leave(request.participant)

    async def close_room(self, request: CloseRoom) -> None:
        await self._close_room(request.room)

    async def _close_room(self, room: str) -> None:
        found = self.rooms.pop(room, None)
        self.locks.pop(room, None)
        if found is not None:
            await found.close()

    async def counters(self, request: Counters) -> PacketCounters:
        """The packet counters alone: cheap enough to read around a measuring window."""
        return PacketCounters(
            forwarded_packets=adapter.Counters.packets,
            retransmitted=adapter.Counters.retransmitted,
            dropped_packets=adapter.Counters.dropped,
            direct_packets=adapter.Counters.direct,
            relayed_out=self.relay.sent if self.relay else 0,
            relayed_in=self.relay.received if self.relay else 0,
        )

    async def debug(self, request: Debug) -> Diagnostics:
        """What this process holds: the leak and no-codec checks read it."""
        own = {asyncio.current_task()}
        counters = await self.counters(Counters())
        return Diagnostics(
            pid=os.getpid(),
            rooms=len(self.rooms),
            tasks=len([t for t in asyncio.all_tasks() if t not in own and not getattr(t, "_giaoban_worker", False)]),
            # threads besides the loop's bounded executor pool (which getaddrinfo uses)
            threads=sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_")),
            sockets=open_sockets() - self.baseline_sockets,  # beyond the worker's own stdio
            codec_contexts=adapter.live_codec_contexts(),
            codec_attempts=adapter.Counters.codec_attempts,
            keyframe_requests=forwarding.Stats.keyframe_requests,
            forwarded_packets=counters.forwarded_packets,
            retransmitted=counters.retransmitted,
            dropped_packets=counters.dropped_packets,
            direct_packets=counters.direct_packets,
            relayed_out=counters.relayed_out,
            relayed_in=counters.relayed_in,
        )

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
            self.send(Stats(
                time=time.time(),
                rooms=len(self.rooms),
                participants=sum(r.stats()["participants"] for r in self.rooms.values()),
                publishers=sum(r.stats()["publishers"] for r in self.rooms.values()),
                packets=adapter.Counters.packets,
                bytes=adapter.Counters.bytes,
                retransmitted=adapter.Counters.retransmitted,
                keyframe_requests=forwarding.Stats.keyframe_requests,
                dropped_packets=adapter.Counters.dropped,
                subscriber_lost=lost,
                subscriber_expected=expected,
                demux_dropped=dict(self.mux.dropped) if self.mux is not None else {},
            ))

    async def close(self) -> None:
        for room in list(self.rooms):
            await self._close_room(room)


def open_mux(config: MediaConfig, index: int) -> UdpMux | None:
    """The worker's shared UDP port when ``config.udp_port`` is set (not started yet): on the
    first configured media address (127.0.0.1 when none is), port ``udp_port + index`` (0: a
    free one); candidates carry the announced address when there is one (1:1 NAT)."""
    if config.udp_port < 0:
        return None
    host = config.addresses[0] if config.addresses else "127.0.0.1"
    port = config.udp_port + index if config.udp_port else 0
    return UdpMux(host, port, announced=config.announced_address)


async def serve(config: MediaConfig, index: int = 0) -> None:
    adapter.install()
    adapter.restrict_codecs(config.video_codec)
    use_host_addresses(config.addresses)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def send(message: FromWorker) -> None:
        out.write(encode(message))
        out.flush()

    relay = await Relay.open()
    mux = open_mux(config, index)
    if mux is not None:
        try:
            await mux.start()
        except OSError as exc:  # the port is taken or the address is not this machine's
            log.error("cannot open the media UDP port %s:%d: %s", mux.host, mux.port, exc)
            raise
        log.info("media on one UDP port: %s:%d", mux.host, mux.port)
    worker = Worker(config, send, relay, mux)
    this = asyncio.current_task()
    this._giaoban_worker = True  # type: ignore[union-attr]
    reporter = asyncio.ensure_future(worker.report())
    reporter._giaoban_worker = True  # type: ignore[attr-defined]
    pending: set[asyncio.Task[None]] = set()
    send(Ready(pid=os.getpid(), relay=relay.port))
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line over MAX_LINE: the web process never sends one
            log.error("request line too long, ignored")
            continue
        if not line:
            break
        task = asyncio.ensure_future(worker.handle(line))
        task._giaoban_worker = True  # type: ignore[attr-defined]
        pending.add(task)
        task.add_done_callback(pending.discard)
    reporter.cancel()
    await worker.close()
    relay.close()
    if mux is not None:
        await mux.close()


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
    index = int(os.environ.get("GIAOBAN_MEDIA_WORKER_INDEX", "0"))  # set by media.supervisor
    quiet_garbage_collector()
    try:
        import uvloop  # uvicorn[standard] brings it: a cheaper event loop for the packet paths (~7 %)

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(config, index))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
