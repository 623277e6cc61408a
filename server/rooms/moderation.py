"""The chair's and the hosts' commands. ``Connection.dispatch`` has already refused them to
anyone else (and logged the attempt); each handler checks its target and refuses a command that
would change nothing, so a repeated command gets an answer and no side effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from server.i18n import N_
from server.rooms import service
from server.rooms.hub import Peer
from server.rooms.messages import Admit, AskUnmute, Deny, End, Floor, Lock, LowerHand, Message, Mute, Remove, SignalError

if TYPE_CHECKING:
    from server.rooms.socket import Connection


def _target(conn: Connection, participant_id: str | None, ref: str) -> Peer:
    assert conn.peer is not None
    target = conn.hub.peer(conn.peer.admission.room, participant_id or "")
    if target is None:
        raise SignalError("not_found", N_("There is no such participant in this room."), fields={"participant_id": participant_id or ""}, ref=ref)
    return target


def _one_or_all(message: Mute | LowerHand) -> None:
    if message.all == (message.participant_id is not None):
        raise SignalError("invalid", N_("Name one participant, or say all."), fields={"participant_id": N_("Name one participant, or say all.")}, ref=message.type)


def _updated(conn: Connection, peer: Peer) -> None:
    conn.hub.broadcast(peer.admission.room, {"type": "participant_updated", "participant": peer.public()})


async def _mute(conn: Connection, targets: list[Peer], by: str) -> None:
    """Mute ``targets``: one message per SFU worker holding any of them (not a round trip per
    participant), then each is told. They are told even when the SFU call fails: a worker that
    died takes their media with it, and their rejoin carries the muted state."""
    assert conn.peer is not None
    for target in targets:
        target.muted = True
    try:
        await conn.hub.media.mute(conn.peer.admission.room, [t.id for t in targets if t.media_joined])
    finally:
        for target in targets:
            target.send({"type": "muted", "by": by})
            _updated(conn, target)


async def mute(conn: Connection, message: Mute) -> None:
    assert conn.peer is not None
    _one_or_all(message)
    by = conn.peer.admission.name
    if message.all:
        targets = [p for p in conn.hub.participants(conn.peer.admission.room) if p is not conn.peer and not p.muted]
        if not targets:
            raise SignalError("unchanged", N_("Everyone is already muted."), ref=message.type)
        await _mute(conn, targets, by)
        return
    target = _target(conn, message.participant_id, message.type)
    if target.muted:
        raise SignalError("unchanged", N_("{name} is already muted.", name=target.admission.name), ref=message.type)
    await _mute(conn, [target], by)


async def ask_unmute(conn: Connection, message: AskUnmute) -> None:
    assert conn.peer is not None
    target = _target(conn, message.participant_id, message.type)
    if not target.muted:
        raise SignalError("unchanged", N_("{name} is not muted.", name=target.admission.name), ref=message.type)
    target.send({"type": "unmute_request", "by": conn.peer.admission.name})


async def lower_hand(conn: Connection, message: LowerHand) -> None:
    assert conn.peer is not None
    _one_or_all(message)
    if message.all:
        targets = [p for p in conn.hub.participants(conn.peer.admission.room) if p.hand]
    else:
        target = _target(conn, message.participant_id, message.type)
        targets = [target] if target.hand else []
    if not targets:
        raise SignalError("unchanged", N_("No hand is raised."), ref=message.type)
    for target in targets:
        target.hand = False
        _updated(conn, target)


async def floor(conn: Connection, message: Floor) -> None:
    assert conn.peer is not None
    room = conn.hub.rooms[conn.peer.admission.room]
    if message.participant_id is not None:
        target = _target(conn, message.participant_id, message.type)
        if not target.media_joined:
            raise SignalError("unchanged", N_("{name} is not connected to the media yet.", name=target.admission.name), ref=message.type)
    if room.floor == message.participant_id:
        raise SignalError("unchanged", N_("Nothing changes: the floor is already so."), ref=message.type)
    await conn.ensure_media()
    await conn.hub.media.pin(room.name, message.participant_id)
    room.floor = message.participant_id
    conn.hub.broadcast(room.name, {"type": "floor", "participant_id": message.participant_id, "by": conn.peer.admission.name})


async def remove(conn: Connection, message: Remove) -> None:
    assert conn.peer is not None
    target = _target(conn, message.participant_id, message.type)
    a = target.admission
    if target is conn.peer or a.role == "chair" or (a.moderates and conn.peer.admission.role != "chair"):
        raise SignalError("forbidden", N_("The chair cannot be removed, and hosts only by the chair."), ref=message.type)
    await conn.state.db.run(service.remove_person, a.meeting_id, a.occurrence, a.person)
    target.send({"type": "removed", "by": conn.peer.admission.name})
    target.disconnect(4010)


async def lock(conn: Connection, message: Lock) -> None:
    assert conn.peer is not None
    a = conn.peer.admission
    state = await conn.state.db.run(service.state, a.meeting_id, a.occurrence)
    if state.locked == message.locked:
        raise SignalError("unchanged", N_("The meeting is already locked.") if message.locked else N_("The meeting is not locked."), ref=message.type)
    await conn.state.db.run(service.set_locked, a.meeting_id, a.occurrence, message.locked)
    conn.hub.broadcast(a.room, {"type": "room_state", "locked": message.locked, "by": a.name})


def _waiting(conn: Connection, participant_id: str, ref: str) -> Peer:
    assert conn.peer is not None
    waiting = conn.hub.lobby_entry(conn.peer.admission.room, participant_id)
    if waiting is None:
        raise SignalError("not_found", N_("Nobody with this id is waiting in the lobby."), fields={"participant_id": participant_id}, ref=ref)
    return waiting


async def admit(conn: Connection, message: Admit) -> None:
    assert conn.peer is not None
    waiting = _waiting(conn, message.participant_id, message.type)
    a = waiting.admission
    room = conn.hub.rooms[a.room]
    room.lobby.pop(waiting.id, None)
    if waiting.waiting == "removed":
        await conn.state.db.run(service.readmit_person, a.meeting_id, a.occurrence, a.person)
    await waiting.admitted()
    conn.hub.tell_lobby(a.room)


async def deny(conn: Connection, message: Deny) -> None:
    waiting = _waiting(conn, message.participant_id, message.type)
    room = conn.hub.rooms[waiting.admission.room]
    room.lobby.pop(waiting.id, None)
    assert conn.peer is not None
    waiting.send({"type": "denied", "by": conn.peer.admission.name})
    waiting.disconnect(4012)
    conn.hub.tell_lobby(room.name)


async def end(conn: Connection, message: End) -> None:
    assert conn.peer is not None
    a = conn.peer.admission
    await conn.state.db.run(service.end, a.meeting_id, a.occurrence, a.name)
    room = conn.hub.rooms.get(a.room)
    everyone = [*room.peers.values(), *room.lobby.values()] if room else []
    for peer in everyone:
        peer.send({"type": "ended", "by": a.name})
        peer.disconnect(4011)


Handler = Callable[["Connection", Any], Awaitable[None]]
MODERATION: dict[type[Message], Handler] = {
    Mute: mute, AskUnmute: ask_unmute, LowerHand: lower_hand, Floor: floor, Remove: remove, Lock: lock,
    Admit: admit, Deny: deny, End: end,
}
