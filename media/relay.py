"""Packets between SFU workers, for a room spread over several of them.

Each worker binds one UDP socket on 127.0.0.1 (its port goes to the supervisor in the ``ready``
event). A source published on worker A that a room's other workers need is relayed to each of
them once: A's ``Source`` gets a ``RelaySink`` per worker, B holds a plain ``Source`` (with the
same participant and layer) fed by the datagrams, and B's keyframe requests travel back the same
way. Which sources exist where is said by the supervisor, not here.

A datagram is an 18-byte header — kind (media or keyframe request), the source's id (its home
worker's relay port in the high 32 bits: unique on the machine), sequence number, timestamp,
marker, RFC 6464 level (255: none) — then the payload. Plain
RTP fields, no SRTP: it never leaves the machine's loopback interface.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

from media.forwarding import Source
from media.rtp import Packet

HEADER = struct.Struct("!BQHIBB")  # kind, source id, seq, timestamp, marker, level
MEDIA, KEYFRAME = 1, 2
NO_LEVEL = 0xFF

Address = tuple[str, int]


class Relay(asyncio.DatagramProtocol):
    """One worker's relay socket: sends its sources' packets, receives the others'."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbound: dict[int, tuple[Source, Callable[..., Packet], Callable[[int], None] | None]] = {}
        self.outbound: dict[int, Source] = {}  # this worker's sources others receive, by id
        self.received = self.sent = self.refused = 0
        self.peers: set[int] = set()  # the relay ports of the workers this one is linked with
        self._ids = 0

    def register(self, source: Source) -> int:
        """An id for a local source other workers will receive (unique on this machine)."""
        self._ids += 1
        source_id = (self.port << 32) | self._ids
        self.outbound[source_id] = source
        return source_id

    @classmethod
    async def open(cls) -> Relay:
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return relay

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- receiving -------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Only from a linked worker's relay socket (another local process cannot take its port),
        # and media only from the worker its source id names.
        if len(data) < HEADER.size or addr[0] != "127.0.0.1" or addr[1] not in self.peers:
            self.refused += 1
            return
        kind, source_id, seq, timestamp, marker, level = HEADER.unpack_from(data)
        if kind == MEDIA:
            if source_id >> 32 != addr[1]:
                self.refused += 1
                return
            found = self.inbound.get(source_id)
            if found is None:
                return
            source, read, on_level = found
            self.received += 1
            if on_level is not None and level != NO_LEVEL:
                on_level(level)
            source.push(read(seq, timestamp, marker, data[HEADER.size:]))
        elif kind == KEYFRAME:
            own = self.outbound.get(source_id)
            if own is not None:
                own.request_keyframe()

    def receive(self, source_id: int, source: Source, read: Callable[..., Packet], home: Address,
                on_level: Callable[[int], None] | None = None) -> None:
        """Feed ``source`` from the home worker's relayed packets; its keyframe requests go back."""
        self.inbound[source_id] = (source, read, on_level)
        source.request_keyframe_upstream = lambda: self._send(HEADER.pack(KEYFRAME, source_id, 0, 0, 0, NO_LEVEL), home)

    def forget(self, source_id: int) -> None:
        found = self.inbound.pop(source_id, None)
        if found is not None:
            found[0].close()

    # -- sending ---------------------------------------------------------------------
    def _send(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            try:
                self.transport.sendto(data, address)
                self.sent += 1
            except OSError:
                pass


class RelaySink:
    """Sits among a source's sinks and sends each of its packets to another worker."""

    def __init__(self, relay: Relay, source_id: int, address: Address, *, send_when: Callable[[], bool] = lambda: True) -> None:
        self.relay = relay
        self.source_id = source_id
        self.address = address
        self.send_when = send_when  # e.g. not while the publisher is muted

    def offer(self, source: Source, packet: Packet) -> None:
        if not self.send_when():
            return
        level = packet.level if packet.level is not None else NO_LEVEL
        header = HEADER.pack(MEDIA, self.source_id, packet.seq, packet.timestamp, packet.marker, level)
        self.relay._send(header + packet.payload, self.address)

    def source_gone(self, source: Source) -> None:
        pass
