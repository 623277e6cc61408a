"""media.protocol, the supervisor ↔ SFU worker protocol: every message survives encode → decode,
a line that is not a valid request gets an error reply and the worker serves on, the worker's
dispatch table answers every request class, and the chair's mute all reaches each worker holding
the room as one message (real worker processes; through the real signalling too)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from media.config import MediaConfig
from media.protocol import (
    EVENTS,
    REPLIES,
    REQUESTS,
    ActiveSpeaker,
    Answer,
    Call,
    CloseRoom,
    ConnectionSummary,
    Counters,
    Debug,
    Diagnostics,
    ErrorReply,
    Event,
    Join,
    Leave,
    Link,
    Offer,
    OfferedSlot,
    PacketCounters,
    PeerState,
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
    Shard,
    ShardLeave,
    ShardMember,
    ShardSource,
    ShardSourceGone,
    SlotFeed,
    Slots,
    Stats,
    Subscribe,
    Unlink,
    Unpublish,
    Update,
    UpdateMany,
    WorkerLost,
    decode_call,
    decode_from_worker,
    encode,
    event_dict,
    event_from_dict,
    result_of,
)
from media.supervisor import Supervisor
from media.worker import Worker
from tests.support.live import Live, live_settings, serve
from tests.support.rtc_client import RoomClient

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
REQUEST_EXAMPLES: list[Request[Any]] = [
    Ping(), Counters(), Debug(),
    Join("r1", "p-a"), Join("r1", "p-b", muted=True, echo=True),
    Publish("r1", "p-a", "camera", SDP, {"0": "camera", "1": "camera_small", "2": "audio"}),
    Unpublish("r1", "p-a", "screen"),
    Subscribe("r1", "p-a"), Subscribe("r1", "p-a", thumbnails=0, weak_line=True),
    Answer("r1", "p-a", SDP),
    Update("r1", "p-a", muted=True),
    UpdateMany("r1", ("p-a", "p-b"), muted=True), UpdateMany("r1", (), muted=False),
    Quality("r1", "p-a", weak_line=True), Quality("r1", "p-a", weak_line=False, audio_only=True),
    Pin("r1", "p-a"), Pin("r1", None),
    Leave("r1", "p-a"),
    CloseRoom("r1"),
    Link("r1", worker=1, port=40001), Unlink("r1", worker=1),
    RemoteMember("r1", "p-c", muted=False),
    RemoteSource("r1", "p-c", "camera", "video", source_id=40001 << 32 | 7, home=40001),
    RemoteSourceGone("r1", "p-c", "camera", source_id=40001 << 32 | 7),
    RemoteLeave("r1", "p-c"),
]
EVENT_EXAMPLES: list[Event] = [
    Ready(pid=4242, relay=40001),
    Stats(time=1700000000.25, rooms=1, participants=3, publishers=2, packets=10, bytes=12000, retransmitted=1,
          keyframe_requests=2, dropped_packets=0, subscriber_lost=1, subscriber_expected=100),
    Slots("r1", "p-a", (SlotFeed("main", "0", "p-b", "camera"), SlotFeed("thumb1", "1", None, None))),
    ActiveSpeaker("r1", "p-b"), ActiveSpeaker("r1", None),
    PeerState("r1", "p-a", "subscribe", "connected"),
    ShardMember("r1", "p-a", muted=True),
    ShardSource("r1", "p-a", "audio", "audio", source_id=40001 << 32 | 3),
    ShardSourceGone("r1", "p-a", "audio", source_id=40001 << 32 | 3),
    ShardLeave("r1", "p-a"),
]
REPLY_EXAMPLES: dict[Any, list[Any]] = {
    type(None): [None],
    Pong: [Pong(4242)],
    PublishAnswer: [PublishAnswer(SDP)],
    Offer: [Offer(SDP, (OfferedSlot("0", "main", "video"), OfferedSlot("8", "audio1", "audio")))],
    ConnectionSummary | None: [ConnectionSummary(12.5, 0.0), ConnectionSummary(None, None), None],
    PacketCounters: [PacketCounters(1, 2, 3, 4, 5, 6)],
    Diagnostics: [Diagnostics(4242, 1, 0, 1, 0, 0, 0, 3, 100, 1, 0, 90, 0, 0)],
}


def subclasses(cls: type) -> set[type]:
    """Every class the module defines on ``cls`` (not the first drafts ``dataclass(slots=True)``
    replaced, which linger among the subclasses until collected)."""
    found = {sub for sub in cls.__subclasses__() if getattr(sys.modules[sub.__module__], sub.__name__, None) is sub}
    for sub in list(found):
        found |= subclasses(sub)
    return found


# -- every message, both ways ------------------------------------------------------------------
def test_the_examples_cover_every_message_class() -> None:
    assert {type(r) for r in REQUEST_EXAMPLES} == set(REQUESTS.values())
    assert {type(e) for e in EVENT_EXAMPLES} == set(EVENTS.values())
    assert set(REPLY_EXAMPLES) == set(REPLIES.values())
    # and the tables hold every class there is (a new one left out of them fails here)
    assert subclasses(Request) - {RoomRequest} == set(REQUESTS.values())
    assert subclasses(Event) - {Shard, WorkerLost} == set(EVENTS.values())


@pytest.mark.parametrize("request_", REQUEST_EXAMPLES, ids=lambda r: type(r).__name__)
def test_a_request_round_trips(request_: Request[Any]) -> None:
    line = encode(Call(17, request_))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["op"] == request_.OP
    assert decode_call(line) == Call(17, request_)


@pytest.mark.parametrize("event", EVENT_EXAMPLES, ids=lambda e: type(e).__name__)
def test_an_event_round_trips(event: Event) -> None:
    assert decode_from_worker(encode(event)) == event
    assert event_from_dict(event_dict(event)) == event


@pytest.mark.parametrize("request_class", list(REQUESTS.values()), ids=lambda c: c.__name__)
def test_a_reply_round_trips_into_what_its_request_answers(request_class: type[Request[Any]]) -> None:
    for result in REPLY_EXAMPLES[REPLIES[request_class]]:
        reply = decode_from_worker(encode(Reply(5, result)))
        assert isinstance(reply, Reply) and reply.id == 5
        assert result_of(request_class, reply.result) == result


def test_error_replies_round_trip() -> None:
    for error in (ErrorReply(3, "not_found", "no room r1 on this worker"), ErrorReply(None, "invalid", "the line is not JSON")):
        assert decode_from_worker(encode(error)) == error


def test_the_shapes_the_signalling_reads_stay_as_they_were() -> None:
    """``on_event`` gets JSON objects (server/rooms/hub.py reads them), rooms' events are
    read as they emit them, and the wire keeps its envelope."""
    assert event_dict(WorkerLost(("r1", "r2"))) == {"event": "worker_lost", "rooms": ["r1", "r2"]}
    assert event_dict(EVENT_EXAMPLES[2]) == {"event": "slots", "room": "r1", "participant": "p-a", "slots": [
        {"slot": "main", "mid": "0", "participant_id": "p-b", "layer": "camera"},
        {"slot": "thumb1", "mid": "1", "participant_id": None, "layer": None},
    ]}
    emitted = {"event": "shard", "room": "r1", "op": "source", "participant": "p-a", "layer": "camera", "kind": "video", "source_id": 9}
    assert event_from_dict(emitted) == ShardSource("r1", "p-a", "camera", "video", 9)
    assert json.loads(encode(Call(1, Pin("r1", None)))) == {"id": 1, "op": "pin", "args": {"room": "r1", "participant": None}}
    assert json.loads(encode(Reply(2, None))) == {"id": 2, "ok": True, "result": None}


@pytest.mark.parametrize(("line", "request_id", "says"), [
    (b"not json", None, "not JSON"),
    (b"[1, 2]", None, "JSON object"),
    (b'{"op": "ping"}', None, "integer id"),
    (b'{"id": true, "op": "ping"}', None, "integer id"),
    (b'{"id": 4, "op": "mute_everyone", "args": {}}', 4, "unknown operation 'mute_everyone'"),
    (b'{"id": 4, "args": {}}', 4, "unknown operation"),
    (b'{"id": 4, "op": "ping", "args": {}, "extra": 1}', 4, "unknown request field 'extra'"),
    (b'{"id": 5, "op": "join", "args": {"room": "r1"}}', 5, "join.participant: missing"),
    (b'{"id": 5, "op": "join", "args": {"room": "r1", "participant": "p", "muted": 1}}', 5, "join.muted: expected true or false"),
    (b'{"id": 5, "op": "join", "args": {"room": "r1", "participant": "p", "colour": "red"}}', 5, "unknown field 'colour'"),
    (b'{"id": 6, "op": "link", "args": {"room": "r1", "worker": "1", "port": 1}}', 6, "link.worker: expected an integer"),
    (b'{"id": 6, "op": "link", "args": {"room": "r1", "worker": 1.5, "port": 1}}', 6, "link.worker: expected an integer"),
    (b'{"id": 7, "op": "update_many", "args": {"room": "r1", "participants": ["a", 2], "muted": true}}', 7,
     "update_many.participants[1]: expected a string"),
    (b'{"id": 7, "op": "publish", "args": {"room": "r1", "participant": "p", "stream": "camera", "sdp": "x", "tracks": {"0": 1}}}',
     7, "publish.tracks.0: expected a string"),
    (b'{"id": 8, "op": "pin", "args": {"room": "r1", "participant": 3}}', 8, "expected a string or null"),
    (b'{"id": 8, "op": "pin", "args": []}', 8, "pin: expected an object"),
])
def test_a_bad_request_line_is_refused_with_a_clear_error(line: bytes, request_id: int | None, says: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_call(line)
    assert caught.value.code == "invalid" and caught.value.request_id == request_id
    assert says in caught.value.message


def test_a_reply_that_does_not_fit_its_request_is_an_internal_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        result_of(Publish, {"sdp": 3})
    assert caught.value.code == "internal" and caught.value.message == "publish result.sdp: expected a string"
    with pytest.raises(ProtocolError) as caught:
        result_of(Leave, {"rtt_ms": "fast", "loss_percent": None})
    assert caught.value.message == "leave result.rtt_ms: expected a number"
    with pytest.raises(ProtocolError):
        result_of(Join, {"anything": 1})  # join answers nothing
    with pytest.raises(ProtocolError):
        decode_from_worker(b'{"event": "shard", "op": "teleport", "room": "r1", "participant": "p"}')
    with pytest.raises(ProtocolError):
        decode_from_worker(b'{"id": 3, "ok": "yes"}')


# -- the worker: its dispatch table, and bad lines ---------------------------------------------
@asynccontextmanager
async def in_process_worker() -> AsyncIterator[tuple[Worker, list[Any]]]:
    sent: list[Any] = []
    worker = Worker(MediaConfig(), sent.append)
    try:
        yield worker, sent
    finally:
        await worker.close()


def test_the_dispatch_table_has_a_handler_for_every_request_class_and_its_type() -> None:
    async def scenario() -> None:
        async with in_process_worker() as (worker, _):
            assert set(worker.handlers) == set(REQUESTS.values())
            for cls, handler in worker.handlers.items():
                hints = get_type_hints(handler)
                assert hints["request"] is cls, (cls, handler)
                assert hints["return"] == REPLIES[cls], (cls, handler)

    asyncio.run(scenario())


def test_the_worker_answers_bad_lines_with_errors_and_serves_on() -> None:
    async def scenario() -> None:
        async with in_process_worker() as (worker, sent):
            await worker.handle(b"{not json\n")
            await worker.handle(b'{"id": 1, "op": "explode", "args": {}}\n')
            await worker.handle(b'{"id": 2, "op": "update", "args": {"room": "r1", "participant": "p-a", "muted": "yes"}}\n')
            await worker.handle(encode(Call(3, Update("nowhere", "p-a", muted=True))))  # valid, but no such room
            await worker.handle(encode(Call(4, Ping())))
            await worker.handle(encode(Call(5, Join("r1", "p-a"))))
            await worker.handle(encode(Call(6, UpdateMany("r1", ("p-a", "p-gone"), muted=True))))  # p-gone: skipped
            replies = [decode_from_worker(encode(m)) for m in sent if isinstance(m, (Reply, ErrorReply))]
            assert [(r.id, r.code) for r in replies if isinstance(r, ErrorReply)] == [
                (None, "invalid"), (1, "invalid"), (2, "invalid"), (3, "not_found")]
            assert [(r.id, r.result) for r in replies if isinstance(r, Reply)] == [(4, {"pid": os.getpid()}), (5, None), (6, None)]
            assert worker.rooms["r1"].members["p-a"].muted

    asyncio.run(scenario())


async def read_until(stdout: asyncio.StreamReader, wanted: Callable[[Any], bool], timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            message = decode_from_worker(await stdout.readline())
            if wanted(message):
                return message


def test_a_worker_process_survives_garbage_and_keeps_serving() -> None:
    async def scenario() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media.worker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ, GIAOBAN_MEDIA_CONFIG=MediaConfig(stats_interval=60).to_json()),
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            ready = await read_until(process.stdout, lambda m: isinstance(m, Ready))
            assert ready.pid == process.pid
            process.stdin.write(b"\x00\xff garbage\n[]\n" + b'{"id": 1, "op": "nope"}\n' + b'{"id": 2, "op": "join", "args": {}}\n')
            process.stdin.write(encode(Call(3, Ping())))
            await process.stdin.drain()
            replies = []
            while len(replies) < 5:
                replies.append(await read_until(process.stdout, lambda m: isinstance(m, (Reply, ErrorReply))))
            assert [(r.id, getattr(r, "code", "ok")) for r in replies] == [
                (None, "invalid"), (None, "invalid"), (1, "invalid"), (2, "invalid"), (3, "ok")]
            assert result_of(Ping, replies[-1].result) == Pong(process.pid)
            assert process.returncode is None
        finally:
            process.stdin.close()
            await asyncio.wait_for(process.wait(), 10)
        assert process.returncode == 0

    asyncio.run(scenario())


# -- mute all: one message per worker ----------------------------------------------------------
Written = list[tuple[int, Request[Any]]]


def spy_on_requests(supervisor: Supervisor) -> Written:
    """Every request the supervisor writes to its workers from now on, with the worker's index
    (the lines still go to the real worker processes)."""
    written: Written = []
    for index, worker in supervisor._workers.items():
        stdin = worker.process.stdin
        assert stdin is not None

        def write(data: bytes, index: int = index, real: Callable[[bytes], None] = stdin.write) -> None:
            for line in data.splitlines():
                written.append((index, decode_call(line).request))
            real(data)

        stdin.write = write  # type: ignore[method-assign]
    return written


async def settle(check: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def test_mute_sends_one_message_to_each_worker_holding_the_participants() -> None:
    async def scenario() -> None:
        events: list[dict[str, Any]] = []
        supervisor = Supervisor(MediaConfig(workers=2, room_spread=2, stats_interval=60), events.append)
        try:
            for participant in ("p-a", "p-b", "p-c"):
                await supervisor.join("r1", participant)
            assert supervisor.placement("r1") == {"p-a": 0, "p-b": 0, "p-c": 1}
            written = spy_on_requests(supervisor)
            await supervisor.mute("r1", ["p-a", "p-b", "p-c", "p-never-joined"])
            assert [(i, r) for i, r in written if isinstance(r, (Update, UpdateMany))] == [
                (0, UpdateMany("r1", ("p-a", "p-b"), muted=True)), (1, UpdateMany("r1", ("p-c",), muted=True))]
            # Each worker muted its own: what it tells the room's other worker says so.
            await settle(lambda: len([r for _, r in written if isinstance(r, RemoteMember)]) == 3)
            assert {(i, r) for i, r in written if isinstance(r, RemoteMember)} == {
                (1, RemoteMember("r1", "p-a", muted=True)), (1, RemoteMember("r1", "p-b", muted=True)),
                (0, RemoteMember("r1", "p-c", muted=True))}
            written.clear()
            await supervisor.mute("r1", ["p-never-joined"])
            await supervisor.mute("r1", [])
            assert written == []  # nobody of theirs on any worker: nothing sent
        finally:
            await supervisor.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def live_two_workers(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[Live]:
    settings = live_settings(tmp_path_factory.mktemp("live-protocol"), demo_database, sfu_workers=2, sfu_room_spread=2)
    yield from serve(settings)


def test_the_chairs_mute_all_reaches_each_worker_as_one_message(live_two_workers: Live) -> None:
    live = live_two_workers
    meeting = live.meeting(users=["thuky.ninhkieu", "canbo.tanan", "thuky"])

    async def scenario() -> None:
        clients = [RoomClient(live.ws_url, meeting["id"], token=live.token(u)) for u in ("lanhdao", "thuky.ninhkieu", "canbo.tanan", "thuky")]
        try:
            for client in clients:
                await client.connect()
                await client.join()
            chair, *others = clients
            for client in others:  # into the media plane, in order: two on one worker, one on the other
                await client.send({"type": "subscribe"})
                await client.recv("subscribe_offer", 10)
            ids = [c.participant_id for c in others]

            async def spy() -> Written:
                return spy_on_requests(live.hub.media)

            written = await live.call(spy())
            await chair.send({"type": "mute", "all": True})
            for client in others:
                assert (await client.recv("muted", 5))["by"]
            mutes = [(i, r) for i, r in written if isinstance(r, (Update, UpdateMany))]
            assert mutes == [(0, UpdateMany(mutes[0][1].room, (ids[0], ids[1]), muted=True)),
                             (1, UpdateMany(mutes[0][1].room, (ids[2],), muted=True))]
            await settle(lambda: len([r for _, r in written if isinstance(r, RemoteMember)]) == 3)
            assert all(r.muted for _, r in written if isinstance(r, RemoteMember))
            updated = [m["participant"] for m in chair.history if m.get("type") == "participant_updated"]
            assert {p["id"] for p in updated if p["muted"]} == set(ids)
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    asyncio.run(scenario())
