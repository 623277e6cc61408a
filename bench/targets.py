"""The two SFUs the capacity benchmark compares, each started on loopback for one run and stopped
after it: what the coordinator needs from either — the presenter's and the receivers' joining
details, the SFU's processes (CPU, memory) and its count of forwarded packets.

- ``GiaoBan``: our whole service in this process (``tests.support.live``: uvicorn in a thread,
  SFU workers as child processes) with a fresh copy of a demo database; a meeting chaired by
  ``lanhdao`` inviting one ward room per receiver (wards first, then other units, then — past the
  unit map — person accounts the benchmark adds to its database). Forwarded packets: the SFU
  workers' ``counters`` op (``forwarded_packets``, summed over the room's workers). SFU processes: every process below this one that
  is not the load generator's (the supervisor's workers).
- ``JanusTarget``: Debian's Janus (``bench.janus``, admin API on) with a VideoRoom room for the
  presenter and every receiver's audio-only feed. Forwarded packets: the sum of every handle's
  ``stats.out.packets`` (admin ``handle_info``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import measure
from bench.loadgen import Presenter, Receivers

EXTRA_PREFIX = "bench-"


def demo_database(directory: Path, receivers: int) -> Path:
    """A migrated demo database (units, accounts) with enough accounts for ``receivers``: past the
    unit map's meeting rooms, person accounts ``bench-0001``… (officials, spread over the wards)."""
    from sqlmodel import select

    from server import demo
    from server.accounts.models import Role, User
    from server.accounts.service import UNUSABLE_PASSWORD
    from server.db import Database
    from server.migrate import upgrade_to_head
    from server.units.models import Unit
    from server.workdays import service as workdays
    from tests.support.web import DEMO_PASSWORD

    path = directory / "demo.db"
    upgrade_to_head(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        workdays.seed_if_empty(session)
        demo.load(session, DEMO_PASSWORD, meetings=False)
        units = session.exec(select(Unit).where(Unit.active == True, Unit.code != "ct")).all()  # noqa: E712
        wards = [u for u in units if u.level == "ward"] or list(units)
        for i in range(max(0, receivers - len(units))):
            unit = wards[i % len(wards)]
            session.add(User(username=f"{EXTRA_PREFIX}{i + 1:04d}", full_name=f"Bench receiver {i + 1}",
                             email=f"{EXTRA_PREFIX}{i + 1:04d}@bench.invalid", unit_id=unit.id or 0,
                             role=Role.official.value, password_hash=UNUSABLE_PASSWORD))
        session.commit()
    db.dispose()
    return path


class GiaoBan:
    name = "giaoban"

    def __init__(self, work: Path, database: Path) -> None:
        self.work = work
        self.database = database
        self.live: Any = None
        self._serving: Iterator[Any] | None = None
        self.meeting: dict[str, Any] = {}
        self.tokens: list[str] = []
        self.room = ""
        self.version = _git_revision()

    def start(self, receivers: int) -> None:
        from sqlmodel import select

        from server.accounts import sessions
        from server.accounts.models import SessionKind, User
        from server.units.models import Unit
        from tests.support.live import live_settings, serve

        folder = self.work / f"giaoban-{receivers}"
        folder.mkdir(parents=True, exist_ok=True)
        self._serving = serve(live_settings(folder, self.database, heartbeat=30, signal_rate=100))
        self.live = next(self._serving)
        state = self.live.app.state.giaoban
        with state.db.session() as session:
            units = session.exec(select(Unit).where(Unit.active == True, Unit.code != "ct")).all()  # noqa: E712
            codes = [u.code for u in sorted(units, key=lambda u: (u.level != "ward", u.code))][:receivers]
            extra = select(User).where(User.username.startswith(EXTRA_PREFIX)).order_by(User.username)
            people = [u.username for u in session.exec(extra).all()][: receivers - len(codes)]
            if len(codes) + len(people) < receivers:
                raise RuntimeError(f"only {len(codes) + len(people)} accounts to invite for {receivers} receivers")
            accounts = {u.username: u for u in session.exec(select(User).where(User.username.in_(codes + people))).all()}  # type: ignore[attr-defined]
            # Tokens made here, not through /api/auth/token: a password hash per receiver would
            # dominate the set-up. Each is a real session row, as a login makes.
            now = dt.datetime.now(dt.UTC)
            self.tokens = [state.token_signer.issue(sessions.start(session, accounts[n], SessionKind.token, now=now,
                                                                   lifetimes=state.sessions.lifetimes))
                           for n in codes + people]
            session.commit()
        self.meeting = self.live.meeting(units=codes, users=people)

    def presenter(self, keyframe_interval: float) -> Presenter:
        return Presenter("giaoban", self.live.ws_url, meeting=int(self.meeting["id"]), token=self.live.token("lanhdao"),
                         keyframe_interval=keyframe_interval)

    def presenting(self, info: dict[str, Any]) -> None:
        from server.rooms.access import room_name

        self.room = room_name(int(self.meeting["id"]), dt.datetime.fromisoformat(info["occurrence"]))

    def receivers(self, shares: list[int], **options: Any) -> list[Receivers]:
        out, start = [], 0
        for size in shares:
            out.append(Receivers("giaoban", self.live.ws_url, meeting=int(self.meeting["id"]),
                                 tokens=tuple(self.tokens[start : start + size]), **options))
            start += size
        return out

    def sfu_pids(self, load_generator: list[int]) -> list[int]:
        pids = measure.descendants(os.getpid(), exclude=set(load_generator))
        return [p for p in pids if "multiprocessing" not in measure.cmdline(p)]

    def web_pid(self) -> int | None:
        return os.getpid()

    def forwarded_packets(self) -> tuple[int, float]:
        """(packets forwarded so far, when they were read)."""
        counters = self.live.run(self.live.hub.media.counters(self.room))  # every SFU worker of the room
        return int(counters["forwarded_packets"]), time.monotonic()

    def stop(self) -> None:
        if self._serving is not None:
            serving, self._serving = self._serving, None
            with contextlib.suppress(StopIteration):
                next(serving)


class JanusTarget:
    name = "janus"

    def __init__(self, work: Path) -> None:
        from bench import janus

        janus.ensure_installed()
        self.work = work
        self.janus: Any = None
        self.room = 0
        self.feed = 0
        self.mids: tuple[str, ...] = ()
        self.version = janus.version()

    def start(self, receivers: int) -> None:
        from bench.janus import Janus, JanusConfig, JanusSession

        self.janus = Janus(JanusConfig(admin=True), log_path=self.work / f"janus-{receivers}.log")
        self.janus.start()

        async def create() -> int:
            async with JanusSession(self.janus.base_url) as session:
                handle = await session.attach()
                return await handle.create_room(publishers=receivers + 1)

        self.room = asyncio.run(create())

    def presenter(self, keyframe_interval: float) -> Presenter:
        return Presenter("janus", self.janus.base_url, room=self.room, keyframe_interval=keyframe_interval)

    def presenting(self, info: dict[str, Any]) -> None:
        self.feed, self.mids = int(info["feed"]), tuple(info["mids"])

    def receivers(self, shares: list[int], **options: Any) -> list[Receivers]:
        return [Receivers("janus", self.janus.base_url, room=self.room, feed=self.feed, mids=self.mids, count=size, **options)
                for size in shares]

    def sfu_pids(self, load_generator: list[int]) -> list[int]:
        return [self.janus.pid]

    def web_pid(self) -> int | None:
        return None

    def forwarded_packets(self) -> tuple[int, float]:
        """(packets sent on every handle so far, the middle of the admin API walk that read them)."""
        from bench.janus import sent_packets

        started = time.monotonic()
        count = asyncio.run(sent_packets(self.janus))
        if count is None:
            raise RuntimeError("Janus runs without its admin API")
        return count, (started + time.monotonic()) / 2

    def stop(self) -> None:
        if self.janus is not None:
            janus, self.janus = self.janus, None
            janus.stop()


def _git_revision() -> str:
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "media", "server"], capture_output=True, text=True,
                               timeout=5, cwd=Path(__file__).resolve().parent.parent).stdout.strip()
        if out.returncode == 0:
            return out.stdout.strip() + ("+changes" if dirty else "")
    return "?"
