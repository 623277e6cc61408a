"""ICE address policy (media.ice): which host addresses aioice offers, which remote candidates
an SDP keeps, and the 1:1 NAT rewrite. The last test gathers candidates on loopback only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aioice
import aioice.ice
import pytest

from media import ice

SDP = "\r\n".join([
    "v=0",
    "o=- 1 1 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 10.0.0.5",
    "a=mid:0",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
    "a=candidate:2 1 udp 2130706431 10.0.0.5 50001 typ host",
    "a=candidate:3 1 udp 2130706431 127.8.9.10 50002 typ host",
    "a=candidate:4 1 udp 2130706431 3f2a1b0c-1111-2222-3333-444455556666.local 50003 typ host",
    "a=candidate:5 1 udp 2130706431 ::1 50004 typ host",
    "a=candidate:6 1 udp 1694498815 198.51.100.9 50005 typ srflx raddr 10.0.0.5 rport 50001",
    "a=end-of-candidates",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "c=IN IP4 0.0.0.0",
    "a=mid:1",
]) + "\r\n"


def candidates(sdp: str) -> list[str]:
    return [ln.split()[4] for ln in sdp.splitlines() if ln.startswith("a=candidate:")]


@pytest.fixture(autouse=True)
def restore_host_addresses() -> Iterator[None]:
    saved = aioice.ice.get_host_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = saved


def test_keep_candidates_keeps_only_the_allowed_networks() -> None:
    loopback = ice.parse_networks(["127.0.0.0/8"])
    kept = ice.keep_candidates(SDP, loopback)
    assert candidates(kept) == ["127.0.0.1", "127.8.9.10"]  # no mDNS name, no IPv6, no other net
    # Everything that is not a candidate line is left alone.
    others = [ln for ln in SDP.splitlines() if not ln.startswith("a=candidate:")]
    assert [ln for ln in kept.splitlines() if not ln.startswith("a=candidate:")] == others
    assert kept.endswith("\r\n") and "\n" not in kept.replace("\r\n", "")


def test_keep_candidates_with_several_networks() -> None:
    networks = ice.parse_networks(["10.0.0.0/8", " ::1/128 ", ""])
    assert len(networks) == 2
    assert candidates(ice.keep_candidates(SDP, networks)) == ["10.0.0.5", "::1"]


def test_keep_candidates_keeps_everything_without_networks() -> None:
    assert ice.keep_candidates(SDP, []) == SDP
    assert ice.parse_networks(["", "  "]) == []


def test_candidate_allowed() -> None:
    loopback = ice.parse_networks(["127.0.0.0/8"])
    assert ice.candidate_allowed("candidate:1 1 udp 1 127.0.0.1 9 typ host", loopback)
    assert not ice.candidate_allowed("candidate:1 1 udp 1 192.168.1.2 9 typ host", loopback)
    assert not ice.candidate_allowed("candidate:1 1 udp 1 abc.local 9 typ host", loopback)
    assert not ice.candidate_allowed("candidate:1 1 udp", loopback)  # malformed
    assert ice.candidate_allowed("candidate:1 1 udp 1 abc.local 9 typ host", [])


def test_announce_replaces_local_addresses_in_candidates_and_c_lines() -> None:
    out = ice.announce(SDP, ["10.0.0.5"], "203.0.113.7")
    assert candidates(out) == [
        "127.0.0.1", "203.0.113.7", "127.8.9.10", "3f2a1b0c-1111-2222-3333-444455556666.local", "::1", "198.51.100.9",
    ]
    c_lines = [ln for ln in out.splitlines() if ln.startswith("c=")]
    assert c_lines == ["c=IN IP4 203.0.113.7", "c=IN IP4 0.0.0.0"]
    assert "a=candidate:2 1 udp 2130706431 203.0.113.7 50001 typ host" in out.splitlines()
    assert out.endswith("\r\n")


def test_announce_without_local_list_replaces_every_address() -> None:
    out = ice.announce(SDP, [], "203.0.113.7")
    assert set(candidates(out)) == {"203.0.113.7"}
    assert [ln for ln in out.splitlines() if ln.startswith("c=")] == ["c=IN IP4 203.0.113.7"] * 2


def test_announce_with_nothing_to_announce_changes_nothing() -> None:
    assert ice.announce(SDP, ["10.0.0.5"], "") == SDP


def test_use_host_addresses_replaces_and_restores_aioice_addresses() -> None:
    original = ice._original_get_host_addresses  # aioice's own, whatever earlier tests set
    ice.use_host_addresses(["127.0.0.1", "::1", "10.1.2.3"])
    assert aioice.ice.get_host_addresses is not original
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1", "10.1.2.3"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1", "10.1.2.3"]
    assert aioice.ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == ["::1"]
    ice.use_host_addresses([])
    assert aioice.ice.get_host_addresses is original


def test_use_host_addresses_refuses_a_bad_address_and_keeps_the_old_list() -> None:
    ice.use_host_addresses(["127.0.0.1"])
    current = aioice.ice.get_host_addresses
    with pytest.raises(ValueError):
        ice.use_host_addresses(["127.0.0.1", "not-an-address"])
    assert aioice.ice.get_host_addresses is current


def test_aioice_gathers_exactly_the_configured_host_addresses() -> None:
    """aioice looks the function up at gathering time, so the replacement takes effect (loopback)."""
    ice.use_host_addresses(["127.0.0.1"])

    async def gather() -> list[str]:
        connection = aioice.Connection(ice_controlling=True, use_ipv6=False)
        try:
            await asyncio.wait_for(connection.gather_candidates(), 5)
            return [c.host for c in connection.local_candidates]
        finally:
            await connection.close()

    assert asyncio.run(gather()) == ["127.0.0.1"]
