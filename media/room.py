"""One meeting occurrence's room inside an SFU worker: who publishes what, who receives which
slots, and who is speaking. All media objects of a participant are created and closed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import adapter
from media.config import MediaConfig
from media.errors import MediaError, bad_sdp
from media.forwarding import Slot, Source
from media.ice import announce, keep_candidates, parse_networks
from media.icelite import use_ice_lite
from media.relay import Address, Relay, RelaySink
from media.rtp import packet_reader
from media.slots import AUDIO, FULL, SCREEN, SMALL, Assignment, RoomView, SlotSpec, assign, layout
from media.speakers import SpeakerDetector
from media.udpmux import UdpMux

log = logging.getLogger(__name__)

STREAM_LAYERS = {"camera": {FULL, SMALL, AUDIO}, "screen": {SCREEN}}
# What a publisher may send per layer, told every second by REMB (bits per second).
LAYER_BITRATES = {FULL: 1_500_000, SMALL: 200_000, SCREEN: 2_500_000}
REMB_EVERY = 5  # ticks
MAX_SDP = 32 * 1024
TICK = 0.2

Emit = Callable[[dict[str, Any]], None]


def _new_pc(mux: UdpMux | None = None) -> RTCPeerConnection:
    """A peer connection: on its own ephemeral UDP port, or ICE-lite on the worker's shared one."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    if mux is not None:
        use_ice_lite(pc, mux)
    return pc


@dataclass
class Subscription:
    pc: RTCPeerConnection
    specs: list[SlotSpec]
    slots: dict[str, Slot]
    mids: dict[str, str]
    assignment: Assignment = field(default_factory=dict)


@dataclass
class Member:
    id: str
    order: int
    muted: bool = False
    weak_line: bool = False
    audio_only: bool = False
    publishers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    subscription: Subscription | None = None
    remote: bool = False  # connected to another worker of a spread room: sources relayed here
    source_ids: dict[str, int] = field(default_factory=dict)  # layer → relay id (remote: the home worker's)


class Room:
    def __init__(self, room_id: str, config: MediaConfig, emit: Emit, *, echo: bool = False,
                 relay: Relay | None = None, mux: UdpMux | None = None) -> None:
        self.id = room_id
        self.mux = mux  # the worker's shared UDP port (ICE-lite), or None: a port per connection
        self.relay = relay
        self.links: dict[int, Address] = {}  # the room's other workers (by index): their relay sockets
        self.echo = echo  # a connection test: everyone receives themselves too
        self.config = config
        self.emit = emit
        self.members: dict[str, Member] = {}
        self.detector = SpeakerDetector(audio_slots=config.audio_slots)
        self.pinned: str | None = None
        self.screens: list[str] = []
        self._order = 0
        self._announced: str | None = None
        self._networks = parse_networks(config.remote_networks)
        self._ticker = asyncio.ensure_future(self._tick())
        self._read_video = packet_reader(f"video/{config.video_codec}")

    # -- membership -----------------------------------------------------------
    def member(self, participant_id: str) -> Member:
        found = self.members.get(participant_id)
        if found is None:
            raise MediaError("not_found", f"no participant {participant_id} in this room")
        return found

    def join(self, participant_id: str, *, muted: bool = False) -> None:
        if participant_id not in self.members:
            self._order += 1
            self.members[participant_id] = Member(participant_id, self._order, muted=muted)
            self.detector.set_muted(participant_id, muted)
            self._shard({"op": "member", "participant": participant_id, "muted": muted})

    def local_members(self) -> list[str]:
        return [m.id for m in self.members.values() if not m.remote]

    async def leave(self, participant_id: str) -> None:
        member = self.members.pop(participant_id, None)
        if member is None:
            return
        self.detector.forget(participant_id)
        if self.pinned == participant_id:
            self.pinned = None
        self.screens = [p for p in self.screens if p != participant_id]
        for stream in list(member.publishers):
            await self._close_stream(member, stream)
        if member.subscription is not None:
            await self._close_subscription(member.subscription)
        if member.remote:
            for source_id in member.source_ids.values():
                if self.relay is not None:
                    self.relay.forget(source_id)
        else:
            self._shard({"op": "leave", "participant": participant_id})
        self._reassign()

    async def connection_summary(self, participant_id: str) -> dict[str, float | None]:
        """Round-trip time and loss as the participant's receiving side reported them (RTCP)."""
        member = self.members.get(participant_id)
        rtts: list[float] = []
        lost = received = 0
        if member is not None and member.subscription is not None:
            for transceiver in member.subscription.pc.getTransceivers():
                report = adapter.receiver_report(transceiver.sender)
                if report is not None:
                    if report.roundTripTime is not None:
                        rtts.append(report.roundTripTime * 1000)
                    lost += max(0, report.packetsLost)
                    received += max(0, report.packetsReceived)
        return {
            "rtt_ms": round(sum(rtts) / len(rtts), 1) if rtts else None,
            "loss_percent": round(100 * lost / (lost + received), 2) if lost + received else None,
        }

    async def close(self) -> None:
        self._ticker.cancel()
        for participant_id in list(self.members):
            await self.leave(participant_id)
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker

    # -- publishing -------------------------------------------------------------
    def _remote(self, sdp: str, kind: str) -> RTCSessionDescription:
        if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
            raise bad_sdp(f"the {kind} must be an SDP text of at most {MAX_SDP} bytes")
        return RTCSessionDescription(keep_candidates(sdp, self._networks), kind)

    def _local(self, pc: RTCPeerConnection) -> str:
        description = pc.localDescription
        return announce(description.sdp, self.config.addresses, self.config.announced_address)

    async def publish(self, participant_id: str, stream: str, sdp: str, tracks: Mapping[str, str]) -> str:
        member = self.member(participant_id)
        if stream not in STREAM_LAYERS:
            raise MediaError("invalid", f"unknown stream {stream!r}")
        allowed = STREAM_LAYERS[stream]
        if not tracks or any(layer not in allowed for layer in tracks.values()) or len(set(tracks.values())) != len(tracks):
            raise MediaError("invalid", f"a {stream} stream carries each of {sorted(allowed)} at most once")
        pc = _new_pc(self.mux)
        try:
            await pc.setRemoteDescription(self._remote(sdp, "offer"))
            transceivers = [(t.mid, t) for t in pc.getTransceivers() if t.mid is not None]
            if {mid for mid, _ in transceivers} != set(tracks):
                raise bad_sdp("the offer's media sections and the tracks listed differ")
            for mid, t in transceivers:
                want = "audio" if tracks[mid] == AUDIO else "video"
                if t.kind != want:
                    raise bad_sdp(f"media section {mid} is {t.kind}, listed as {tracks[mid]}")
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            await pc.close()
            raise
        except Exception as exc:  # aiortc raises ValueError, OperationError, InvalidStateError…
            await pc.close()
            raise bad_sdp(f"the offer cannot be used: {exc}") from None
        await self._close_stream(member, stream)
        member.publishers[stream] = pc
        for mid, t in transceivers:
            layer = tracks[mid]
            source = Source(participant_id, layer, t.kind)
            self._tap(member, source, t.receiver)
            member.sources[layer] = source
            self._offer_to_links(member, layer, source)
        if stream == "screen":
            self.screens = [participant_id] + [p for p in self.screens if p != participant_id]

        @pc.on("connectionstatechange")
        async def state_changed() -> None:
            self.emit({"event": "peer_state", "room": self.id, "participant": participant_id, "stream": stream, "state": pc.connectionState})

        self._reassign()
        return self._local(pc)

    def _tap(self, member: Member, source: Source, receiver: Any) -> None:
        ssrc: list[int] = []
        detector = self.detector
        push = source.push
        read = packet_reader("audio/opus") if source.kind == "audio" else self._read_video
        is_audio = source.kind == "audio"

        def on_packet(packet_ssrc: int, seq: int, timestamp: int, marker: int, payload: bytes, level: int | None) -> None:
            if not ssrc:
                ssrc.append(packet_ssrc)
            packet = read(seq, timestamp, marker, payload)
            if is_audio and level is not None:
                detector.level(member.id, level, time.monotonic())
                packet.level = level
            push(packet)

        def upstream() -> None:
            if ssrc:
                adapter.send_pli(receiver, ssrc[0])

        def cap(bitrate: int) -> None:
            if ssrc:
                adapter.send_remb(receiver, bitrate, ssrc[0])

        source.request_keyframe_upstream = upstream
        source.cap_bitrate_upstream = cap
        adapter.tap_packets(receiver, on_packet)

    async def unpublish(self, participant_id: str, stream: str) -> None:
        member = self.member(participant_id)
        await self._close_stream(member, stream)
        if stream == "screen":
            self.screens = [p for p in self.screens if p != participant_id]
        self._reassign()

    async def _close_stream(self, member: Member, stream: str) -> None:
        pc = member.publishers.pop(stream, None)
        for layer in STREAM_LAYERS.get(stream, ()):
            source = member.sources.pop(layer, None)
            if source is not None:
                source.close()
            source_id = member.source_ids.pop(layer, None)
            if source_id is not None and self.relay is not None:
                self.relay.outbound.pop(source_id, None)
                self._shard({"op": "source_gone", "participant": member.id, "layer": layer, "source_id": source_id})
        if pc is not None:
            await pc.close()

    # -- subscribing -------------------------------------------------------------
    async def subscribe(self, participant_id: str, *, thumbnails: int, weak_line: bool) -> dict[str, Any]:
        member = self.member(participant_id)
        if member.subscription is not None:
            await self._close_subscription(member.subscription)
            member.subscription = None
        member.weak_line = weak_line
        specs = layout(max(0, min(thumbnails, self.config.max_thumbnails)), self.config.audio_slots)
        pc = _new_pc(self.mux)
        slots: dict[str, Slot] = {}
        for spec in specs:
            slot = Slot(spec.name, spec.kind)
            sender = pc.addTransceiver(spec.kind, direction="sendonly").sender
            slot.output = adapter.PacketOutput(sender, on_ready=slot.restart)
            adapter.on_keyframe_request(sender, slot.request_keyframe)
            slots[spec.name] = slot
        await pc.setLocalDescription(await pc.createOffer())
        mids = {spec.name: t.mid or "" for spec, t in zip(specs, pc.getTransceivers(), strict=True)}
        member.subscription = Subscription(pc, specs, slots, mids)

        @pc.on("connectionstatechange")
        async def state_changed() -> None:
            self.emit({"event": "peer_state", "room": self.id, "participant": participant_id, "stream": "subscribe", "state": pc.connectionState})

        return {
            "sdp": self._local(pc),
            "slots": [{"mid": mids[s.name], "slot": s.name, "kind": s.kind} for s in specs],
        }

    async def answer(self, participant_id: str, sdp: str) -> None:
        member = self.member(participant_id)
        subscription = member.subscription
        if subscription is None or subscription.pc.signalingState != "have-local-offer":
            raise MediaError("invalid", "there is no offer waiting for an answer: send subscribe first")
        try:
            await subscription.pc.setRemoteDescription(self._remote(sdp, "answer"))
        except MediaError:
            raise
        except Exception as exc:
            raise bad_sdp(f"the answer cannot be used: {exc}") from None
        subscription.assignment = {}
        self._reassign()

    async def _close_subscription(self, subscription: Subscription) -> None:
        for slot in subscription.slots.values():
            slot.stop()
        await subscription.pc.close()

    # -- state from signalling ---------------------------------------------------------
    def update(self, participant_id: str, *, muted: bool) -> None:
        member = self.member(participant_id)
        member.muted = muted
        self.detector.set_muted(participant_id, muted)
        if not member.remote:
            self._shard({"op": "member", "participant": participant_id, "muted": muted})
        if self.detector.tick(time.monotonic()):
            self._reassign(speaker_changed=True)

    def quality(self, participant_id: str, *, weak_line: bool, audio_only: bool = False) -> None:
        member = self.member(participant_id)
        member.weak_line, member.audio_only = weak_line, audio_only
        self._reassign()

    def pin(self, participant_id: str | None) -> None:
        if participant_id is not None:
            self.member(participant_id)
        self.pinned = participant_id
        self._reassign()

    # -- a room spread over workers ----------------------------------------------------
    def _shard(self, event: dict[str, Any]) -> None:
        """Tell the room's other workers (through the supervisor) about a local member or source."""
        if self.links:
            self.emit({"event": "shard", "room": self.id, **event})

    def _offer_to_links(self, member: Member, layer: str, source: Source) -> None:
        """Make a local source available to the room's other workers."""
        if self.relay is None:
            return
        source_id = self.relay.register(source)
        member.source_ids[layer] = source_id
        for address in self.links.values():
            source.sinks.add(self._relay_sink(member, source, source_id, address))
        self._shard({"op": "source", "participant": member.id, "layer": layer, "kind": source.kind, "source_id": source_id})

    def _relay_sink(self, member: Member, source: Source, source_id: int, address: Address) -> RelaySink:
        assert self.relay is not None
        if source.kind == "audio":  # a muted voice is never heard elsewhere either
            return RelaySink(self.relay, source_id, address, send_when=lambda: not member.muted)
        return RelaySink(self.relay, source_id, address)

    def link(self, worker: int, address: Address) -> None:
        """Another worker now holds part of this room: relay every local source to it, and tell
        it (through the supervisor) who is here and what they publish."""
        if worker in self.links:
            return
        self.links[worker] = address
        if self.relay is not None:
            self.relay.peers.add(address[1])
        for member in self.members.values():
            if member.remote:
                continue
            self._shard({"op": "member", "participant": member.id, "muted": member.muted})
            for layer, source in member.sources.items():
                source_id = member.source_ids.get(layer)
                if source_id is None:
                    self._offer_to_links(member, layer, source)
                    continue
                source.sinks.add(self._relay_sink(member, source, source_id, address))
                self._shard({"op": "source", "participant": member.id, "layer": layer, "kind": source.kind, "source_id": source_id})

    def unlink(self, worker: int) -> None:
        address = self.links.pop(worker, None)
        if address is None:
            return
        for member in self.members.values():
            for source in member.sources.values():
                for sink in [s for s in source.sinks if isinstance(s, RelaySink) and s.address == address]:
                    source.sinks.discard(sink)

    def remote_member(self, participant_id: str, *, muted: bool) -> None:
        member = self.members.get(participant_id)
        if member is None:
            self._order += 1
            member = self.members[participant_id] = Member(participant_id, self._order, remote=True)
        if not member.remote:
            return
        member.muted = muted
        self.detector.set_muted(participant_id, muted)
        if self.detector.tick(time.monotonic()):
            self._reassign(speaker_changed=True)

    def remote_source(self, participant_id: str, layer: str, kind: str, source_id: int, home: Address) -> None:
        member = self.members.get(participant_id)
        if member is None or not member.remote or self.relay is None or member.source_ids.get(layer) == source_id:
            return
        old = member.source_ids.get(layer)
        if old is not None:
            self.relay.forget(old)
        source = Source(participant_id, layer, kind)
        detector = self.detector
        on_level = (lambda level: detector.level(participant_id, level, time.monotonic())) if kind == "audio" else None
        read = packet_reader("audio/opus") if kind == "audio" else self._read_video
        self.relay.receive(source_id, source, read, home, on_level)
        member.sources[layer] = source
        member.source_ids[layer] = source_id
        if layer == SCREEN:
            self.screens = [participant_id] + [p for p in self.screens if p != participant_id]
        self._reassign()

    def remote_source_gone(self, participant_id: str, layer: str, source_id: int) -> None:
        member = self.members.get(participant_id)
        if member is None or not member.remote or member.source_ids.get(layer) != source_id:
            return
        member.source_ids.pop(layer)
        member.sources.pop(layer, None)
        if self.relay is not None:
            self.relay.forget(source_id)
        if layer == SCREEN:
            self.screens = [p for p in self.screens if p != participant_id]
        self._reassign()

    # -- slots -------------------------------------------------------------------------
    def view(self) -> RoomView:
        ordered = sorted(self.members.values(), key=lambda m: m.order)
        return RoomView(
            cameras=[m.id for m in ordered if FULL in m.sources or SMALL in m.sources],
            screens=[p for p in self.screens if p in self.members],
            pinned=self.pinned,
            active=self.detector.active,
            recent=[p for p in self.detector.recent if p in self.members],
            audible=[p for p in self.detector.audible if p in self.members and AUDIO in self.members[p].sources],
        )

    def _reassign(self, speaker_changed: bool = False) -> None:
        view = self.view()
        if speaker_changed and view.active != self._announced:
            self._announced = view.active
            self.emit({"event": "active_speaker", "room": self.id, "participant": view.active})
        for member in self.members.values():
            sub = member.subscription
            if sub is None or sub.pc.signalingState != "stable":
                continue
            wanted = assign(None if self.echo else member.id, sub.specs, view, weak_line=member.weak_line,
                            audio_only=member.audio_only)
            if wanted == sub.assignment:
                continue
            for name, target in wanted.items():
                source = None
                if target is not None:
                    owner = self.members[target[0]]
                    source = owner.sources.get(target[1])
                    if source is None and target[1] == FULL:
                        source = owner.sources.get(SMALL)  # a camera sent only small
                    elif source is None and target[1] == SMALL:
                        source = owner.sources.get(FULL)  # no small layer: the full one
                sub.slots[name].switch(source)
            sub.assignment = wanted
            self.emit({
                "event": "slots", "room": self.id, "participant": member.id,
                "slots": [
                    {"slot": name, "mid": sub.mids[name], "participant_id": t[0] if t else None, "layer": t[1] if t else None}
                    for name, t in wanted.items()
                ],
            })

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            ticks += 1
            try:
                if self.detector.tick(time.monotonic()):
                    self._reassign(speaker_changed=True)
                if ticks % REMB_EVERY == 0:
                    for member in self.members.values():
                        for layer, source in member.sources.items():
                            if layer in LAYER_BITRATES:
                                source.cap_bitrate_upstream(LAYER_BITRATES[layer])
            except Exception:  # a bug here must not stop speaker detection for the room
                log.exception("speaker detection failed in room %s", self.id)

    def stats(self) -> dict[str, int]:
        return {
            "participants": len(self.members),
            "publishers": sum(1 for m in self.members.values() if m.publishers),
        }

