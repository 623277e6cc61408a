"""The web process's side of the media plane: SFU worker processes, started on first use,
watched and restarted, and a small typed interface to the rooms on them.

A room is placed on the worker with the fewest participants. A room that grows past
``room_spread`` participants on a worker spreads to another worker (when there is one): the
newcomers connect there, and each worker relays its publishers' packets to the room's other
workers (``media.relay``); the workers tell each other, through this supervisor, who is in the
room and what they publish (``shard`` events become ``remote_*`` operations). Speaker changes
are announced by the room's first (home) worker only.

Requests, replies and events are the typed messages of ``media.protocol``
(docs/worker-protocol.md); ``on_event`` receives the events the signalling acts on as JSON
objects (``slots``, ``active_speaker``, ``peer_state``, ``worker_lost``).

When a worker dies, every call in flight fails with ``MediaError("media_unavailable")``,
``on_event`` receives ``{"event": "worker_lost", "rooms": [...]}`` (the signalling tells those
participants to publish and subscribe again; the rooms' parts on other workers are closed) and
a fresh worker takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, assert_never

from media.config import MediaConfig
from media.errors import MediaError
from media.protocol import (
    ActiveSpeaker,
    Answer,
    Call,
    CloseRoom,
    Counters,
    Debug,
    ErrorReply,
    Event,
    Join,
    Leave,
    Link,
    Pin,
    ProtocolError,
    Publish,
    Quality,
    Ready,
    RemoteLeave,
    RemoteMember,
    RemoteSource,
    RemoteSourceGone,
    Reply,
    Request,
    ShardEvent,
    ShardLeave,
    ShardMember,
    ShardSource,
    ShardSourceGone,
    Stats,
    Subscribe,
    Unlink,
    Unpublish,
    Update,
    UpdateMany,
    WorkerLost,
    as_dict,
    decode_from_worker,
    encode,
    event_dict,
    result_of,
)

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
CALL_TIMEOUT = 20.0
COUNTERS = ("packets", "bytes", "retransmitted", "keyframe_requests", "dropped_packets")
R = TypeVar("R")


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[None]
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    rooms: set[str] = field(default_factory=set)
    participants: dict[str, int] = field(default_factory=dict)
    relay_port: int = 0
    stats: Stats | None = None  # its last report
    rates: dict[str, float] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class SubscribeOffer:
    sdp: str
    slots: list[dict[str, str]]


def _figure(stats: Stats | None, name: str) -> int:
    """One of the figures of a worker's last report (0 before its first)."""
    return int(getattr(stats, name)) if stats is not None else 0


class Supervisor:
    def __init__(self, config: MediaConfig, on_event: EventHandler) -> None:
        self.config = config
        self.on_event = on_event
        self._workers: dict[int, _Worker] = {}
        self._rooms: dict[str, list[int]] = {}  # room → the workers holding it, its home first
        self._members: dict[tuple[str, str], int] = {}  # (room, participant) → worker
        self._placing: dict[str, asyncio.Lock] = {}
        self._ids = itertools.count(1)
        self._starting: dict[int, asyncio.Task[_Worker]] = {}
        self._closing = False
        self._restarts = 0
        self._totals = dict.fromkeys(COUNTERS, 0)  # counters of workers that are gone
        self._demux_totals: dict[str, int] = {}  # the same for datagrams dropped by shared UDP ports, by reason
        self._watchers: set[asyncio.Task[None]] = set()

    # -- the typed interface ----------------------------------------------------
    async def join(self, room: str, participant: str, *, muted: bool = False, echo: bool = False) -> None:
        """``echo``: the room is a connection test, where each participant also receives itself."""
        lock = self._placing.setdefault(room, asyncio.Lock())
        async with lock:  # one placement at a time per room: joins come in bursts
            known = self._members.get((room, participant))
            index = known if known is not None else await self._place(room, echo)
            worker = await self._worker(index)
            if known is None:
                self._members[room, participant] = index
                worker.participants[room] = worker.participants.get(room, 0) + 1
                worker.rooms.add(room)
        try:
            await self._call_on(index, Join(room, participant, muted=muted, echo=echo))
        except MediaError:
            if known is None and self._members.get((room, participant)) == index:
                del self._members[room, participant]
                worker.participants[room] = max(0, worker.participants.get(room, 1) - 1)
            raise

    async def publish(self, room: str, participant: str, stream: str, sdp: str, tracks: dict[str, str]) -> str:
        answer = await self._call(room, participant, Publish(room, participant, stream, sdp, tracks))
        return answer.sdp

    async def unpublish(self, room: str, participant: str, stream: str) -> None:
        await self._call(room, participant, Unpublish(room, participant, stream))

    async def subscribe(self, room: str, participant: str, *, thumbnails: int, weak_line: bool) -> SubscribeOffer:
        offer = await self._call(room, participant, Subscribe(room, participant, thumbnails=thumbnails, weak_line=weak_line))
        return SubscribeOffer(offer.sdp, [as_dict(slot) for slot in offer.slots])

    async def answer(self, room: str, participant: str, sdp: str) -> None:
        await self._call(room, participant, Answer(room, participant, sdp))

    async def update(self, room: str, participant: str, *, muted: bool) -> None:
        await self._call(room, participant, Update(room, participant, muted=muted))

    async def mute(self, room: str, participants: list[str]) -> None:
        """Mute ``participants`` of ``room`` (the chair's mute, of one or of all): one message to
        each worker holding any of them, not one round trip per participant. Those not connected to the
        media (or gone) are skipped: there is nothing of theirs to mute."""
        by_worker: dict[int, list[str]] = {}
        for participant in participants:
            index = self._members.get((room, participant))
            if index is not None:
                by_worker.setdefault(index, []).append(participant)
        for index, names in by_worker.items():
            await self._call_on(index, UpdateMany(room, tuple(names), muted=True))

    async def quality(self, room: str, participant: str, *, weak_line: bool, audio_only: bool = False) -> None:
        await self._call(room, participant, Quality(room, participant, weak_line=weak_line, audio_only=audio_only))

    async def pin(self, room: str, participant: str | None) -> None:
        for index in list(self._rooms.get(room) or [await self._home(room)]):
            await self._call_on(index, Pin(room, participant))

    async def leave(self, room: str, participant: str) -> dict[str, Any]:
        """Remove ``participant``; returns a summary of its connection (``rtt_ms``,
        ``loss_percent``: what its receiving side reported, None when unknown)."""
        index = self._members.pop((room, participant), None)
        if index is None or index not in self._workers:
            return {}
        summary = await self._call_on(index, Leave(room, participant))
        worker = self._workers.get(index)
        if worker is not None:
            left = worker.participants.get(room, 1) - 1
            if left > 0:
                worker.participants[room] = left
            else:  # the worker closed its part of the room
                worker.participants.pop(room, None)
                worker.rooms.discard(room)
                holders = self._rooms.get(room, [])
                if index in holders:
                    holders.remove(index)
                for other in holders:
                    self._send_nowait(other, Unlink(room, worker=index))
                if not holders:
                    self._rooms.pop(room, None)
                    self._placing.pop(room, None)
        return as_dict(summary) if summary is not None else {}

    async def debug(self, room: str) -> dict[str, Any]:
        """The diagnostics of the worker holding ``room`` (its home; tests read them)."""
        return as_dict(await self._call_on(await self._home(room), Debug()))

    async def counters(self, room: str) -> dict[str, int]:
        """The packet counters of every worker holding part of ``room``, summed (benchmarks)."""
        total: dict[str, int] = {}
        for index in list(self._rooms.get(room) or [await self._home(room)]):
            for name, value in as_dict(await self._call_on(index, Counters())).items():
                total[name] = total.get(name, 0) + int(value)
        return total

    def worker_pid(self, room: str) -> int | None:
        worker = self._workers.get((self._rooms.get(room) or [-1])[0])
        return worker.process.pid if worker else None

    def placement(self, room: str) -> dict[str, int]:
        """Which worker (by index) each participant of ``room`` is connected to."""
        return {participant: index for (r, participant), index in self._members.items() if r == room}

    def worker_pids(self, room: str) -> list[int]:
        """Every worker process holding part of ``room``."""
        return [self._workers[i].process.pid for i in self._rooms.get(room, []) if i in self._workers]

    def snapshot(self) -> dict[str, Any]:
        """Figures for /metrics: gauges from the workers' last reports, counters summed over
        every worker this process ran (a restarted worker's counts are kept)."""
        out: dict[str, Any] = {"workers": len(self._workers), "restarts": self._restarts}
        for name in ("participants", "publishers", "rooms", "subscriber_lost", "subscriber_expected"):
            out[name] = sum(_figure(w.stats, name) for w in self._workers.values())
        for name in COUNTERS:
            out[name] = self._totals[name] + sum(_figure(w.stats, name) for w in self._workers.values())
        for name in ("packets", "bytes"):
            out[f"{name}_per_second"] = sum(w.rates.get(name, 0.0) for w in self._workers.values())
        if self.config.udp_port >= 0:
            dropped = dict(self._demux_totals)
            for worker in self._workers.values():
                for reason, count in (worker.stats.demux_dropped if worker.stats else {}).items():
                    dropped[reason] = dropped.get(reason, 0) + count
            out["demux_dropped"] = dropped
        return out

    @staticmethod
    def _rates(worker: _Worker, stats: Stats) -> None:
        previous = worker.stats
        if previous is not None and stats.time - previous.time > 0:
            elapsed = stats.time - previous.time
            worker.rates["packets"] = max(0.0, (stats.packets - previous.packets) / elapsed)
            worker.rates["bytes"] = max(0.0, (stats.bytes - previous.bytes) / elapsed)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._starting.values()):
            task.cancel()
        for worker in list(self._workers.values()):
            await self._stop(worker)
        for watcher in list(self._watchers):
            watcher.cancel()
        self._workers.clear()
        self._rooms.clear()
        self._members.clear()

    # -- placement ---------------------------------------------------------------------
    def _load(self, index: int) -> int:
        worker = self._workers.get(index)
        return sum(worker.participants.values()) if worker else 0

    async def _home(self, room: str) -> int:
        holders = self._rooms.get(room)
        if not holders:
            holders = self._rooms[room] = [min(range(self.config.workers), key=self._load)]
        return holders[0]

    async def _place(self, room: str, echo: bool) -> int:
        """The worker for a participant joining ``room``: where the room is, while it has fewer
        than ``room_spread`` participants there; else a worker the room is not on yet."""
        home = await self._home(room)
        holders = self._rooms[room]
        spread = self.config.room_spread
        if echo or spread <= 0:
            return home

        def count(index: int) -> int:
            worker = self._workers.get(index)
            return worker.participants.get(room, 0) if worker else 0

        for index in holders:
            if count(index) < spread:
                return index
        others = [i for i in range(self.config.workers) if i not in holders]
        if not others:
            return min(holders, key=count)
        index = min(others, key=self._load)
        await self._link(room, index)
        return index

    async def _link(self, room: str, new: int) -> None:
        """``room`` spreads to worker ``new``: each of its workers relays to each other one."""
        holders = self._rooms[room]
        added = await self._worker(new)
        existing = list(holders)
        holders.append(new)  # first: the others' shard events in answer to link must reach it
        added.rooms.add(room)
        for index in existing:
            await self._call_on(new, Link(room, worker=index, port=(await self._worker(index)).relay_port))
        for index in existing:
            await self._call_on(index, Link(room, worker=new, port=added.relay_port))
        log.info("room %s spreads to SFU worker %d (%d workers)", room, new, len(holders))

    def _forward(self, worker: _Worker, event: ShardEvent) -> None:
        """A worker's ``shard`` event: what the room's other workers must know."""
        request: Request[None]
        if isinstance(event, ShardMember):
            request = RemoteMember(event.room, event.participant, muted=event.muted)
        elif isinstance(event, ShardSource):
            request = RemoteSource(event.room, event.participant, event.layer, event.kind, event.source_id,
                                   home=worker.relay_port)
        elif isinstance(event, ShardSourceGone):
            request = RemoteSourceGone(event.room, event.participant, event.layer, event.source_id)
        elif isinstance(event, ShardLeave):
            request = RemoteLeave(event.room, event.participant)
        else:
            assert_never(event)
        for index in self._rooms.get(event.room, []):
            if index != worker.index:
                self._send_nowait(index, request)

    # -- workers ---------------------------------------------------------------------
    async def _call(self, room: str, participant: str, request: Request[R]) -> R:
        """``request`` on the worker ``participant`` is connected to (the room's home if none)."""
        index = self._members.get((room, participant))
        if index is None:
            index = await self._home(room)
        return await self._call_on(index, request)

    def _request(self, worker: _Worker, request: Request[Any]) -> tuple[int, asyncio.Future[Any]]:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        assert worker.process.stdin is not None
        worker.process.stdin.write(encode(Call(request_id, request)))
        return request_id, future

    async def _call_on(self, index: int, request: Request[R]) -> R:
        if self._closing:
            raise MediaError("media_unavailable", "the media service is shutting down")
        worker = await self._worker(index)
        request_id = 0
        try:
            request_id, future = self._request(worker, request)
            assert worker.process.stdin is not None
            await worker.process.stdin.drain()
            result = await asyncio.wait_for(future, CALL_TIMEOUT)
        except (ConnectionError, BrokenPipeError):
            raise MediaError("media_unavailable", "the media worker is not running") from None
        except TimeoutError:
            raise MediaError("media_unavailable", f"the media worker did not answer {request.OP} in time") from None
        finally:
            worker.pending.pop(request_id, None)
        return result_of(type(request), result)

    def _send_nowait(self, index: int, request: Request[Any]) -> None:
        """Send ``request`` to a running worker now, in order with everything else sent to it;
        a failure is logged (the room's parts may disagree until its participants rejoin)."""
        worker = self._workers.get(index)
        if worker is None or self._closing:
            return
        try:
            request_id, future = self._request(worker, request)
        except (ConnectionError, RuntimeError):
            return

        def done(result: asyncio.Future[Any]) -> None:
            worker.pending.pop(request_id, None)
            if not result.cancelled() and result.exception() is not None:
                log.warning("SFU worker %d: %s failed: %s", index, request.OP, result.exception())

        future.add_done_callback(done)

    async def _worker(self, index: int) -> _Worker:
        worker = self._workers.get(index)
        if worker is None:
            task = self._starting.get(index)
            if task is None:
                task = self._starting[index] = asyncio.ensure_future(self._start(index))
            try:
                worker = await asyncio.shield(task)
            finally:
                self._starting.pop(index, None)
        return worker

    async def _start(self, index: int) -> _Worker:
        env = dict(os.environ, GIAOBAN_MEDIA_CONFIG=self.config.to_json(), GIAOBAN_MEDIA_WORKER_INDEX=str(index))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media.worker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env, limit=1024 * 1024,
        )
        worker = _Worker(index, process, asyncio.get_running_loop().create_future())
        worker.reader = asyncio.ensure_future(self._read(worker))
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), 30)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise MediaError("media_unavailable", "the media worker did not start") from None
        self._workers[index] = worker
        log.info("SFU worker %d started (pid %d)", index, process.pid)
        return worker

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                try:
                    message = decode_from_worker(line)
                except ProtocolError as exc:  # a bug on the worker's side: this line alone is lost
                    log.error("SFU worker %d sent something outside the protocol: %s", worker.index, exc.message)
                    self._fail(worker, exc.request_id, exc)
                    continue
                self._received(worker, message)
        except (ValueError, ConnectionError):
            log.exception("SFU worker %d sent something unreadable", worker.index)
        await worker.process.wait()
        self._lost(worker)

    def _received(self, worker: _Worker, message: Reply | ErrorReply | Event) -> None:
        if isinstance(message, Reply):
            future = worker.pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message.result)
        elif isinstance(message, ErrorReply):
            if message.id is None:  # a line of ours it could not read: a bug on this side
                log.error("SFU worker %d refused a request line: %s", worker.index, message.message)
            self._fail(worker, message.id, MediaError(message.code, message.message))
        elif isinstance(message, Ready):
            worker.relay_port = message.relay
            if not worker.ready.done():
                worker.ready.set_result(None)
        elif isinstance(message, ShardMember | ShardSource | ShardSourceGone | ShardLeave):
            self._forward(worker, message)
        elif isinstance(message, Stats):
            self._rates(worker, message)
            worker.stats = message
        elif isinstance(message, ActiveSpeaker) and (self._rooms.get(message.room) or [worker.index])[0] != worker.index:
            return  # a spread room's speaker is announced by its home worker
        else:
            self._emit(message)

    @staticmethod
    def _fail(worker: _Worker, request_id: int | None, error: MediaError) -> None:
        """The call ``request_id`` (if it is still waiting) fails with ``error``."""
        future = worker.pending.get(request_id) if request_id is not None else None
        if future is not None and not future.done():
            future.set_exception(error)

    def _emit(self, event: Event) -> None:
        try:
            self.on_event(event_dict(event))
        except Exception:
            log.exception("media event handler failed")

    def _lost(self, worker: _Worker) -> None:
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(MediaError("media_unavailable", "the media worker stopped"))
        if not worker.ready.done():
            worker.ready.set_exception(MediaError("media_unavailable", "the media worker stopped"))
            worker.ready.exception()
        if self._workers.get(worker.index) is not worker:
            return
        del self._workers[worker.index]
        for name in COUNTERS:
            self._totals[name] += _figure(worker.stats, name)
        for reason, count in (worker.stats.demux_dropped if worker.stats else {}).items():
            self._demux_totals[reason] = self._demux_totals.get(reason, 0) + count
        rooms = sorted(worker.rooms)
        for room in rooms:  # the room's parts on other workers go too: everyone rejoins
            self._placing.pop(room, None)
            for other in self._rooms.pop(room, []):
                if other != worker.index and other in self._workers:
                    self._workers[other].participants.pop(room, None)
                    self._workers[other].rooms.discard(room)
                    self._send_nowait(other, CloseRoom(room))
            for key in [k for k in self._members if k[0] == room]:
                del self._members[key]
        if self._closing:
            return
        self._restarts += 1
        log.warning("SFU worker %d (pid %d) exited with %s; %d rooms lost, restarting", worker.index,
                    worker.process.pid, worker.process.returncode, len(rooms))
        watcher = asyncio.ensure_future(self._restart(worker.index))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self._emit(WorkerLost(tuple(rooms)))

    async def _restart(self, index: int) -> None:
        await asyncio.sleep(min(5.0, 0.2 * self._restarts))
        if self._closing or index in self._workers or index in self._starting:
            return
        task = self._starting[index] = asyncio.ensure_future(self._start(index))
        try:
            await task
        except MediaError:
            log.error("SFU worker %d did not restart; the next call tries again", index)
        finally:
            self._starting.pop(index, None)

    async def _stop(self, worker: _Worker) -> None:
        process = worker.process
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if worker.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.reader
