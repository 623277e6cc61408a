"""The protocol between the web process's ``media.supervisor`` and its SFU workers
(``python -m media.worker``), as docs/worker-protocol.md describes it: one typed class per
request operation, per event and per reply of a fixed shape, and the JSON-lines framing.

Both ends encode and decode through this module, so what one sends the other reads into the
same classes. Decoding is strict (unknown fields, missing ones and wrong types are refused with
a ``ProtocolError`` naming the field); it is plain dataclasses and a small checker rather than
pydantic because every worker process imports it and these messages are few and flat.

A request class is generic in the type of its reply (``Publish(RoomRequest[PublishAnswer])``):
the supervisor's calls are typed end to end, and ``result_of`` reads a reply's result into it.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from media.errors import MediaError

R = TypeVar("R", covariant=True)  # a request for a Diagnostics is one for an object
T = TypeVar("T")


class ProtocolError(MediaError):
    """A line that is not a valid message; ``request_id`` is the id it carried, if readable, so
    that the worker can still answer it."""

    def __init__(self, message: str, *, request_id: int | None = None, code: str = "invalid") -> None:
        super().__init__(code, message)
        self.request_id = request_id


# -- replies of a fixed shape -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pong:
    pid: int


@dataclass(frozen=True, slots=True)
class PublishAnswer:
    sdp: str


@dataclass(frozen=True, slots=True)
class OfferedSlot:
    mid: str
    slot: str
    kind: str


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    slots: tuple[OfferedSlot, ...]


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """What a leaving participant's receiving side last reported (None: nothing reported)."""

    rtt_ms: float | None
    loss_percent: float | None


@dataclass(frozen=True, slots=True)
class PacketCounters:
    forwarded_packets: int
    retransmitted: int
    dropped_packets: int
    direct_packets: int
    relayed_out: int
    relayed_in: int


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What a worker process holds (the leak and no-codec checks of the tests read it)."""

    pid: int
    rooms: int
    tasks: int
    threads: int
    sockets: int
    codec_contexts: int
    codec_attempts: int
    keyframe_requests: int
    forwarded_packets: int
    retransmitted: int
    dropped_packets: int
    direct_packets: int
    relayed_out: int
    relayed_in: int


# -- requests: supervisor → worker ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request(Generic[R]):
    """An operation; ``R`` is what its reply's result reads into (None: an empty result)."""

    OP: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class RoomRequest(Request[R]):
    """An operation on one room: the worker runs those of a room one at a time, in order."""

    room: str


@dataclass(frozen=True, slots=True)
class Ping(Request[Pong]):
    OP: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Counters(Request[PacketCounters]):
    OP: ClassVar[str] = "counters"


@dataclass(frozen=True, slots=True)
class Debug(Request[Diagnostics]):
    OP: ClassVar[str] = "debug"


@dataclass(frozen=True, slots=True)
class Join(RoomRequest[None]):
    OP: ClassVar[str] = "join"
    participant: str
    muted: bool = False
    echo: bool = False  # a connection test: the participant also receives itself


@dataclass(frozen=True, slots=True)
class Publish(RoomRequest[PublishAnswer]):
    OP: ClassVar[str] = "publish"
    participant: str
    stream: str
    sdp: str
    tracks: dict[str, str]  # mid → layer


@dataclass(frozen=True, slots=True)
class Unpublish(RoomRequest[None]):
    OP: ClassVar[str] = "unpublish"
    participant: str
    stream: str


@dataclass(frozen=True, slots=True)
class Subscribe(RoomRequest[Offer]):
    OP: ClassVar[str] = "subscribe"
    participant: str
    thumbnails: int = 4
    weak_line: bool = False


@dataclass(frozen=True, slots=True)
class Answer(RoomRequest[None]):
    OP: ClassVar[str] = "answer"
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Update(RoomRequest[None]):
    OP: ClassVar[str] = "update"
    participant: str
    muted: bool


@dataclass(frozen=True, slots=True)
class UpdateMany(RoomRequest[None]):
    """``Update`` for several participants on this worker at once (the chair's mute all).
    Participants the worker does not hold (they left meanwhile) are skipped."""

    OP: ClassVar[str] = "update_many"
    participants: tuple[str, ...]
    muted: bool


@dataclass(frozen=True, slots=True)
class Quality(RoomRequest[None]):
    OP: ClassVar[str] = "quality"
    participant: str
    weak_line: bool
    audio_only: bool = False


@dataclass(frozen=True, slots=True)
class Pin(RoomRequest[None]):
    OP: ClassVar[str] = "pin"
    participant: str | None  # None: nobody pinned


@dataclass(frozen=True, slots=True)
class Leave(RoomRequest[ConnectionSummary | None]):
    """None back when the room is not on the worker (any more)."""

    OP: ClassVar[str] = "leave"
    participant: str


@dataclass(frozen=True, slots=True)
class CloseRoom(RoomRequest[None]):
    OP: ClassVar[str] = "close_room"


@dataclass(frozen=True, slots=True)
class Link(RoomRequest[None]):
    """The room is also on worker ``worker``, whose relay socket is ``port`` on loopback."""

    OP: ClassVar[str] = "link"
    worker: int
    port: int


@dataclass(frozen=True, slots=True)
class Unlink(RoomRequest[None]):
    OP: ClassVar[str] = "unlink"
    worker: int


@dataclass(frozen=True, slots=True)
class RemoteMember(RoomRequest[None]):
    """A participant of the room connected to another worker (from its ``ShardMember``)."""

    OP: ClassVar[str] = "remote_member"
    participant: str
    muted: bool


@dataclass(frozen=True, slots=True)
class RemoteSource(RoomRequest[None]):
    """A source another worker relays here: ``source_id`` from its ``ShardSource``, ``home``
    its relay port."""

    OP: ClassVar[str] = "remote_source"
    participant: str
    layer: str
    kind: str
    source_id: int
    home: int


@dataclass(frozen=True, slots=True)
class RemoteSourceGone(RoomRequest[None]):
    OP: ClassVar[str] = "remote_source_gone"
    participant: str
    layer: str
    source_id: int


@dataclass(frozen=True, slots=True)
class RemoteLeave(RoomRequest[None]):
    OP: ClassVar[str] = "remote_leave"
    participant: str


REQUESTS: dict[str, type[Request[Any]]] = {cls.OP: cls for cls in (
    Ping, Counters, Debug, Join, Publish, Unpublish, Subscribe, Answer, Update, UpdateMany, Quality, Pin, Leave,
    CloseRoom, Link, Unlink, RemoteMember, RemoteSource, RemoteSourceGone, RemoteLeave,
)}


def reply_type(cls: type[Request[Any]]) -> Any:
    """The type a reply to ``cls`` reads into: its ``Request[...]`` argument."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Request):
            return get_args(base)[0]
    raise TypeError(f"{cls.__name__} names no reply type")


REPLIES: dict[type[Request[Any]], Any] = {cls: reply_type(cls) for cls in REQUESTS.values()}


# -- events: worker → supervisor, unasked -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Event:
    EVENT: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Ready(Event):
    """The worker's first line: it serves requests from now on."""

    EVENT: ClassVar[str] = "ready"
    pid: int
    relay: int  # its relay socket's port on loopback


@dataclass(frozen=True, slots=True)
class Stats(Event):
    """Every ``stats_interval`` seconds: gauges, and counters since the process started."""

    EVENT: ClassVar[str] = "stats"
    time: float
    rooms: int
    participants: int
    publishers: int
    packets: int
    bytes: int
    retransmitted: int
    keyframe_requests: int
    dropped_packets: int
    subscriber_lost: int
    subscriber_expected: int
    # datagrams the shared UDP port's demultiplexer dropped, by reason (media.udpmux.DROP_REASONS);
    # empty when the worker has no shared port
    demux_dropped: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SlotFeed:
    slot: str
    mid: str
    participant_id: str | None  # None: the slot is idle
    layer: str | None


@dataclass(frozen=True, slots=True)
class Slots(Event):
    """Who now feeds each of ``participant``'s receiving slots (passed on to its client)."""

    EVENT: ClassVar[str] = "slots"
    room: str
    participant: str
    slots: tuple[SlotFeed, ...]


@dataclass(frozen=True, slots=True)
class ActiveSpeaker(Event):
    EVENT: ClassVar[str] = "active_speaker"
    room: str
    participant: str | None


@dataclass(frozen=True, slots=True)
class PeerState(Event):
    """A peer connection's state changed (``stream``: camera, screen or subscribe)."""

    EVENT: ClassVar[str] = "peer_state"
    room: str
    participant: str
    stream: str
    state: str


@dataclass(frozen=True, slots=True)
class Shard(Event):
    """What the other workers of a spread room must know: on the wire ``"event": "shard"``
    with ``op`` naming which; the supervisor turns each into a ``Remote*`` request."""

    EVENT: ClassVar[str] = "shard"
    OP: ClassVar[str] = ""
    room: str
    participant: str


@dataclass(frozen=True, slots=True)
class ShardMember(Shard):
    OP: ClassVar[str] = "member"
    muted: bool


@dataclass(frozen=True, slots=True)
class ShardSource(Shard):
    OP: ClassVar[str] = "source"
    layer: str
    kind: str
    source_id: int


@dataclass(frozen=True, slots=True)
class ShardSourceGone(Shard):
    OP: ClassVar[str] = "source_gone"
    layer: str
    source_id: int


@dataclass(frozen=True, slots=True)
class ShardLeave(Shard):
    OP: ClassVar[str] = "leave"


ShardEvent = ShardMember | ShardSource | ShardSourceGone | ShardLeave


@dataclass(frozen=True, slots=True)
class WorkerLost(Event):
    """Never on the wire: the supervisor's own event when a worker died with these rooms."""

    EVENT: ClassVar[str] = "worker_lost"
    rooms: tuple[str, ...]


def _event_key(cls: type[Event]) -> str:
    return f"{cls.EVENT}:{cls.OP}" if issubclass(cls, Shard) else cls.EVENT


EVENTS: dict[str, type[Event]] = {_event_key(cls): cls for cls in (
    Ready, Stats, Slots, ActiveSpeaker, PeerState, ShardMember, ShardSource, ShardSourceGone, ShardLeave,
)}


# -- envelopes ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    """A request on the wire: ``{"id", "op", "args"}``."""

    id: int
    request: Request[Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """``{"id", "ok": true, "result"}``. Encoding, ``result`` is the reply object (or None);
    decoded, it is the JSON value, which ``result_of`` reads for the request it answers."""

    id: int
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``{"id", "ok": false, "error": {"code", "message"}}``; ``id`` is None when the request
    line could not be read far enough to find it."""

    id: int | None
    code: str
    message: str


FromWorker = Reply | ErrorReply | Event


# -- encoding ----------------------------------------------------------------------------------
def as_dict(message: object) -> dict[str, Any]:
    """A message's fields as JSON values (nested messages as objects, tuples as lists)."""
    fields: dict[str, Any] = _codec(type(message)).encode(message)
    return fields


def event_dict(event: Event) -> dict[str, Any]:
    """An event as a JSON object: ``{"event", ["op",] …fields}`` (also what ``on_event`` gets)."""
    head: dict[str, Any] = {"event": event.EVENT}
    if isinstance(event, Shard):
        head["op"] = event.OP
    return {**head, **as_dict(event)}


def encode(message: Call | FromWorker) -> bytes:
    """One line of the protocol, newline included."""
    body: dict[str, Any]
    if isinstance(message, Call):
        body = {"id": message.id, "op": message.request.OP, "args": as_dict(message.request)}
    elif isinstance(message, Reply):
        result = message.result
        body = {"id": message.id, "ok": True, "result": None if result is None else as_dict(result)}
    elif isinstance(message, ErrorReply):
        body = {"id": message.id, "ok": False, "error": {"code": message.code, "message": message.message}}
    else:
        body = event_dict(message)
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


# -- decoding ----------------------------------------------------------------------------------
def _object(line: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        raise ProtocolError("the line is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    return data


def decode_call(line: bytes | str) -> Call:
    """A request line, as the worker reads it."""
    data = _object(line)
    request_id = data.get("id")
    if type(request_id) is not int:
        raise ProtocolError("a request needs an integer id")
    extra = data.keys() - {"id", "op", "args"}
    if extra:
        raise ProtocolError(f"unknown request field {sorted(extra)[0]!r}", request_id=request_id)
    op = data.get("op")
    cls = REQUESTS.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ProtocolError(f"unknown operation {str(op)[:40]!r}", request_id=request_id)
    request: Request[Any] = _read(cls, data.get("args", {}), cls.OP, request_id=request_id)
    return Call(request_id, request)


def decode_from_worker(line: bytes | str) -> FromWorker:
    """A line from a worker, as the supervisor reads it: a reply or an event."""
    data = _object(line)
    if "event" in data:
        return event_from_dict(data)
    request_id = data.get("id")
    if request_id is not None and type(request_id) is not int:
        raise ProtocolError("a reply's id must be an integer or null", code="internal")
    ok = data.get("ok")
    if ok is True and request_id is not None and data.keys() <= {"id", "ok", "result"}:
        return Reply(request_id, data.get("result"))
    if ok is False and data.keys() <= {"id", "ok", "error"}:
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str):
            return ErrorReply(request_id, error["code"], error["message"])
    raise ProtocolError("neither an event nor a reply", request_id=request_id, code="internal")


def event_from_dict(data: dict[str, Any]) -> Event:
    """An event from its JSON object (the worker also types its rooms' events with it)."""
    fields = dict(data)
    key = str(fields.pop("event", None))
    if key == Shard.EVENT:
        key = f"{key}:{fields.pop('op', None)}"
    cls = EVENTS.get(key)
    if cls is None:
        raise ProtocolError(f"unknown event {key[:40]!r}", code="internal")
    event: Event = _read(cls, fields, key, code="internal")
    return event


def result_of(request: type[Request[T]], result: Any) -> T:
    """A reply's result read into what ``request`` answers with."""
    value: T = _read(REPLIES[request], result, f"{request.OP} result", code="internal")
    return value


# -- the checks, made once per type ------------------------------------------------------------
class _Mismatch(Exception):
    """A value that is not of its field's type; ``path`` is filled in on the way out, so that
    building it costs nothing while values are good."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


@dataclass(frozen=True, slots=True)
class _Codec:
    check: Callable[[Any], Any]  # a JSON value → the field's value, or _Mismatch
    encode: Callable[[Any], Any]  # the field's value → a JSON value


_CODECS: dict[Any, _Codec] = {}


def _read(kind: Any, value: Any, where: str, *, code: str = "invalid", request_id: int | None = None) -> Any:
    try:
        return _codec(kind).check(value)
    except _Mismatch as exc:
        raise ProtocolError(f"{where}{''.join(reversed(exc.path))}: {exc.problem}", code=code, request_id=request_id) from None


def _codec(kind: Any) -> _Codec:
    found = _CODECS.get(kind)
    if found is None:
        found = _CODECS[kind] = _make(kind)
    return found


def _same(value: Any) -> Any:
    return value


def _make(kind: Any) -> _Codec:
    origin = get_origin(kind)
    if kind in (bool, str, int, type(None)):
        return _Codec(_exact(kind), _same)
    if kind is float:
        def number(value: Any) -> float:
            if type(value) in (int, float):
                return float(value)
            raise _Mismatch("expected a number")
        return _Codec(number, _same)
    if origin in (Union, types.UnionType):
        return _union(get_args(kind))
    if origin in (tuple, list):
        (item,) = [a for a in get_args(kind) if a is not Ellipsis]
        return _sequence(_codec(item), tuple if origin is tuple else list)
    if origin is dict:
        key, item = get_args(kind)
        assert key is str  # JSON object keys are strings
        return _mapping(_codec(item))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _message(kind)
    raise TypeError(f"the worker protocol cannot check {kind!r}")


_NAMES = {bool: "true or false", str: "a string", int: "an integer", type(None): "null"}


def _exact(kind: type) -> Callable[[Any], Any]:
    problem = f"expected {_NAMES[kind]}"

    def exact(value: Any) -> Any:
        if type(value) is kind:  # no 1 for true, no "1" for 1
            return value
        raise _Mismatch(problem)

    return exact


def _union(arms: tuple[Any, ...]) -> _Codec:
    codecs = [_codec(a) for a in arms]
    problem = "expected " + " or ".join(_NAMES.get(a, "a number" if a is float else "an object") for a in arms)
    if all(a in _NAMES for a in arms):  # str | None and the like: one look at the type
        allowed = frozenset(arms)

        def exact(value: Any) -> Any:
            if type(value) in allowed:
                return value
            raise _Mismatch(problem)

        return _Codec(exact, _same)

    optional = type(None) in arms
    others = [c for a, c in zip(arms, codecs, strict=True) if a is not type(None)]

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if len(others) == 1:  # X | None: X's own refusal says what is wrong inside
            return others[0].check(value)
        for codec in others:
            try:
                return codec.check(value)
            except _Mismatch:
                pass
        raise _Mismatch(problem)

    def encode(value: Any) -> Any:
        return None if value is None else _codec(type(value)).encode(value)

    return _Codec(check, encode)


def _sequence(item: _Codec, make: type[tuple[Any, ...]] | type[list[Any]]) -> _Codec:
    def check(value: Any) -> Any:
        if type(value) is not list:
            raise _Mismatch("expected a list")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item.check(element))
            except _Mismatch as exc:
                exc.path.append(f"[{index}]")
                raise
        return make(out)

    if item.encode is _same:
        return _Codec(check, list)
    return _Codec(check, lambda value: [item.encode(v) for v in value])


def _mapping(item: _Codec) -> _Codec:
    def check(value: Any) -> Any:
        if type(value) is not dict:
            raise _Mismatch("expected an object")
        out = {}
        for key, element in value.items():
            try:
                out[key] = item.check(element)
            except _Mismatch as exc:
                exc.path.append(f".{key}")
                raise
        return out

    return _Codec(check, lambda value: {k: item.encode(v) for k, v in value.items()})


def _message(cls: type[Any]) -> _Codec:
    hints = get_type_hints(cls)
    fields = [(f.name, _codec(hints[f.name]), f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
              for f in dataclasses.fields(cls)]
    names = frozenset(name for name, _, _ in fields)
    plain = [name for name, codec, _ in fields if codec.encode is _same]
    nested = [(name, codec.encode) for name, codec, _ in fields if codec.encode is not _same]

    def check(value: Any) -> Any:
        if type(value) is not dict:
            raise _Mismatch("expected an object")
        if not names.issuperset(value):
            raise _Mismatch(f"unknown field {sorted(set(value) - names)[0]!r}")
        values = {}
        for name, codec, required in fields:
            if name in value:
                try:
                    values[name] = codec.check(value[name])
                except _Mismatch as exc:
                    exc.path.append(f".{name}")
                    raise
            elif required:
                mismatch = _Mismatch("missing")
                mismatch.path.append(f".{name}")
                raise mismatch
        return cls(**values)

    def encode(message: Any) -> dict[str, Any]:
        out = {name: getattr(message, name) for name in plain}
        for name, encode_field in nested:
            out[name] = encode_field(getattr(message, name))
        return out

    return _Codec(check, encode)
