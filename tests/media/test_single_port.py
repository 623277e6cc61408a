"""The SFU worker on one UDP port (``GIAOBAN_MEDIA_UDP_PORT``, ICE-lite; docs/media-ports.md):
real signalling, a real worker process, aiortc clients publishing and decoding known clips."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aioice import stun

from media.icelite import IceLiteConnection
from media.udpmux import UdpMux
from server.settings import UnsafeSettings, load_settings
from tests.media.test_sfu import frames_of, joined, room_of
from tests.media.test_udpmux import binding_request
from tests.support.live import Live, live_settings, serve
from tests.support.media_clips import BRIGHTNESS, Clips

SUBSCRIBERS = ["thuky.ninhkieu", "canbo.tanan", "thuky"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def udp_port() -> int:
    return free_udp_port()


@pytest.fixture(scope="module")
def live_single_port(tmp_path_factory: pytest.TempPathFactory, demo_database: Path, udp_port: int) -> Iterator[Live]:
    settings = live_settings(tmp_path_factory.mktemp("live-udp"), demo_database, media_udp_port=udp_port,
                             sfu_workers=1)
    yield from serve(settings)


def candidates(sdp: str) -> list[tuple[str, int, str]]:
    """(address, port, transport) of each ``a=candidate:`` line."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line[len("a=candidate:"):].split()
            out.append((parts[4], int(parts[5]), parts[2].lower()))
    return out


def test_one_publisher_and_three_subscribers_share_the_workers_one_udp_port(
    live_single_port: Live, clips: Clips, udp_port: int
) -> None:
    live = live_single_port
    meeting = live.meeting(users=SUBSCRIBERS)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao", *SUBSCRIBERS) as (publisher, *subscribers):
            await publisher.publish("dark", audio="loud")
            answer = next(m for m in publisher.history if m.get("type") == "publish_answer")["sdp"]
            offers = [await s.subscribe() for s in subscribers]
            # Every SDP the SFU writes is ICE-lite and offers one candidate (repeated in each bundled
            # media section): the configured port.
            for sdp in [answer] + [o["sdp"] for o in offers]:
                assert "a=ice-lite" in sdp.splitlines(), sdp
                assert set(candidates(sdp)) == {("127.0.0.1", udp_port, "udp")}, candidates(sdp)
            # Each subscriber decodes the publisher's camera (its brightness) and hears it, a speaker,
            # in an audio slot.
            for s in subscribers:
                main = await frames_of(s, "main")
                assert main.near_luma(BRIGHTNESS["dark"]), main.luma
                assert s.source("main") == publisher.participant_id
            for s in subscribers:
                await s.wait_for(lambda s=s: s.source("audio1") == publisher.participant_id, 10, "the speaker's audio slot")
                assert (await frames_of(s, "audio1", 10)).frames >= 10
            debug = await live.call(live.hub.media.debug(room_of(publisher)))
            # Four peer connections connected, and the worker opened no socket for any of them
            # (today's per-connection ports would add one each).
            assert debug["sockets"] == 0, debug
            assert debug["forwarded_packets"] > 100, debug
            # The publisher's packets take the adapter's direct path over the ICE-lite connection.
            assert debug["direct_packets"] > 100, debug

    asyncio.run(scenario())


def test_junk_on_the_port_is_dropped_and_counted_on_metrics(live_single_port: Live, clips: Clips, udp_port: int) -> None:
    live = live_single_port
    meeting = live.meeting(users=SUBSCRIBERS)

    async def scenario() -> None:
        async with joined(live, meeting, clips, "lanhdao"):  # someone in a room: the worker runs
            request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
            request.attributes["USERNAME"] = "nobodyhere123456:peer"
            request.add_message_integrity(b"not-the-password")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for _ in range(3):
                    sender.sendto(bytes(request), ("127.0.0.1", udp_port))
                sender.sendto(b"\x90" + bytes(40), ("127.0.0.1", udp_port))  # SRTP from an unknown address
            async with httpx.AsyncClient(base_url=live.base_url) as http:
                for _ in range(80):  # the worker reports every 2 s
                    text = (await http.get("/metrics")).text
                    if 'giaoban_media_demux_dropped_total{reason="unknown_username"} 3.0' in text:
                        break
                    await asyncio.sleep(0.1)
            assert 'giaoban_media_demux_dropped_total{reason="unknown_username"} 3.0' in text, text
            assert 'giaoban_media_demux_dropped_total{reason="unknown_address"} 1.0' in text
            assert 'giaoban_media_demux_dropped_total{reason="bad_integrity"} 0.0' in text

    asyncio.run(scenario())


def test_the_nominated_pair_the_adapter_reads_follows_nomination_and_close() -> None:
    """``media.adapter.PacketOutput`` keeps the connection's ``_nominated`` dict and sends with
    ``pair.protocol.transport.sendto(data, pair.remote_addr)``: on ICE-lite that is the mux, to
    the address the peer nominated last; nothing once the connection closed."""

    async def scenario() -> None:
        mux = UdpMux("127.0.0.1", 0)
        await mux.start()
        connection = IceLiteConnection(mux)
        connection.remote_username, connection.remote_password = "peer", "peerpassword"
        await connection.gather_candidates()
        kept = connection._nominated  # what PacketOutput holds on to
        assert kept == {}
        username, password = f"{connection.local_username}:peer", connection.local_password
        mux.route(bytes(binding_request(username, password)), ("127.0.0.1", 40000))
        assert kept == {}  # a check without USE-CANDIDATE nominates nothing
        for port in (40000, 40001):
            mux.route(bytes(binding_request(username, password, **{"USE-CANDIDATE": None})), ("127.0.0.1", port))
            pair = kept[1]
            assert pair.protocol.transport is mux and pair.remote_addr == ("127.0.0.1", port)
        await connection.close()
        assert kept == {} and connection._nominated is kept
        await mux.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_the_udp_port_setting_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIAOBAN_MEDIA_UDP_PORT", raising=False)
    monkeypatch.setenv("GIAOBAN_MEDIA_ADDRESSES", "10.20.0.5")
    assert load_settings().media_config().udp_port == -1  # default: off, a port per connection
    assert load_settings(media_udp_port="").media_config().udp_port == -1
    assert load_settings(media_udp_port="0").media_config().udp_port == 0
    config = load_settings(media_udp_port="10000", sfu_workers=4).media_config()
    assert config.udp_port == 10000 and config.addresses == ("10.20.0.5",)
    monkeypatch.setenv("GIAOBAN_MEDIA_UDP_PORT", " ")
    assert load_settings().media_udp_port == -1
    for bad in ("udp", "-2", "65536", "1.5"):
        monkeypatch.setenv("GIAOBAN_MEDIA_UDP_PORT", bad)
        with pytest.raises(UnsafeSettings, match="GIAOBAN_MEDIA_UDP_PORT"):
            load_settings()
    monkeypatch.setenv("GIAOBAN_MEDIA_UDP_PORT", "65535")
    with pytest.raises(UnsafeSettings, match="GIAOBAN_MEDIA_UDP_PORT"):
        load_settings(sfu_workers=2)  # worker 1 would need port 65536
    # One socket offers one candidate: the address browsers reach must be configured, not guessed.
    monkeypatch.setenv("GIAOBAN_MEDIA_UDP_PORT", "10000")
    monkeypatch.delenv("GIAOBAN_MEDIA_ADDRESSES")
    with pytest.raises(UnsafeSettings, match="GIAOBAN_MEDIA_UDP_PORT needs GIAOBAN_MEDIA_ADDRESSES"):
        load_settings()
