"""media.relay on loopback: a source's packets reach another worker's source unchanged (level
included), keyframe requests travel back, a gated sink sends nothing, a forgotten source closes."""

from __future__ import annotations

import asyncio

from media.forwarding import Source
from media.relay import Relay, RelaySink
from media.rtp import Packet, audio_packet, vp8_packet


class Collect:
    """A sink that keeps what its source pushes."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.gone = False

    def offer(self, source: Source, packet: Packet) -> None:
        self.packets.append(packet)

    def source_gone(self, source: Source) -> None:
        self.gone = True


async def settle(check: object, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)


def test_packets_and_keyframe_requests_cross_between_workers() -> None:
    async def scenario() -> None:
        home, other = await Relay.open(), await Relay.open()
        home.peers.add(other.port)  # what Room.link does
        other.peers.add(home.port)
        try:
            camera = Source("p1", "camera", "video")
            asked: list[bool] = []
            camera.request_keyframe_upstream = lambda: asked.append(True)
            camera_id = home.register(camera)
            assert camera_id >> 32 == home.port  # unique on the machine
            camera.sinks.add(RelaySink(home, camera_id, ("127.0.0.1", other.port)))
            copy = Source("p1", "camera", "video")
            seen = Collect()
            copy.sinks.add(seen)
            other.receive(camera_id, copy, vp8_packet, ("127.0.0.1", home.port))
            payload = bytes((0x90, 0x80, 0x81, 0x2C)) + b"\x10" + b"keyframe"
            camera.push(vp8_packet(4242, 90_000, 1, payload))
            await settle(lambda: seen.packets)
            (got,) = seen.packets
            assert (got.seq, got.timestamp, got.marker, got.payload, got.keyframe, got.picture_id) == (
                4242, 90_000, 1, payload, True, 300)
            copy.request_keyframe()  # a subscriber on the other worker lost a picture
            await settle(lambda: asked)
            assert asked == [True]
            # Audio: the level goes along; a gated sink (a muted publisher) sends nothing.
            voice = Source("p1", "audio", "audio")
            voice_id = home.register(voice)
            muted = [False]
            voice.sinks.add(RelaySink(home, voice_id, ("127.0.0.1", other.port), send_when=lambda: not muted[0]))
            heard, levels = Source("p1", "audio", "audio"), []
            heard_packets = Collect()
            heard.sinks.add(heard_packets)
            other.receive(voice_id, heard, audio_packet, ("127.0.0.1", home.port), on_level=levels.append)
            loud = audio_packet(1, 960, 0, b"\xfc\x01")
            loud.level = 12
            voice.push(loud)
            await settle(lambda: heard_packets.packets)
            assert levels == [12] and heard_packets.packets[0].payload == b"\xfc\x01"
            muted[0] = True
            sent = home.sent
            voice.push(audio_packet(2, 1920, 0, b"\xfc\x02"))
            assert home.sent == sent
            # Forgotten (the publisher left): the copy closes, later packets are ignored.
            other.forget(camera_id)
            assert seen.gone and copy.sinks == set()
            camera.push(vp8_packet(4243, 93_000, 1, payload))
            await asyncio.sleep(0.1)
            assert len(seen.packets) == 1
            # Short datagrams, and any from a socket that is not a linked worker's, are refused.
            assert home.transport is not None
            refused = other.refused
            home.transport.sendto(b"\x01short", ("127.0.0.1", other.port))
            stranger = await Relay.open()
            try:
                stranger.peers.add(other.port)
                forged = RelaySink(stranger, voice_id, ("127.0.0.1", other.port))  # claims home's source
                muted[0] = False
                forged.offer(voice, audio_packet(3, 2880, 0, b"\xfc\x03"))
                other.peers.add(stranger.port)  # even linked, it may not speak for home's sources
                forged.offer(voice, audio_packet(4, 3840, 0, b"\xfc\x04"))
                await settle(lambda: other.refused >= refused + 3)
            finally:
                stranger.close()
            assert other.refused == refused + 3 and len(heard_packets.packets) == 1
        finally:
            home.close()
            other.close()

    asyncio.run(scenario())
