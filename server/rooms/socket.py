"""``WS /ws/meetings/{id}``: one participant's signalling connection (docs/signalling.md).

The connection is accepted, then checked (who, invited, room open); refusals are an ``error``
message and a close code, since browsers cannot read a refused upgrade. After that, each frame,
text or binary, is size-checked and rate-limited before anything else is done with it (a binary
frame is then refused), parsed into its message class and handed to the handler the dispatch
table names. Nothing a client sends can affect another participant except through those
handlers; a fault of ours closes only that connection (1011), with the traceback in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from media.errors import MediaError
from server.appstate import AppState, app_state
from server.audit import service as audit
from server.edge import whole_number
from server.errors import DomainError
from server.i18n import N_, Text, render
from server.rooms import access, service
from server.rooms.hub import Peer, RoomHub
from server.rooms.messages import (
    PROTOCOL,
    Chat,
    Join,
    Leave,
    Message,
    Moderation,
    Ping,
    Publish,
    Quality,
    SignalError,
    Subscribe,
    SubscribeAnswer,
    Unpublish,
    Update,
    parse,
)
from server.rooms.moderation import MODERATION

log = logging.getLogger(__name__)

CLOSE_CODES = {"not_authenticated": 4401, "forbidden": 4403, "not_found": 4404, "not_open": 4409}
TOO_LARGE, FLOODED, SERVER_FAULT = 1009, 4429, 1011  # close codes (docs/signalling.md)
LEAVE_REASONS = {1000: "left", 1001: "left", 4000: "replaced", 4010: "removed", 4011: "ended", 4012: "denied"}
CHAT_IN_WELCOME = 100
FLOOD_LIMIT = 20  # refusals for rate before the connection is closed


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _utf8_size(text: str, limit: int) -> int:
    """The UTF-8 size of ``text``, or its length when that alone shows it within ``limit``."""
    return len(text) if 4 * len(text) <= limit else len(text.encode())


def meeting_id_in(raw: str) -> int:
    """The meeting id the path names; one no row can have (not digits, or past the column's
    range, where the database would overflow rather than answer) is ``not_found``."""
    value = whole_number(raw)
    if value is None:
        raise SignalError("not_found", N_("There is no such meeting."))
    return value


def stop_reading(websocket: WebSocket) -> None:
    """Read nothing more from a client closed for flooding or size, once the close frame is sent.

    uvicorn's websockets-sansio layer would go on reading until the client's close reply, and
    that reply comes after everything the client sent before it saw our close: up to the
    kernel's socket buffers (megabytes; some 6 us of parsing per tiny frame), seconds of CPU
    for every flooding connection. Paused, the connection costs nothing until uvicorn's close
    timer (10 s) ends it; the client has our close frame and its code. The ASGI ``receive`` is
    the protocol's bound method there; behind any other server this does nothing."""
    protocol = getattr(websocket._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if isinstance(transport, asyncio.ReadTransport) and not transport.is_closing():
        transport.pause_reading()


def same_origin(websocket: WebSocket, public_url: str) -> bool:
    origin = websocket.headers.get("origin", "")
    if not origin:
        return False
    ours = urlsplit(public_url)
    theirs = urlsplit(origin)
    if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc):
        return True
    host = websocket.headers.get("host", "")
    return bool(host) and theirs.netloc == host and theirs.scheme in ("http", "https")


class Connection:
    def __init__(self, websocket: WebSocket, state: AppState, hub: RoomHub) -> None:
        self.ws = websocket
        self.state = state
        self.hub = hub
        self.settings = state.settings
        self.translations = state.catalogues.get(websocket.state.locale)
        self.peer: Peer | None = None
        self.bucket = TokenBucket(self.settings.signal_rate, 2 * self.settings.signal_rate)
        self.refusals = 0
        self.session_checked = time.monotonic()  # the middleware identified the session just now
        self.closing: int | None = None
        self.stopped = asyncio.Event()
        self.handlers: dict[type[Message], Callable[[Any], Awaitable[None]]] = {
            Join: self.on_join, Publish: self.on_publish, Unpublish: self.on_unpublish, Subscribe: self.on_subscribe,
            SubscribeAnswer: self.on_subscribe_answer, Update: self.on_update, Quality: self.on_quality,
            Chat: self.on_chat, Ping: self.on_ping, Leave: self.on_leave,
        }
        for kind, handler in MODERATION.items():
            self.handlers[kind] = functools.partial(handler, self)

    # -- plumbing -------------------------------------------------------------------
    def error(self, code: str, message: Text | str, *, fields: dict[str, Text | str] | None = None, ref: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": code, "message": render(message, self.translations)}
        if fields:
            body["fields"] = {k: render(v, self.translations) for k, v in fields.items()}
        if ref:
            body["ref"] = ref
        return body

    async def send_now(self, message: dict[str, Any]) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.send_json(message)

    def send(self, message: dict[str, Any]) -> None:
        if self.peer is not None:
            self.peer.send(message)

    async def writer(self, peer: Peer) -> None:
        while True:
            message = await peer.outgoing.get()
            if message is None:
                return
            try:
                await self.ws.send_json(message)
            except (TypeError, ValueError):  # not JSON or not UTF-8: a fault of ours; it ends the connection, not just its writer
                log.exception("a signalling message could not be sent")
                self.close_soon(SERVER_FAULT)
                return

    def close_soon(self, code: int) -> None:
        """End the connection with ``code`` once what is queued has been sent (from handlers,
        from the hub, or when the client cannot keep up)."""
        if self.closing is None:
            self.closing = code
            self.stopped.set()
            self.end_writing()

    def end_writing(self) -> None:
        """Let the writer stop once what is queued has been sent."""
        if self.peer is not None:
            while True:
                try:
                    self.peer.outgoing.put_nowait(None)
                    break
                except asyncio.QueueFull:  # too slow to read: what is queued is lost anyway
                    self.peer.outgoing.get_nowait()

    # -- the connection's life ----------------------------------------------------------
    def account(self) -> Any:
        """The logged-in user behind this socket (bearer token, or a session cookie from our own
        origin), or None; a bad token or a foreign origin is refused."""
        if self.ws.state.auth_error:
            raise SignalError("not_authenticated", N_("The access token is invalid or has expired."))
        if self.ws.state.auth == "session" and not same_origin(self.ws, self.settings.effective_public_url):
            raise SignalError("not_authenticated", N_("This page may not join meetings on this site (its origin is not ours)."))
        return self.ws.state.user

    async def admit(self) -> access.Admission:
        user = self.account()
        invite_token = self.ws.query_params.get("invite", "")
        invite = None
        if self.ws.state.auth != "bearer" and invite_token:
            invite = self.state.join_links.read(invite_token)
            if invite is None:
                raise SignalError("not_authenticated", N_("This join link is not valid."))
            user = None
        if user is None and invite is None:
            raise SignalError("not_authenticated", N_("Log in, or use the join link from your invitation."))
        occurrence = None
        if "occurrence" in self.ws.query_params:
            try:
                occurrence = dt.datetime.fromisoformat(self.ws.query_params["occurrence"])
                if occurrence.tzinfo is None:
                    raise ValueError
            except ValueError:
                raise SignalError("invalid", N_("The occurrence must be a date and time with its offset."),
                                  close=4400) from None
        meeting_id = meeting_id_in(str(self.ws.path_params["meeting_id"]))
        try:
            return await self.state.db.run(access.admit_now, self.settings, meeting_id, user, invite, occurrence)
        except DomainError as exc:
            fields = {k: v for k, v in exc.fields.items()}
            raise SignalError(exc.code, exc.message, fields=fields) from None

    async def run(self) -> None:
        await self.ws.accept()
        writer: asyncio.Task[None] | None = None
        try:
            admission = await self.admit()
            self.peer = Peer(admission)
            self.peer.disconnect = self.close_soon
            writer = asyncio.ensure_future(self.writer(self.peer))
            await self.read_loop()
        except SignalError as exc:
            await self.send_now(self.error(exc.code, exc.message, fields=exc.fields, ref=exc.ref))
            self.closing = exc.close or CLOSE_CODES.get(exc.code, 4400)
        except WebSocketDisconnect as exc:
            self.closing = self.closing or exc.code
        except Exception:  # a fault of ours: this connection ends (the client may reconnect), no other
            log.exception("signalling connection failed")
            self.closing = SERVER_FAULT
        finally:
            if self.peer is not None:
                await self.depart(self.peer)
            if writer is not None:
                if self.closing is not None:
                    if not self.stopped.is_set():  # close_soon has not already told it
                        self.end_writing()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(writer), 1.0)
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            if self.ws.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.ws.close(self.closing or 1000)
                    if self.closing in (TOO_LARGE, FLOODED):
                        stop_reading(self.ws)

    async def depart(self, peer: Peer) -> None:
        summary = await self.hub.leave(peer)
        if peer.attendance_id:
            reason = LEAVE_REASONS.get(self.closing or 1000, "dropped")
            try:
                await self.state.db.run(service.record_leave, peer.attendance_id, reason,
                                        summary.get("rtt_ms"), summary.get("loss_percent"))
            except Exception:  # the stay stays open; the next start closes it as dropped
                log.exception("recording a leave failed")

    async def read_loop(self) -> None:
        timeout = 3 * self.settings.heartbeat
        stopped = asyncio.ensure_future(self.stopped.wait())
        try:
            while self.closing is None:
                frame = await self.next_frame(stopped, timeout)
                if frame is None:
                    return
                await self.handle_frame(frame)
                await self.check_session()
        finally:
            stopped.cancel()

    async def check_session(self) -> None:
        """Once a heartbeat, ask again whether the session or token this socket opened with is
        alive: a logout elsewhere, a password reset, a disable, "end all sessions", or the idle
        time and lifetime end it, and the socket with it (4401), not only the next page. Using
        the room keeps the session alive as a page would. Join links carry no session."""
        credential = self.ws.state.credential
        if credential is None or time.monotonic() - self.session_checked < self.settings.heartbeat:
            return
        self.session_checked = time.monotonic()
        if await self.state.sessions.identify(*credential) is None:
            raise SignalError("not_authenticated", N_("Your session has ended (logged out or revoked). Log in again."),
                              close=CLOSE_CODES["not_authenticated"])

    async def next_frame(self, stopped: asyncio.Future[Any], timeout: float) -> dict[str, Any] | None:
        receive = asyncio.ensure_future(self.ws.receive())
        done, _ = await asyncio.wait({receive, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if receive not in done:
            receive.cancel()
            if stopped in done:
                return None
            raise SignalError("timeout", N_("Nothing was received for {seconds} seconds.", seconds=timeout), close=4408)
        return dict(receive.result())

    async def handle_frame(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(frame.get("code", 1000))
        # Binary frames pass the same size check and rate limit as text before their refusal: a
        # flood of them is closed like any other (they were once answered first, and unbounded).
        text = frame.get("text")
        limit = self.settings.signal_max_bytes
        size = len(frame.get("bytes") or b"") if text is None else _utf8_size(text, limit)
        if size > limit:
            raise SignalError("too_large", N_("A message may be at most {size} bytes.", size=limit), close=TOO_LARGE)
        if not self.bucket.take():
            self.refusals += 1
            if self.refusals >= FLOOD_LIMIT:
                raise SignalError("rate_limited", N_("Too many messages: the connection is closed."), close=FLOODED)
            self.send(self.error("rate_limited", N_("Too many messages: slow down.")))
            return
        if text is None:
            self.send(self.error("bad_json", N_("Send text frames: each one JSON object.")))
            return
        try:
            message = parse(text)
            await self.dispatch(message)
        except SignalError as exc:
            if exc.close:
                raise
            self.send(self.error(exc.code, exc.message, fields=exc.fields, ref=exc.ref))


    async def dispatch(self, message: Message) -> None:
        assert self.peer is not None
        if not self.peer.joined and not isinstance(message, Join):
            raise SignalError("not_joined", N_("Send join first."), ref=message.type)
        if self.peer.joined and isinstance(message, Join):
            raise SignalError("already_joined", N_("You have already joined."), ref=message.type)
        if self.peer.waiting and not isinstance(message, (Ping, Leave)):
            raise SignalError("in_lobby", N_("Wait until the chair or a host lets you in."), ref=message.type)
        if isinstance(message, Moderation) and not self.peer.admission.moderates:
            await self.refuse_command(message)
        try:
            await self.handlers[type(message)](message)
        except MediaError as exc:
            code = exc.code if exc.code in ("bad_sdp", "media_unavailable", "invalid") else "media_unavailable"
            raise SignalError(code, N_("The media service refused: {reason}", reason=exc.message), ref=message.type) from None

    # -- handlers --------------------------------------------------------------------------
    async def on_join(self, message: Join) -> None:
        peer = self.peer
        assert peer is not None
        peer.muted, peer.camera, peer.thumbnails, peer.weak_line = message.muted, message.camera, message.thumbnails, message.weak_line
        peer.joined = True
        peer.admitted = self.enter_room
        a = peer.admission
        room = await self.state.db.run(service.state, a.meeting_id, a.occurrence)
        reason = ""
        if not a.moderates:
            if a.person in room.removed:
                reason = "removed"
            elif a.role == "guest":
                reason = "guest"
            elif room.locked:
                reason = "locked"
        if reason:
            self.hub.wait(peer, reason)
            self.send({"type": "lobby_wait", "reason": reason, "meeting": self.meeting_info()})
            return
        await self.enter_room()

    def meeting_info(self) -> dict[str, Any]:
        assert self.peer is not None
        a = self.peer.admission
        return {"id": a.meeting_id, "title": a.title, "occurrence": a.occurrence.isoformat(),
                "start": a.start.isoformat(), "end": a.end.isoformat()}

    async def enter_room(self) -> None:
        """Into the room proper (at once, or when admitted from the lobby): the stay is
        recorded, an older window of the same person closed, and ``welcome`` sent."""
        peer = self.peer
        assert peer is not None
        a = peer.admission
        peer.waiting = ""
        peer.attendance_id = await self.state.db.run(service.record_join, a, a.unit_id)
        older = self.hub.enter(peer)
        if older is not None:
            older.send(self.error("replaced", N_("You joined again from another window; this one is closed.")))
            older.disconnect(4000)
        room = self.hub.rooms[a.room]
        state = await self.state.db.run(service.state, a.meeting_id, a.occurrence)
        chat = await self.state.db.run(service.chat, a.meeting_id, a.occurrence)
        welcome: dict[str, Any] = {
            "type": "welcome", "protocol": PROTOCOL, "you": peer.public(),
            "participants": [p.public() for p in self.hub.participants(a.room) if p is not peer],
            "meeting": self.meeting_info(), "locked": state.locked, "floor": room.floor,
            "chat": [{"type": "chat", "id": c.id, "from": None, "name": c.name, "unit": c.unit_name, "text": c.text,
                      "at": c.at.isoformat(timespec="seconds")} for c in chat[-CHAT_IN_WELCOME:]],
            "ice_servers": self.settings.ice_server_list(), "heartbeat": self.settings.heartbeat,
        }
        if a.moderates:
            welcome["lobby"] = [p.waiting_entry() for p in room.lobby.values()]
        self.send(welcome)

    async def refuse_command(self, message: Message) -> None:
        assert self.peer is not None
        a = self.peer.admission
        log.warning("refused %s from %s (%s) in room %s", message.type, a.person, a.role, a.room)
        try:
            await self.state.db.run(_audit_refusal, a, message.type)
        except Exception:
            log.exception("auditing a refused command failed")
        raise SignalError("forbidden", N_("Only the chair and the hosts may do this."), ref=message.type)

    echo = False  # a connection test (EchoConnection): everyone receives themselves

    async def ensure_media(self) -> None:
        peer = self.peer
        assert peer is not None
        if not peer.media_joined:
            await self.hub.media.join(peer.admission.room, peer.id, muted=peer.muted, echo=self.echo)
            peer.media_joined = True

    async def on_publish(self, message: Publish) -> None:
        peer = self.peer
        assert peer is not None
        await self.ensure_media()
        sdp = await self.hub.media.publish(peer.admission.room, peer.id, message.stream, message.sdp, dict(message.tracks))
        self.send({"type": "publish_answer", "stream": message.stream, "sdp": sdp})
        if message.stream not in peer.publishing:
            peer.publishing.add(message.stream)
            self.hub.broadcast(peer.admission.room, {"type": "participant_updated", "participant": peer.public()})

    async def on_unpublish(self, message: Unpublish) -> None:
        peer = self.peer
        assert peer is not None
        if message.stream in peer.publishing and peer.media_joined:
            await self.hub.media.unpublish(peer.admission.room, peer.id, message.stream)
        peer.publishing.discard(message.stream)
        self.hub.broadcast(peer.admission.room, {"type": "participant_updated", "participant": peer.public()})

    async def on_subscribe(self, message: Subscribe) -> None:
        peer = self.peer
        assert peer is not None
        await self.ensure_media()
        offer = await self.hub.media.subscribe(peer.admission.room, peer.id, thumbnails=peer.thumbnails, weak_line=peer.weak_line)
        if peer.audio_only:
            await self.hub.media.quality(peer.admission.room, peer.id, weak_line=peer.weak_line, audio_only=True)
        self.send({"type": "subscribe_offer", "sdp": offer.sdp, "slots": offer.slots})

    async def on_subscribe_answer(self, message: SubscribeAnswer) -> None:
        peer = self.peer
        assert peer is not None
        if not peer.media_joined:
            raise SignalError("invalid", N_("Send subscribe first."), ref=message.type)
        await self.hub.media.answer(peer.admission.room, peer.id, message.sdp)

    async def on_update(self, message: Update) -> None:
        peer = self.peer
        assert peer is not None
        changed = False
        for name in ("muted", "camera", "hand", "network"):
            value = getattr(message, name)
            if value is not None and value != getattr(peer, name):
                setattr(peer, name, value)
                changed = True
        if message.muted is not None and peer.media_joined:
            await self.hub.media.update(peer.admission.room, peer.id, muted=peer.muted)
        if changed:
            self.hub.broadcast(peer.admission.room, {"type": "participant_updated", "participant": peer.public()})

    async def on_quality(self, message: Quality) -> None:
        peer = self.peer
        assert peer is not None
        peer.weak_line, peer.audio_only = message.weak_line, message.audio_only
        if peer.media_joined:
            await self.hub.media.quality(peer.admission.room, peer.id, weak_line=message.weak_line, audio_only=message.audio_only)

    async def on_chat(self, message: Chat) -> None:
        assert self.peer is not None
        row = await self.state.db.run(service.add_chat, self.peer.admission, message.text)
        self.hub.chat(self.peer, message.text, row.id or 0, row.at)

    async def on_ping(self, message: Ping) -> None:
        self.send({"type": "pong"})

    async def on_leave(self, message: Leave) -> None:
        self.close_soon(1000)


class EchoConnection(Connection):
    """``WS /ws/echo``: the connection test. A logged-in person (or a ward room) alone in a room
    of their own, receiving what they send through the SFU; nothing is recorded."""

    echo = True

    async def admit(self) -> access.Admission:
        user = self.account()
        if user is None:
            raise SignalError("not_authenticated", N_("Log in, or use the join link from your invitation."))
        now = dt.datetime.now(dt.UTC)
        unit = self.ws.state.unit
        return access.Admission(
            meeting_id=0, room=f"echo:{secrets.token_urlsafe(9)}", occurrence=now, title="", start=now, end=now,
            person=f"user:{user.id}", name=user.full_name, kind="person", role="participant",
            unit_code=unit.code if unit else "", unit_name=unit.name if unit else "", user_id=user.id,
        )

    async def on_join(self, message: Join) -> None:
        peer = self.peer
        assert peer is not None
        peer.muted, peer.camera, peer.thumbnails, peer.weak_line = message.muted, message.camera, 0, message.weak_line
        peer.joined = True
        self.hub.enter(peer)
        self.send({"type": "welcome", "protocol": PROTOCOL, "you": peer.public(), "participants": [], "meeting": None,
                   "locked": False, "floor": None, "chat": [], "ice_servers": self.settings.ice_server_list(),
                   "heartbeat": self.settings.heartbeat})

    async def on_chat(self, message: Chat) -> None:
        raise SignalError("invalid", N_("There is no chat in the connection test."), ref=message.type)


async def echo_socket(websocket: WebSocket) -> None:
    state = app_state(websocket)
    if state.rooms is None:
        await websocket.accept()
        await websocket.close(1013)
        return
    await EchoConnection(websocket, state, state.rooms).run()


def _audit_refusal(session: Any, admission: access.Admission, kind: str) -> None:
    audit.record(session, "room_command_refused", target=admission.room, person=admission.person,
                 role=admission.role, command=kind)


async def room_socket(websocket: WebSocket) -> None:
    state = app_state(websocket)
    hub = state.rooms
    if hub is None:  # no lifespan running (a bare test client): no media plane to offer
        await websocket.accept()
        await websocket.send_json({"type": "error", "code": "media_unavailable", "message": "media unavailable"})
        await websocket.close(1013)
        return
    await Connection(websocket, state, hub).run()

