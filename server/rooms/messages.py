"""The signalling messages a client may send: one typed class per ``type``, checked strictly
(unknown fields refused), and ``parse`` that turns a text frame into one of them or a
``SignalError`` with a code from docs/signalling.md.

Whatever the text, ``parse`` returns a message or raises ``SignalError``: JSON nested past the
interpreter's depth, ``NaN``/``Infinity``, numbers of thousands of digits and escaped lone
surrogates (text no UTF-8 answer could echo) are ``bad_json``; an error names at most
``MAX_FIELDS`` fields, each name cut to ``MAX_FIELD_NAME`` characters, so an answer never grows
past the question."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal, NoReturn, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from server.i18n import N_, Text

PROTOCOL = 1
MAX_FIELDS = 10  # fields named in one error answer
MAX_FIELD_NAME = 64  # characters of a field's name echoed in an error answer
MAX_FRAME_FACTOR = 4  # the WebSocket layer buffers at most this many times GIAOBAN_SIGNAL_MAX_BYTES
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape that may decode to a lone surrogate
_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # C0 controls but tab and line breaks: never in chat text


def transport_max_size(signal_max_bytes: int) -> int:
    """The ``ws_max_size`` to give uvicorn's websockets-sansio layer: a frame (or a fragmented or
    compressed message, counted decompressed) above it is refused from its header, before its
    payload is read, and the connection closed with 1009 without an ``error`` message; between
    ``signal_max_bytes`` and this size the message reaches the socket, which answers ``too_large``
    and closes with 1009. No message held for a connection is larger than this."""
    return MAX_FRAME_FACTOR * signal_max_bytes


def _whole_number(value: Any) -> Any:
    """Refuse what JSON's loose equality would let through a Literal (``true`` or ``1.0`` for 1)."""
    if type(value) is not int:
        raise ValueError("not a whole number")
    return value


Sdp = Annotated[str, StringConstraints(min_length=10, max_length=32 * 1024)]
Mid = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
Layer = Literal["camera", "camera_small", "audio", "screen"]
Stream = Literal["camera", "screen"]


class SignalError(Exception):
    def __init__(self, code: str, message: Text | str, *, fields: dict[str, Text | str] | None = None, close: int | None = None, ref: str = "") -> None:
        super().__init__(str(message))
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.close = close
        self.ref = ref


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    type: str  # each subclass narrows it to its own Literal, which names it in MESSAGES


class Join(Message):
    type: Literal["join"]
    protocol: Annotated[Literal[1], BeforeValidator(_whole_number)]
    thumbnails: int = Field(default=4, ge=0, le=8)
    weak_line: bool = False
    muted: bool = False
    camera: bool = True


class Publish(Message):
    type: Literal["publish"]
    stream: Stream
    sdp: Sdp
    tracks: dict[Mid, Layer] = Field(min_length=1, max_length=3)


class Unpublish(Message):
    type: Literal["unpublish"]
    stream: Stream


class Subscribe(Message):
    type: Literal["subscribe"]


class SubscribeAnswer(Message):
    type: Literal["subscribe_answer"]
    sdp: Sdp


class Update(Message):
    type: Literal["update"]
    muted: bool | None = None
    camera: bool | None = None
    hand: bool | None = None
    network: Literal["good", "fair", "poor"] | None = None  # the client's own view of its line


class Quality(Message):
    type: Literal["quality"]
    weak_line: bool
    audio_only: bool = False


class Chat(Message):
    type: Literal["chat"]
    # NFC like all our text; no control characters (PostgreSQL refuses NUL in text)
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=_CONTROL),
                    AfterValidator(lambda text: unicodedata.normalize("NFC", text))]


class Ping(Message):
    type: Literal["ping"]


class Leave(Message):
    type: Literal["leave"]


ParticipantId = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class Moderation(Message):
    """A command only the chair and the hosts may give."""


class Mute(Moderation):
    type: Literal["mute"]
    participant_id: ParticipantId | None = None  # None with all: everyone but the sender
    all: bool = False


class AskUnmute(Moderation):
    type: Literal["ask_unmute"]
    participant_id: ParticipantId


class LowerHand(Moderation):
    type: Literal["lower_hand"]
    participant_id: ParticipantId | None = None
    all: bool = False


class Floor(Moderation):
    type: Literal["floor"]
    participant_id: ParticipantId | None  # None: take the floor back


class Remove(Moderation):
    type: Literal["remove"]
    participant_id: ParticipantId


class Lock(Moderation):
    type: Literal["lock"]
    locked: bool


class Admit(Moderation):
    type: Literal["admit"]
    participant_id: ParticipantId


class Deny(Moderation):
    type: Literal["deny"]
    participant_id: ParticipantId


class End(Moderation):
    type: Literal["end"]


MESSAGES: dict[str, type[Message]] = {get_args(m.model_fields["type"].annotation)[0]: m for m in (
    Join, Publish, Unpublish, Subscribe, SubscribeAnswer, Update, Quality, Chat, Ping, Leave,
    Mute, AskUnmute, LowerHand, Floor, Remove, Lock, Admit, Deny, End,
)}


def parse(text: str) -> Message:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError:  # also numbers past Python's 4,300 digits
        raise SignalError("bad_json", N_("The message is not valid JSON.")) from None
    except RecursionError:
        raise SignalError("bad_json", N_("The message is nested too deeply.")) from None
    if not isinstance(data, dict):
        raise SignalError("bad_json", N_("A message must be a JSON object with a type."))
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise SignalError("bad_json", N_("The message holds text that is not valid Unicode."))
    kind = data.get("type")
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        named = kind[:40] if isinstance(kind, str) else type(kind).__name__ if kind is not None else "none"
        raise SignalError("unknown_type", N_("Unknown message type: {type}.", type=named))
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise SignalError("invalid", N_("The {type} message is not valid.", type=kind), fields=_fields(exc), ref=str(kind)) from None


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(data: Any) -> bool:
    """Whether any string (key or value) in ``data`` cannot be written as UTF-8; iterative, so
    no depth of nesting can exhaust the stack."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _fields(exc: ValidationError) -> dict[str, Text | str]:
    out: dict[str, Text | str] = {}
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        name = ".".join(str(p) for p in error["loc"])[:MAX_FIELD_NAME] or "message"
        if name not in out and len(out) == MAX_FIELDS:
            break
        out.setdefault(name, _reason(error))
    return out


def _reason(error: Any) -> Text:
    kind = error["type"]
    if kind == "missing":
        return N_("This field is required.")
    if kind == "extra_forbidden":
        return N_("Unknown field.")
    if kind in ("string_too_long", "too_long"):
        return N_("Too long.")
    if kind in ("string_too_short", "too_short"):
        return N_("Too short or empty.")
    if kind.startswith(("greater_than", "less_than")):
        return N_("Out of range.")
    if kind in ("literal_error", "string_pattern_mismatch"):
        return N_("Not an accepted value.")
    return N_("Wrong type.")
