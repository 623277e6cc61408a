"""The web process's side of the media plane: SFU worker processes, started on first use,
watched and restarted, and a small typed interface to the rooms on them.

Rooms are placed on the worker with the fewest participants. When a worker dies, every call in
flight fails with ``MediaError("media_unavailable")``, ``on_event`` receives
``{"event": "worker_lost", "rooms": [...]}`` (the signalling tells those participants to publish
and subscribe again) and a fresh worker takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media.config import MediaConfig
from media.errors import MediaError

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
CALL_TIMEOUT = 20.0
COUNTERS = ("packets", "bytes", "retransmitted", "keyframe_requests", "dropped_packets")


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[None]
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    rooms: set[str] = field(default_factory=set)
    participants: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class SubscribeOffer:
    sdp: str
    slots: list[dict[str, str]]


class Supervisor:
    def __init__(self, config: MediaConfig, on_event: EventHandler) -> None:
        self.config = config
        self.on_event = on_event
        self._workers: dict[int, _Worker] = {}
        self._placement: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._starting: dict[int, asyncio.Task[_Worker]] = {}
        self._closing = False
        self._restarts = 0
        self._totals = dict.fromkeys(COUNTERS, 0)  # counters of workers that are gone
        self._watchers: set[asyncio.Task[None]] = set()

    # -- the typed interface ----------------------------------------------------
    async def join(self, room: str, participant: str, *, muted: bool = False, echo: bool = False) -> None:
        """``echo``: the room is a connection test, where each participant also receives itself."""
        await self._call(room, "join", participant=participant, muted=muted, echo=echo)
        worker = self._workers.get(self._placement.get(room, -1))
        if worker is not None:
            worker.participants[room] = worker.participants.get(room, 0) + 1

    async def publish(self, room: str, participant: str, stream: str, sdp: str, tracks: dict[str, str]) -> str:
        result = await self._call(room, "publish", participant=participant, stream=stream, sdp=sdp, tracks=tracks)
        return str(result["sdp"])

    async def unpublish(self, room: str, participant: str, stream: str) -> None:
        await self._call(room, "unpublish", participant=participant, stream=stream)

    async def subscribe(self, room: str, participant: str, *, thumbnails: int, weak_line: bool) -> SubscribeOffer:
        result = await self._call(room, "subscribe", participant=participant, thumbnails=thumbnails, weak_line=weak_line)
        return SubscribeOffer(result["sdp"], result["slots"])

    async def answer(self, room: str, participant: str, sdp: str) -> None:
        await self._call(room, "answer", participant=participant, sdp=sdp)

    async def update(self, room: str, participant: str, *, muted: bool) -> None:
        await self._call(room, "update", participant=participant, muted=muted)

    async def quality(self, room: str, participant: str, *, weak_line: bool, audio_only: bool = False) -> None:
        await self._call(room, "quality", participant=participant, weak_line=weak_line, audio_only=audio_only)

    async def pin(self, room: str, participant: str | None) -> None:
        await self._call(room, "pin", participant=participant)

    async def leave(self, room: str, participant: str) -> dict[str, Any]:
        """Remove ``participant``; returns a summary of its connection (``rtt_ms``,
        ``loss_percent``: what its receiving side reported, None when unknown)."""
        index = self._placement.get(room)
        if index is None or index not in self._workers:
            return {}
        summary = await self._call(room, "leave", participant=participant)
        worker = self._workers.get(index)
        if worker is not None:
            left = worker.participants.get(room, 1) - 1
            if left <= 0:
                worker.participants.pop(room, None)
                worker.rooms.discard(room)
                self._placement.pop(room, None)
            else:
                worker.participants[room] = left
        return dict(summary or {})

    async def debug(self, room: str) -> dict[str, Any]:
        """The diagnostics of the worker holding ``room`` (tests read them)."""
        return dict(await self._call(room, "debug", with_room=False))

    def worker_pid(self, room: str) -> int | None:
        worker = self._workers.get(self._placement.get(room, -1))
        return worker.process.pid if worker else None

    def snapshot(self) -> dict[str, Any]:
        """Figures for /metrics: gauges from the workers' last reports, counters summed over
        every worker this process ran (a restarted worker's counts are kept)."""
        out: dict[str, Any] = {"workers": len(self._workers), "restarts": self._restarts}
        for name in ("participants", "publishers", "rooms", "subscriber_lost", "subscriber_expected"):
            out[name] = sum(int(w.stats.get(name, 0)) for w in self._workers.values())
        for name in COUNTERS:
            out[name] = self._totals[name] + sum(int(w.stats.get(name, 0)) for w in self._workers.values())
        for name in ("packets", "bytes"):
            out[f"{name}_per_second"] = sum(w.rates.get(name, 0.0) for w in self._workers.values())
        return out

    @staticmethod
    def _rates(worker: _Worker, stats: dict[str, Any]) -> None:
        previous = worker.stats
        elapsed = float(stats.get("time", 0)) - float(previous.get("time", 0))
        if previous and elapsed > 0:
            for name in ("packets", "bytes"):
                worker.rates[name] = max(0.0, (int(stats.get(name, 0)) - int(previous.get(name, 0))) / elapsed)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._starting.values()):
            task.cancel()
        for worker in list(self._workers.values()):
            await self._stop(worker)
        for watcher in list(self._watchers):
            watcher.cancel()
        self._workers.clear()
        self._placement.clear()

    # -- workers ---------------------------------------------------------------------
    async def _call(self, room: str, op: str, *, with_room: bool = True, **args: Any) -> Any:
        if self._closing:
            raise MediaError("media_unavailable", "the media service is shutting down")
        worker = await self._worker_for(room)
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        if with_room:
            args["room"] = room
        line = json.dumps({"id": request_id, "op": op, "args": args}, separators=(",", ":")).encode() + b"\n"
        try:
            assert worker.process.stdin is not None
            worker.process.stdin.write(line)
            await worker.process.stdin.drain()
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        except (ConnectionError, BrokenPipeError):
            raise MediaError("media_unavailable", "the media worker is not running") from None
        except TimeoutError:
            raise MediaError("media_unavailable", f"the media worker did not answer {op} in time") from None
        finally:
            worker.pending.pop(request_id, None)

    async def _worker_for(self, room: str) -> _Worker:
        index = self._placement.get(room)
        if index is None:
            index = min(range(self.config.workers), key=lambda i: sum(self._workers[i].participants.values()) if i in self._workers else 0)
            self._placement[room] = index
        worker = self._workers.get(index)
        if worker is None:
            task = self._starting.get(index)
            if task is None:
                task = self._starting[index] = asyncio.ensure_future(self._start(index))
            try:
                worker = await asyncio.shield(task)
            finally:
                self._starting.pop(index, None)
        worker.rooms.add(room)
        return worker

    async def _start(self, index: int) -> _Worker:
        env = dict(os.environ, GIAOBAN_MEDIA_CONFIG=self.config.to_json())
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
                message = json.loads(line)
                if "id" in message:
                    future = worker.pending.get(message["id"])
                    if future is not None and not future.done():
                        if message.get("ok"):
                            future.set_result(message.get("result"))
                        else:
                            error = message.get("error") or {}
                            future.set_exception(MediaError(str(error.get("code", "internal")), str(error.get("message", ""))))
                elif message.get("event") == "ready":
                    if not worker.ready.done():
                        worker.ready.set_result(None)
                elif message.get("event") == "stats":
                    self._rates(worker, message)
                    worker.stats = message
                else:
                    try:
                        self.on_event(message)
                    except Exception:
                        log.exception("media event handler failed")
        except (ValueError, ConnectionError):
            log.exception("SFU worker %d sent something unreadable", worker.index)
        await worker.process.wait()
        self._lost(worker)

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
            self._totals[name] += int(worker.stats.get(name, 0))
        rooms = sorted(worker.rooms)
        for room in rooms:
            self._placement.pop(room, None)
        if self._closing:
            return
        self._restarts += 1
        log.warning("SFU worker %d (pid %d) exited with %s; %d rooms lost, restarting", worker.index,
                    worker.process.pid, worker.process.returncode, len(rooms))
        watcher = asyncio.ensure_future(self._restart(worker.index))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        try:
            self.on_event({"event": "worker_lost", "rooms": rooms})
        except Exception:
            log.exception("media event handler failed")

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
