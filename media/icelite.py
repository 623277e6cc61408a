"""An ICE-lite agent (RFC 8445 §2.5) on a shared ``media.udpmux.UdpMux`` port, shaped like the
``aioice.Connection`` that aiortc's ``RTCIceGatherer`` / ``RTCIceTransport`` drive.

A lite agent never sends checks and is always controlled: it offers one host candidate (the
mux's address), answers Binding requests that carry a valid MESSAGE-INTEGRITY (short-term
credential: the local password) and FINGERPRINT, and is connected once the controlling peer
nominates a pair (a check with USE-CANDIDATE). From then on it sends to that remote address
through the mux. Consent checks (RFC 7675) from the peer are answered like any check.

``use_ice_lite(pc, mux)`` makes one ``RTCPeerConnection`` use it without editing aiortc: it
swaps the connection of each ICE gatherer the peer connection creates, before anything has
used it, and marks the local parameters ``iceLite`` so aiortc writes ``a=ice-lite`` itself.
This module is the only one that touches those aiortc private attributes.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Callable
from typing import Any

from aioice import Candidate, ConnectionClosed, stun
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceParameters

from media.udpmux import Address, UdpMux

_ICE_CHARS = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(length))


class _Receiver:
    """The one "protocol" of an ``IceLiteConnection``, shaped like aioice's per-socket protocols
    so ``media.adapter._DirectPath`` can wrap its ``datagram_received`` the same way."""

    def __init__(self, connection: IceLiteConnection) -> None:
        self.datagram_received: Callable[[bytes, Address], str | None] = connection._queue_datagram


class _Pair:
    """The nominated pair as ``media.adapter.PacketOutput`` reads aioice's: ``protocol.transport``
    (here the mux, whose ``sendto`` is the one exit point) and ``remote_addr``."""

    __slots__ = ("remote_addr", "transport")

    def __init__(self, mux: UdpMux, remote_addr: Address) -> None:
        self.transport = mux
        self.remote_addr = remote_addr

    @property
    def protocol(self) -> _Pair:
        return self  # (a property, not an attribute: no reference cycle)


class IceLiteConnection:
    """One peer connection's ICE-lite agent. Duck-types the parts of ``aioice.Connection``
    that aiortc uses; ``binding_request`` / ``datagram_received`` are called by the mux.

    ``_protocols`` and ``_nominated`` mirror aioice's private attributes of the same names that
    ``media.adapter`` reads (its direct receive path and ``PacketOutput``)."""

    def __init__(
        self,
        mux: UdpMux,
        *,
        local_username: str | None = None,
        local_password: str | None = None,
        connect_timeout: float = 30.0,
        queue_size: int = 1024,
        max_remote_candidates: int = 32,
    ) -> None:
        self.mux = mux
        # 16 characters: ufrags share one port, so they must not collide (aioice uses 4).
        self._local_username = local_username or _random(16)
        self._local_password = local_password or _random(24)
        self.remote_is_lite = False
        self.remote_username: str | None = None
        self.remote_password: str | None = None
        self.connect_timeout = connect_timeout
        self.max_remote_candidates = max_remote_candidates
        self._local_candidates: list[Candidate] = []
        self._remote_candidates: list[Candidate] = []
        self._nominated_address: Address | None = None
        self._nominated: dict[int, _Pair] = {}  # component → pair; mutated in place (PacketOutput keeps it)
        self._protocols = [_Receiver(self)]
        self._connected = asyncio.Event()
        self._closed = False
        self._close_emitted = False
        self._event_waiter: asyncio.Future[ConnectionClosed] | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size)
        #: Non-STUN datagrams the mux delivered here (queued for DTLS/SRTP).
        self.datagrams = 0
        #: Loop time of the last accepted check; the peer sends one at least every ~5 s
        #: (consent freshness, RFC 7675), so an old value means the peer is gone.
        self.last_check: float | None = None

    # -- attributes aiortc reads -----------------------------------------------------------

    @property
    def ice_controlling(self) -> bool:
        return False

    @ice_controlling.setter
    def ice_controlling(self, value: bool) -> None:
        # aiortc makes the offerer controlling; a lite agent stays controlled (RFC 8445 §6.1.1).
        pass

    @property
    def local_username(self) -> str:
        return self._local_username

    @property
    def local_password(self) -> str:
        return self._local_password

    @property
    def local_candidates(self) -> list[Candidate]:
        return self._local_candidates[:]

    @property
    def remote_candidates(self) -> list[Candidate]:
        return self._remote_candidates[:]

    @property
    def nominated_address(self) -> Address | None:
        return self._nominated_address

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the aioice.Connection methods aiortc calls ------------------------------------------

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        # A lite agent learns the peer's address from its checks; candidates are kept only
        # for getRemoteCandidates(), bounded.
        if remote_candidate is not None and len(self._remote_candidates) < self.max_remote_candidates:
            self._remote_candidates.append(remote_candidate)

    async def gather_candidates(self) -> None:
        if self._local_candidates or self._closed:
            return
        if self.mux.socket is None:
            raise ConnectionError("ICE-lite: the UDP mux is not started")
        host, port = self.mux.candidate_address
        self.mux.register(self)
        self._local_candidates = [
            Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=1,
                transport="udp",
                priority=candidate_priority(1, "host"),
                host=host,
                port=port,
                type="host",
            )
        ]

    def get_default_candidate(self, component: int) -> Candidate | None:
        return next((c for c in self._local_candidates if c.component == component), None)

    async def connect(self) -> None:
        """Return once the controlling peer has nominated a pair; ``ConnectionError`` when the
        connection closes first or nothing is nominated within ``connect_timeout``."""
        if not self._local_candidates:
            raise ConnectionError("Local candidates gathering was not performed")
        if self.remote_username is None or self.remote_password is None:
            raise ConnectionError("Remote username or password is missing")
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
        except TimeoutError:
            raise ConnectionError("ICE-lite: no nominated pair") from None
        if self._closed:
            raise ConnectionError("ICE-lite: closed while connecting")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.mux.unregister(self)
        self._nominate(None)
        self._local_candidates.clear()
        self._connected.set()  # wakes connect(), which then sees _closed
        while True:  # wake any pending recv()
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()
        self._emit_closed()

    async def get_event(self) -> ConnectionClosed | None:
        assert self._event_waiter is None, "already awaiting event"
        if self._close_emitted:
            return None
        self._event_waiter = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._event_waiter)

    async def recv(self) -> bytes:
        data, _ = await self.recvfrom()
        return data

    async def recvfrom(self) -> tuple[bytes, int]:
        if self._nominated_address is None:
            raise ConnectionError("Cannot receive data, not connected")
        data = await self._queue.get()
        if data is None:
            raise ConnectionError("Connection lost while receiving data")
        return data, 1

    async def send(self, data: bytes) -> None:
        await self.sendto(data, 1)

    async def sendto(self, data: bytes, component: int) -> None:
        if self._nominated_address is None:
            raise ConnectionError("Cannot send data, not connected")
        self.mux.sendto(data, self._nominated_address)

    # -- called by the mux -------------------------------------------------------------------

    def binding_request(self, message: stun.Message, addr: Address) -> str | None:
        """Answer a connectivity check routed here by its USERNAME (RFC 8445 §7.3)."""
        if self._closed:
            return "closed"
        if "FINGERPRINT" not in message.attributes:
            return "no_fingerprint"
        if "MESSAGE-INTEGRITY" not in message.attributes:
            return "no_integrity"
        key = self._local_password.encode("utf8")
        if not message.check_message_integrity(key):
            self._respond_error(message, addr, (401, "Unauthenticated"), signed=False)
            return "bad_integrity"
        remote = str(message.attributes["USERNAME"]).split(":", 1)[1]
        if self.remote_username is not None and remote != self.remote_username:
            self._respond_error(message, addr, (401, "Unauthenticated"), signed=False)
            return "wrong_remote_username"
        if "ICE-CONTROLLED" in message.attributes:
            # Both sides would be controlled: the full agent must take the controlling role.
            self._respond_error(message, addr, (487, "Role Conflict"), signed=True)
            return "role_conflict"
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        response.add_message_integrity(key)  # adds FINGERPRINT too
        self.mux.sendto(bytes(response), addr)
        self.last_check = asyncio.get_running_loop().time()
        if "USE-CANDIDATE" in message.attributes:
            # Nominated pair (RFC 8445 §7.3.1.5); a later nomination moves the path.
            if addr != self._nominated_address:
                self._nominate(addr)
            self._connected.set()
        return None

    def datagram_received(self, data: bytes, addr: Address) -> str | None:
        # Through the (possibly wrapped, see media.adapter._DirectPath) receiver.
        return self._protocols[0].datagram_received(data, addr)

    def _queue_datagram(self, data: bytes, addr: Address) -> str | None:
        if self._closed:
            return "closed"
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            return "queue_full"
        self.datagrams += 1
        return None

    def address_forgotten(self, addr: Address) -> None:
        if self._nominated_address == addr:
            self._nominate(None)

    # -- helpers ---------------------------------------------------------------------------

    def _nominate(self, addr: Address | None) -> None:
        self._nominated_address = addr
        if addr is None:
            self._nominated.clear()
        else:
            self._nominated[1] = _Pair(self.mux, addr)

    def _respond_error(
        self, request: stun.Message, addr: Address, error: tuple[int, str], *, signed: bool
    ) -> None:
        response = stun.Message(
            message_method=request.message_method,
            message_class=stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = error
        # 400/401 answer an unauthenticated request, so they are not signed (RFC 8489 §9.1.3).
        if signed:
            response.add_message_integrity(self._local_password.encode("utf8"))
        else:
            response.add_fingerprint()
        self.mux.sendto(bytes(response), addr)

    def _emit_closed(self) -> None:
        self._close_emitted = True
        if self._event_waiter is not None and not self._event_waiter.done():
            self._event_waiter.set_result(ConnectionClosed())
        self._event_waiter = None


def use_ice_lite(pc: RTCPeerConnection, mux: UdpMux, **options: Any) -> list[IceLiteConnection]:
    """Make ``pc`` use ICE-lite on ``mux`` for every ICE transport it creates from now on.

    Call it right after constructing ``pc``, before any transceiver, data channel or remote
    description. Returns the (growing) list of connections created, for inspection. Every
    transport of one peer connection shares the first one's credentials, as aiortc's own
    bundling expects; the transports a BUNDLE answer discards are closed before they gather,
    so only one registers on the mux. A peer that refuses BUNDLE would need two transports
    with one ufrag on the port: ``UdpMux.register`` refuses that with ``ValueError``.
    """
    created: list[IceLiteConnection] = []
    # Name-mangled private method of RTCPeerConnection (aiortc 1.16.0), wrapped per instance.
    attribute = "_RTCPeerConnection__createDtlsTransport"
    original: Callable[[], RTCDtlsTransport] = getattr(pc, attribute)

    def create_dtls_transport() -> RTCDtlsTransport:
        dtls = original()
        ice_transport = dtls.transport
        gatherer = ice_transport.iceGatherer
        first = created[0] if created else None
        connection = IceLiteConnection(
            mux,
            local_username=first.local_username if first else None,
            local_password=first.local_password if first else None,
            **options,
        )
        created.append(connection)
        # The stock aioice.Connection was only constructed (no socket yet): replace it
        # everywhere RTCIceGatherer / RTCIceTransport keep a reference to it.
        gatherer._connection = connection  # type: ignore[assignment]
        ice_transport._connection = connection  # type: ignore[assignment]
        ice_transport._recv = connection.recv
        ice_transport._send = connection.send

        def local_parameters() -> RTCIceParameters:
            return RTCIceParameters(
                usernameFragment=connection.local_username,
                password=connection.local_password,
                iceLite=True,
            )

        gatherer.getLocalParameters = local_parameters  # type: ignore[method-assign]
        return dtls

    setattr(pc, attribute, create_dtls_transport)
    return created
