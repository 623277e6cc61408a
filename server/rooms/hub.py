"""The web process's view of the open rooms: who is connected to which occurrence's room, and
the bridge between their signalling connections and the SFU workers (``media.supervisor``).

Each connection has a bounded outgoing queue drained by its own writer: a broadcast never waits
on a slow socket, and a connection that cannot keep up is closed rather than slowing the room.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from media.supervisor import Supervisor
from server.rooms.access import Admission

log = logging.getLogger(__name__)
OUTGOING = 512  # messages queued for one connection before it counts as too slow


@dataclass(eq=False)
class Peer:
    admission: Admission
    id: str = field(default_factory=lambda: "p-" + secrets.token_urlsafe(9))
    muted: bool = False
    camera: bool = True
    hand: bool = False
    network: str = ""  # good | fair | poor, as the client measures its line
    audio_only: bool = False
    thumbnails: int = 4
    weak_line: bool = False
    publishing: set[str] = field(default_factory=set)
    media_joined: bool = False
    joined: bool = False
    waiting: str = ""  # in the lobby, and why: guest | locked | removed
    attendance_id: int = 0
    outgoing: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(OUTGOING))
    disconnect: Callable[[int], None] = lambda code: None  # set by the connection
    admitted: Callable[[], Awaitable[None]] = field(default=None)  # type: ignore[assignment]  # set by the connection: into the room

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.outgoing.put_nowait(message)
        except asyncio.QueueFull:
            self.disconnect(4008)  # cannot keep up: closed rather than slowing the room

    def waiting_entry(self) -> dict[str, Any]:
        a = self.admission
        return {"id": self.id, "name": a.name, "kind": a.kind, "role": a.role, "reason": self.waiting,
                "unit": {"code": a.unit_code, "name": a.unit_name} if a.unit_name else None,
                "how": "link" if a.role == "guest" else "account"}

    def public(self) -> dict[str, Any]:
        a = self.admission
        return {
            "id": self.id, "name": a.name, "kind": a.kind, "role": a.role,
            "unit": {"code": a.unit_code, "name": a.unit_name} if a.unit_name else None,
            "muted": self.muted, "camera": self.camera, "hand": self.hand, "network": self.network or None,
            "publishing": sorted(self.publishing),
        }


@dataclass
class Room:
    name: str
    peers: dict[str, Peer] = field(default_factory=dict)
    lobby: dict[str, Peer] = field(default_factory=dict)
    floor: str | None = None


class RoomHub:
    def __init__(self, supervisor_factory: Callable[[Callable[[dict[str, Any]], None]], Supervisor]) -> None:
        self.rooms: dict[str, Room] = {}
        self.media = supervisor_factory(self.on_media_event)

    # -- membership ----------------------------------------------------------------
    def enter(self, peer: Peer) -> Peer | None:
        """Add ``peer`` to its room; returns an older connection of the same person, which the
        caller closes (a reloaded page replaces its previous self)."""
        room = self.rooms.setdefault(peer.admission.room, Room(peer.admission.room))
        older = next((p for p in room.peers.values() if p.admission.person == peer.admission.person), None)
        room.peers[peer.id] = peer
        peer.joined = True
        self.broadcast(room.name, {"type": "participant_joined", "participant": peer.public()}, exclude=peer)
        return older

    def wait(self, peer: Peer, reason: str) -> None:
        """Put ``peer`` in its room's lobby; the chair and hosts are told."""
        room = self.rooms.setdefault(peer.admission.room, Room(peer.admission.room))
        peer.waiting = reason
        room.lobby[peer.id] = peer
        self.tell_lobby(room.name)

    def tell_lobby(self, room_name: str) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            return
        waiting = [p.waiting_entry() for p in room.lobby.values()]
        for peer in room.peers.values():
            if peer.admission.moderates:
                peer.send({"type": "lobby", "waiting": waiting})

    def lobby_entry(self, room_name: str, peer_id: str) -> Peer | None:
        room = self.rooms.get(room_name)
        return room.lobby.get(peer_id) if room else None

    def peer(self, room_name: str, peer_id: str) -> Peer | None:
        room = self.rooms.get(room_name)
        return room.peers.get(peer_id) if room else None

    async def leave(self, peer: Peer) -> dict[str, Any]:
        """Take ``peer`` out of its room (or lobby); returns the SFU's summary of its connection."""
        room = self.rooms.get(peer.admission.room)
        summary: dict[str, Any] = {}
        if room is None:
            return summary
        if room.lobby.pop(peer.id, None) is not None:
            self.tell_lobby(room.name)
        elif room.peers.pop(peer.id, None) is not None:
            if peer.media_joined:
                peer.media_joined = False
                try:
                    summary = await self.media.leave(room.name, peer.id)
                except Exception:  # the worker may be gone; it cleaned up with itself
                    log.warning("leaving the SFU room %s failed", room.name, exc_info=True)
            self.broadcast(room.name, {"type": "participant_left", "participant_id": peer.id})
            if room.floor == peer.id:
                room.floor = None
                self.broadcast(room.name, {"type": "floor", "participant_id": None})
        if not room.peers and not room.lobby and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        return summary

    def participants(self, room_name: str) -> list[Peer]:
        room = self.rooms.get(room_name)
        return list(room.peers.values()) if room else []

    # -- messages ----------------------------------------------------------------------
    def broadcast(self, room_name: str, message: dict[str, Any], exclude: Peer | None = None) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            return
        for peer in list(room.peers.values()):
            if peer is not exclude:
                peer.send(message)

    def chat(self, peer: Peer, text: str, chat_id: int, at: dt.datetime) -> None:
        """Send a chat message (already stored: ``chat_id``, ``at``) to everyone in the room."""
        message = {
            "type": "chat", "id": chat_id, "from": peer.id, "name": peer.admission.name,
            "unit": peer.admission.unit_name, "text": text, "at": at.isoformat(timespec="seconds"),
        }
        self.broadcast(peer.admission.room, message)

    def on_media_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "slots":
            peer = self._peer(event.get("room"), event.get("participant"))
            if peer is not None:
                peer.send({"type": "slots", "slots": event.get("slots", [])})
        elif kind == "active_speaker":
            self.broadcast(str(event.get("room")), {"type": "active_speaker", "participant_id": event.get("participant")})
        elif kind == "worker_lost":
            for name in event.get("rooms", []):
                for peer in self.participants(name):
                    peer.media_joined = False
                    peer.publishing.clear()
                    peer.send({"type": "rejoin", "reason": "media_restarted"})

    def _peer(self, room_name: Any, peer_id: Any) -> Peer | None:
        room = self.rooms.get(str(room_name))
        return room.peers.get(str(peer_id)) if room else None

    def snapshot(self) -> dict[str, Any]:
        """The media plane's figures plus the signalling connections, for /metrics."""
        figures = self.media.snapshot()
        figures["connections"] = sum(len(r.peers) for r in self.rooms.values())
        return figures

    async def close(self) -> None:
        await self.media.close()
