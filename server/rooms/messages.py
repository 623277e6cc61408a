"""The signalling messages a client may send: one typed class per ``type``, checked strictly
(unknown fields refused), and ``parse`` that turns a text frame into one of them or a
``SignalError`` with a code from docs/signalling.md."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from server.i18n import N_, Text

PROTOCOL = 1
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
    protocol: Literal[1]
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
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


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
        data = json.loads(text)
    except ValueError:
        raise SignalError("bad_json", N_("The message is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise SignalError("bad_json", N_("A message must be a JSON object with a type."))
    kind = data.get("type")
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SignalError("unknown_type", N_("Unknown message type: {type}.", type=str(kind)[:40]))
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise SignalError("invalid", N_("The {type} message is not valid.", type=kind), fields=_fields(exc), ref=str(kind)) from None


def _fields(exc: ValidationError) -> dict[str, Text | str]:
    out: dict[str, Text | str] = {}
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "message"
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
