"""media.udpmux + media.icelite: many aiortc peer connections on one UDP port with ICE-lite.

The "server" peer connections use ``IceLiteConnection`` on one shared ``UdpMux``; the "client"
ones are stock aiortc (full ICE, controlling) offering only 127.0.0.1. Everything runs on
loopback in this process, so the UDP-socket count below is taken after the clients have opened
theirs: what the servers add is what is measured.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aioice.ice
import pytest
from aioice import stun
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from media import ice
from media.icelite import IceLiteConnection, use_ice_lite
from media.udpmux import DROP_REASONS, UdpMux


@pytest.fixture(autouse=True)
def loopback_candidates() -> Iterator[None]:
    saved = aioice.ice.get_host_addresses
    ice.use_host_addresses(["127.0.0.1"])
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = saved


def run(coro: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro(), timeout)

    asyncio.run(bounded())


def udp_sockets() -> int:
    """UDP sockets this process holds: its socket fds matched with /proc/net/udp{,6}."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            count += sum(1 for line in f.readlines()[1:] if line.split()[9] in inodes)
    return count


def config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


class Pair:
    """A stock aiortc client and an ICE-lite server peer connection; the server greets its
    own client by index on the data channel, the client records what it receives."""

    def __init__(self, index: int, mux: UdpMux) -> None:
        self.index = index
        self.client = RTCPeerConnection(config())
        self.server = RTCPeerConnection(config())
        self.lite = use_ice_lite(self.server, mux)
        self.received: list[str] = []
        self.arrived = asyncio.Event()
        self.channel = self.client.createDataChannel("chat")
        self.server_channel: RTCDataChannel | None = None

        @self.channel.on("message")
        def on_message(message: Any) -> None:
            self.received.append(str(message))
            self.arrived.set()

        @self.server.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self.server_channel = channel
            channel.send(f"to client {index}")

            @channel.on("message")
            def echo(message: Any) -> None:
                channel.send(f"client {index} said {message}")

    async def offer(self) -> None:
        await self.client.setLocalDescription(await self.client.createOffer())

    async def answer(self) -> None:
        await self.server.setRemoteDescription(self.client.localDescription)
        await self.server.setLocalDescription(await self.server.createAnswer())
        await self.client.setRemoteDescription(self.server.localDescription)

    async def next_message(self) -> str:
        await asyncio.wait_for(self.arrived.wait(), 10)
        self.arrived.clear()
        return self.received[-1]

    @property
    def connection(self) -> IceLiteConnection:
        assert len(self.lite) == 1
        return self.lite[0]

    def client_address(self) -> tuple[str, int]:
        address = self.connection.nominated_address
        assert address is not None
        return address

    async def close(self) -> None:
        await self.client.close()
        await self.server.close()


async def connected_pairs(mux: UdpMux, count: int) -> list[Pair]:
    pairs = [Pair(i, mux) for i in range(count)]
    await asyncio.gather(*(p.offer() for p in pairs))
    await asyncio.gather(*(p.answer() for p in pairs))
    await asyncio.gather(*(p.next_message() for p in pairs))
    return pairs


def binding_request(username: str, password: str, **attributes: Any) -> stun.Message:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = username
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = 1
    request.attributes.update(attributes)
    request.add_message_integrity(password.encode())
    return request


def test_thirty_peer_connections_share_one_port_and_each_gets_its_own_data() -> None:
    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0)
        await mux.start()
        pairs = [Pair(i, mux) for i in range(30)]
        await asyncio.gather(*(p.offer() for p in pairs))  # the clients open their sockets here
        before = udp_sockets()
        assert before >= 31  # the count sees the 30 client sockets and the mux

        await asyncio.gather(*(p.answer() for p in pairs))
        sdp = pairs[0].server.localDescription.sdp
        assert "\r\na=ice-lite\r\n" in sdp
        candidates = [ln for ln in sdp.splitlines() if ln.startswith("a=candidate:")]
        assert len(candidates) == 1 and f" 127.0.0.1 {mux.port} typ host" in candidates[0]

        # Every client is greeted by its own server, over DTLS/SCTP on the shared port.
        assert await asyncio.gather(*(p.next_message() for p in pairs)) == [
            f"to client {i}" for i in range(30)
        ]
        for p in pairs:
            assert p.client.connectionState == "connected"
            assert p.server.connectionState == "connected"
            p.channel.send(f"hello {p.index}")
        assert await asyncio.gather(*(p.next_message() for p in pairs)) == [
            f"client {i} said hello {i}" for i in range(30)
        ]
        assert all(len(p.received) == 2 for p in pairs)  # nobody got another's message
        after = udp_sockets()
        assert after == before  # 30 server connections added no socket
        assert mux.state_size() == (30, 30)
        assert len({p.client_address() for p in pairs}) == 30
        assert sum(mux.dropped.values()) == 0

        await asyncio.gather(*(p.close() for p in pairs))
        assert mux.state_size() == (0, 0)
        await mux.close()

    run(scenario, timeout=30)


def spoofer() -> tuple[Callable[[bytes, tuple[str, int], UdpMux], None], Callable[[], None]]:
    """Send a datagram whose source is someone else's address: a raw IPv4 socket when the
    process may open one (root, CAP_NET_RAW); otherwise hand it to the mux as its socket
    would, which is the same routing call."""
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        return (lambda data, source, mux: mux.route(data, source)), lambda: None

    def send(data: bytes, source: tuple[str, int], mux: UdpMux) -> None:
        udp = struct.pack("!HHHH", source[1], mux.port, 8 + len(data), 0) + data
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
            socket.inet_aton(source[0]), socket.inet_aton("127.0.0.1"),
        )
        raw.sendto(header + udp, ("127.0.0.1", 0))

    return send, raw.close


def test_bad_input_is_dropped_counted_and_never_reaches_another_connection() -> None:
    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0)
        await mux.start()
        a, b = await connected_pairs(mux, 2)
        ufrag, password = a.connection.local_username, a.connection.local_password
        remote = a.connection.remote_username
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(2)
        target = ("127.0.0.1", mux.port)

        async def send(data: bytes) -> None:
            probe.sendto(data, target)
            await asyncio.sleep(0.02)

        expected = dict.fromkeys(DROP_REASONS, 0)

        await send(bytes(binding_request("nobody:x", "p" * 22)))
        expected["unknown_username"] += 1
        await send(bytes(binding_request(f"{ufrag}:{remote}", "wrong-password-000000")))
        expected["bad_integrity"] += 1
        error = stun.parse_message(probe.recv(1500))
        assert error.message_class == stun.Class.ERROR and error.error_code == 401
        await send(bytes(binding_request(f"{ufrag}:someone-else", password)))
        expected["wrong_remote_username"] += 1
        await send(bytes(binding_request(f"{ufrag}:{remote}", password, **{"ICE-CONTROLLED": 5})))
        expected["role_conflict"] += 1
        assert stun.parse_message(probe.recv(1500)).attributes["ERROR-CODE"][0] == 401
        assert stun.parse_message(probe.recv(1500)).attributes["ERROR-CODE"][0] == 487
        unsigned = binding_request(f"{ufrag}:{remote}", password)
        del unsigned.attributes["FINGERPRINT"]
        await send(bytes(unsigned))
        expected["no_fingerprint"] += 1
        no_username = binding_request("x", "p" * 22)
        del no_username.attributes["USERNAME"]
        no_username.add_message_integrity(b"p" * 22)
        await send(bytes(no_username))
        expected["no_username"] += 1
        good = bytearray(bytes(binding_request(f"{ufrag}:{remote}", password)))
        good[-1] ^= 0xFF  # FINGERPRINT value
        await send(bytes(good))
        expected["bad_fingerprint"] += 1
        await send(bytes(good[:12]))
        await send(bytes(good[:-8]))  # shorter than its length field says
        expected["truncated"] += 2
        await send(b"\x00\x01\x00\x04" + struct.pack("!I", stun.COOKIE) + bytes(12) + b"\x00\x24\x00\x00")
        expected["malformed_stun"] += 1  # a PRIORITY attribute without its 4 bytes
        response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE)
        response.add_fingerprint()
        await send(bytes(response))
        expected["stun_not_request"] += 1
        await send(b"")
        expected["empty"] += 1
        await send(b"\xff" + os.urandom(99))
        expected["unknown_protocol"] += 1
        dtls_record = b"\x17\xfe\xfd\x00\x01" + bytes(6) + struct.pack("!H", 48) + os.urandom(48)
        await send(dtls_record)
        await send(b"\x80\x60" + os.urandom(98))  # SRTP-looking
        expected["unknown_address"] += 2
        assert mux.dropped == expected
        assert mux.state_size() == (2, 2)  # no bad datagram created state
        assert a.connection.nominated_address != probe.getsockname()

        # Spoofed from A's learned address, without A's keys: only A's connection sees them.
        before_a, before_b = a.connection.datagrams, b.connection.datagrams
        spoof, close_spoofer = spoofer()
        spoof(dtls_record, a.client_address(), mux)
        spoof(b"\x80\x60" + os.urandom(98), a.client_address(), mux)
        spoof(bytes(binding_request(f"{ufrag}:{remote}", "wrong-password-000000")), a.client_address(), mux)
        await asyncio.sleep(0.1)
        close_spoofer()
        assert a.connection.datagrams == before_a + 2
        assert b.connection.datagrams == before_b
        expected["bad_integrity"] += 1
        assert mux.dropped == expected
        # ...and change nothing: both channels still work, each with its own peer.
        a.channel.send("still here")
        b.channel.send("me too")
        assert await a.next_message() == "client 0 said still here"
        assert await b.next_message() == "client 1 said me too"
        assert a.connection.nominated_address == a.client_address()

        probe.close()
        await a.close()
        await b.close()
        await mux.close()

    run(scenario)


def test_close_unregisters_and_forgets_learned_addresses() -> None:
    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0)
        await mux.start()
        a, b = await connected_pairs(mux, 2)
        address = a.client_address()
        assert mux.state_size() == (2, 2)

        await a.close()
        assert a.connection.closed
        assert mux.state_size() == (1, 1)
        assert mux.addresses_of(a.connection) == []
        # A datagram from the closed connection's address now reaches no one.
        mux.route(b"\x17\xfe\xfd" + bytes(20), address)
        assert mux.dropped["unknown_address"] == 1
        ufrag = a.connection.local_username
        mux.route(bytes(binding_request(f"{ufrag}:x", a.connection.local_password)), address)
        assert mux.dropped["unknown_username"] == 1

        b.channel.send("after")
        assert await b.next_message() == "client 1 said after"
        await b.close()
        assert mux.state_size() == (0, 0)
        await mux.close()

    run(scenario)


def test_learned_addresses_per_connection_are_bounded() -> None:
    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0, max_addresses=4)
        await mux.start()
        connection = IceLiteConnection(mux)
        await connection.gather_candidates()
        connection.remote_username, connection.remote_password = "peer", "p" * 22
        request = bytes(binding_request(f"{connection.local_username}:peer", connection.local_password))
        nominate = binding_request(
            f"{connection.local_username}:peer", connection.local_password, **{"USE-CANDIDATE": None}
        )
        mux.route(bytes(nominate), ("127.0.0.1", 1000))
        await connection.connect()  # nominated: connected at once
        assert connection.last_check is not None
        assert connection.nominated_address == ("127.0.0.1", 1000)
        for port in range(1001, 1013):
            mux.route(request, ("127.0.0.1", port))
        learned = mux.addresses_of(connection)
        assert len(learned) == 4 and mux.state_size() == (1, 4)
        assert ("127.0.0.1", 1000) in learned  # the nominated path is never evicted
        assert learned[-1] == ("127.0.0.1", 1012)
        # A second connection that authenticates from an address takes it over.
        other = IceLiteConnection(mux)
        await other.gather_candidates()
        mux.route(bytes(binding_request(f"{other.local_username}:x", other.local_password)), ("127.0.0.1", 1012))
        assert ("127.0.0.1", 1012) not in mux.addresses_of(connection)
        assert mux.addresses_of(other) == [("127.0.0.1", 1012)]
        await connection.close()
        await other.close()
        assert mux.state_size() == (0, 0)
        await mux.close()

    run(scenario)


def test_connect_fails_without_nomination_or_when_closed() -> None:
    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0)
        with pytest.raises(ConnectionError, match="not started"):
            await IceLiteConnection(mux).gather_candidates()
        await mux.start()
        lonely = IceLiteConnection(mux, connect_timeout=0.2)
        with pytest.raises(ConnectionError, match="gathering"):
            await lonely.connect()
        await lonely.gather_candidates()
        lonely.remote_username, lonely.remote_password = "peer", "p" * 22
        with pytest.raises(ConnectionError, match="no nominated pair"):
            await lonely.connect()
        with pytest.raises(ConnectionError):
            await lonely.send(b"x")  # nothing nominated: nowhere to send
        closing = IceLiteConnection(mux)
        await closing.gather_candidates()
        closing.remote_username, closing.remote_password = "peer", "p" * 22
        waiting = asyncio.ensure_future(closing.connect())
        event = asyncio.ensure_future(closing.get_event())
        await asyncio.sleep(0.05)
        await closing.close()
        with pytest.raises(ConnectionError, match="closed"):
            await waiting
        assert type(await event).__name__ == "ConnectionClosed"
        assert await closing.get_event() is None
        # The same ufrag cannot be registered twice on one port.
        twin = IceLiteConnection(mux, local_username=lonely.local_username)
        with pytest.raises(ValueError, match="already registered"):
            await twin.gather_candidates()
        await lonely.close()
        assert mux.state_size() == (0, 0)
        await mux.close()

    run(scenario)
