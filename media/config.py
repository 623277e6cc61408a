"""The media plane's settings, as the web process hands them to each SFU worker."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class MediaConfig:
    workers: int = 1
    room_spread: int = 100  # participants of one room on a worker before the room spreads to another
    addresses: tuple[str, ...] = ()  # local addresses offered as ICE host candidates; empty: all but loopback
    announced_address: str = ""  # put in place of the local address in SDP (1:1 NAT)
    remote_networks: tuple[str, ...] = ()  # accept remote candidates only from these; empty: any
    video_codec: str = "VP8"  # VP8 | H264
    audio_slots: int = 3
    max_thumbnails: int = 8
    stats_interval: float = 2.0
    udp_port: int = -1  # one UDP port per worker (ICE-lite): worker i binds udp_port + i; 0: a free port; -1: off
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MediaConfig:
        data = json.loads(text)
        for name in ("addresses", "remote_networks"):
            data[name] = tuple(data.get(name, ()))
        return cls(**data)
