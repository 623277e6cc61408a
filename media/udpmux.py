"""One UDP socket shared by many ICE-lite connections (issue #15, item 1).

Every datagram that reaches the socket is routed without touching per-connection sockets:

- a STUN Binding request (first byte 0–3, RFC 7983) goes to the connection whose local ufrag
  starts its USERNAME (``localufrag:remoteufrag``, RFC 8445 §7.2.2); when that connection
  accepts the check (valid MESSAGE-INTEGRITY and FINGERPRINT), the source address is *learned*
  for it;
- DTLS (20–63) and SRTP/SRTCP (128–191) go to the connection that learned their source
  address;
- anything else is dropped and counted in ``dropped`` by reason.

State is bounded: only an authenticated check creates an address entry, each connection keeps
at most ``max_addresses`` of them (the oldest unused one is forgotten first), and
``unregister`` forgets the connection's ufrag and every address it learned. An unknown or idle
address never creates state. ICE-lite never sends requests, so STUN responses and indications
are not expected and are dropped (``stun_not_request``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from typing import Protocol

from aioice import stun

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: Every reason a datagram is dropped for; ``UdpMux.dropped`` holds one counter per reason.
DROP_REASONS: tuple[str, ...] = (
    "empty",  # a zero-length datagram
    "unknown_protocol",  # first byte outside the STUN, DTLS and RTP ranges of RFC 7983
    "truncated",  # shorter than a STUN header or than its own length field
    "malformed_stun",  # STUN that aioice.stun cannot parse (bad attribute, unknown method...)
    "bad_fingerprint",  # FINGERPRINT present but wrong
    "stun_not_request",  # STUN response or indication (ICE-lite sends no requests)
    "not_binding",  # a STUN request other than Binding
    "no_username",  # Binding request without a ``local:remote`` USERNAME
    "unknown_username",  # no registered connection has that local ufrag
    "no_fingerprint",  # Binding request without FINGERPRINT (RFC 8445 §7.3)
    "no_integrity",  # Binding request without MESSAGE-INTEGRITY
    "bad_integrity",  # MESSAGE-INTEGRITY does not match the local password (401 sent)
    "wrong_remote_username",  # USERNAME's remote part is not the peer's ufrag
    "role_conflict",  # the peer claims to be controlled; a lite agent cannot switch (487 sent)
    "unknown_address",  # DTLS/SRTP from an address no connection has learned
    "queue_full",  # the connection's receive queue is full (its reader is not keeping up)
    "closed",  # the connection closed between routing and delivery
)


class MuxedConnection(Protocol):
    """What the mux needs of a connection (``media.icelite.IceLiteConnection``)."""

    @property
    def local_username(self) -> str: ...

    @property
    def nominated_address(self) -> Address | None: ...

    def binding_request(self, message: stun.Message, addr: Address) -> str | None:
        """Answer an authenticated check; the drop reason when it is refused."""

    def datagram_received(self, data: bytes, addr: Address) -> str | None:
        """Queue a non-STUN datagram; the drop reason when it cannot be."""

    def address_forgotten(self, addr: Address) -> None:
        """``addr`` no longer routes to this connection."""


def _normalise(addr: tuple[object, ...]) -> Address:
    # IPv6 sockets report (host, port, flowinfo, scope_id).
    return (str(addr[0]), int(addr[1]))  # type: ignore[call-overload]


class _MuxProtocol(asyncio.DatagramProtocol):
    def __init__(self, mux: UdpMux) -> None:
        self.mux = mux

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        self.mux.route(data, _normalise(addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: nothing to do, the peer's
        # connection times out or closes on its own.
        logger.debug("udp mux: %s", exc)


class UdpMux:
    """One asyncio datagram endpoint on ``(host, port)`` shared by many connections.

    ``port=0`` takes a free port (tests, a second instance on one machine). ``announced`` is
    the address offered in candidates when it differs from the bound one (1:1 NAT, or a
    socket bound to ``0.0.0.0``).
    """

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        announced: str = "",
        max_addresses: int = 8,
    ) -> None:
        self.host = host
        self.port = port
        self.announced = announced
        self.max_addresses = max_addresses
        self.received = 0
        self.delivered = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, MuxedConnection] = {}
        self._by_address: dict[Address, MuxedConnection] = {}
        # Per connection, its learned addresses, oldest first (dict keeps insertion order).
        self._addresses: dict[MuxedConnection, dict[Address, None]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _MuxProtocol(self), local_addr=(self.host, self.port), family=family
        )
        self._transport = transport
        self.port = _normalise(transport.get_extra_info("sockname"))[1]

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._by_ufrag.clear()
        self._by_address.clear()
        self._addresses.clear()

    @property
    def candidate_address(self) -> Address:
        """The address and port to offer as the one host candidate."""
        return (self.announced or self.host, self.port)

    @property
    def socket(self) -> socket.socket | None:
        if self._transport is None:
            return None
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    # -- registry ------------------------------------------------------------------------

    def register(self, connection: MuxedConnection) -> None:
        ufrag = connection.local_username
        other = self._by_ufrag.get(ufrag)
        if other is not None and other is not connection:
            raise ValueError(f"ICE ufrag {ufrag!r} is already registered on this port")
        self._by_ufrag[ufrag] = connection
        self._addresses.setdefault(connection, {})

    def unregister(self, connection: MuxedConnection) -> None:
        if self._by_ufrag.get(connection.local_username) is connection:
            del self._by_ufrag[connection.local_username]
        for addr in self._addresses.pop(connection, {}):
            if self._by_address.get(addr) is connection:
                del self._by_address[addr]

    def addresses_of(self, connection: MuxedConnection) -> list[Address]:
        return list(self._addresses.get(connection, {}))

    def state_size(self) -> tuple[int, int]:
        """(registered ufrags, learned addresses): what an attacker could try to grow."""
        return len(self._by_ufrag), len(self._by_address)

    def _learn(self, addr: Address, connection: MuxedConnection, keep: Iterable[Address]) -> None:
        previous = self._by_address.get(addr)
        if previous is connection:
            return
        if previous is not None:
            # The address moved to another authenticated connection (a client reusing a port).
            self._addresses.get(previous, {}).pop(addr, None)
            previous.address_forgotten(addr)
        learned = self._addresses.setdefault(connection, {})
        learned[addr] = None
        self._by_address[addr] = connection
        kept = set(keep)
        while len(learned) > self.max_addresses:
            oldest = next((a for a in learned if a not in kept and a != addr), None)
            if oldest is None:
                break
            del learned[oldest]
            if self._by_address.get(oldest) is connection:
                del self._by_address[oldest]
            connection.address_forgotten(oldest)

    # -- datagrams -----------------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def route(self, data: bytes, addr: Address) -> None:
        """Route one datagram received from ``addr``."""
        self.received += 1
        if not data:
            self._drop("empty")
            return
        first = data[0]
        if first < 4:
            self._route_stun(data, addr)
            return
        if not (20 <= first < 64 or 128 <= first < 192):
            self._drop("unknown_protocol")
            return
        connection = self._by_address.get(addr)
        if connection is None:
            self._drop("unknown_address")
            return
        reason = connection.datagram_received(data, addr)
        if reason:
            self._drop(reason)
        else:
            self.delivered += 1

    def _route_stun(self, data: bytes, addr: Address) -> None:
        if len(data) < stun.HEADER_LENGTH or len(data) < stun.HEADER_LENGTH + int.from_bytes(
            data[2:4], "big"
        ):
            self._drop("truncated")
            return
        try:
            message = stun.parse_message(data)
        except ValueError as exc:
            self._drop("bad_fingerprint" if "fingerprint" in str(exc) else "malformed_stun")
            return
        except Exception:  # any other parse failure of untrusted bytes (struct, unicode...)
            self._drop("malformed_stun")
            return
        if message.message_class != stun.Class.REQUEST:
            self._drop("stun_not_request")
            return
        if message.message_method != stun.Method.BINDING:
            self._drop("not_binding")
            return
        username = message.attributes.get("USERNAME")
        if not isinstance(username, str) or ":" not in username:
            self._drop("no_username")
            return
        connection = self._by_ufrag.get(username.split(":", 1)[0])
        if connection is None:
            self._drop("unknown_username")
            return
        reason = connection.binding_request(message, addr)
        if reason:
            self._drop(reason)
            return
        self.delivered += 1
        nominated = connection.nominated_address
        self._learn(addr, connection, [nominated] if nominated else [])
