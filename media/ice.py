"""Which addresses take part in ICE: the local addresses the SFU offers as host candidates
(configuration, not whatever interfaces the machine has) and the remote candidates it accepts.

aioice gathers a candidate on every non-loopback interface and never on 127.0.0.1; a city
server has one NIC on the government network and maybe another, and tests must stay on
loopback. ``use_host_addresses`` replaces aioice's address list for the whole process;
``keep_candidates`` strips from an SDP the candidates outside the allowed networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import aioice.ice

_original_get_host_addresses = aioice.ice.get_host_addresses

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly ``addresses`` as host candidates from now on (empty: aioice's default,
    every non-loopback address)."""
    fixed = [str(ipaddress.ip_address(a)) for a in addresses]
    if not fixed:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def candidate_allowed(line: str, networks: Sequence[Network]) -> bool:
    """Whether an ``a=candidate:`` line's address lies in ``networks`` (empty: all do).
    mDNS names (``….local``) are refused when networks are set: they cannot be checked."""
    if not networks:
        return True
    parts = line.split()
    if len(parts) < 6:
        return False
    try:
        address = ipaddress.ip_address(parts[4])
    except ValueError:
        return False
    return any(address in n for n in networks)


def keep_candidates(sdp: str, networks: Sequence[Network]) -> str:
    """``sdp`` without the candidates outside ``networks``."""
    if not networks:
        return sdp
    lines = sdp.splitlines()
    kept = [ln for ln in lines if not ln.startswith("a=candidate:") or candidate_allowed(ln[2:], networks)]
    return "\r\n".join(kept) + "\r\n"


def announce(sdp: str, local: Sequence[str], announced: str) -> str:
    """Replace local host addresses by the announced one (1:1 NAT), in candidates and c= lines."""
    if not announced:
        return sdp
    out = []
    for ln in sdp.splitlines():
        if ln.startswith("a=candidate:"):
            parts = ln.split(" ")
            if len(parts) > 4 and (not local or parts[4] in local):
                parts[4] = announced
            ln = " ".join(parts)
        elif ln.startswith("c=IN IP4 ") and (not local or ln[9:] in local):
            ln = "c=IN IP4 " + announced
        out.append(ln)
    return "\r\n".join(out) + "\r\n"
