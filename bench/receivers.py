"""What the fan-out benchmarks' receiving clients share: they count, never decode."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiortc.rtcrtpreceiver import RTCRtpReceiver

from media import adapter


def counting_tap(counts: dict[str, int]) -> Callable[[RTCRtpReceiver], None]:
    """A function that makes a receiver add its frames and packets to ``counts`` instead of
    decoding them (call ``media.adapter.install()`` in the process first)."""

    def tap(receiver: RTCRtpReceiver) -> None:
        def on_frame(frame: Any) -> None:
            counts["frames"] += 1

        def on_packet(ssrc: int, level: int | None) -> None:
            counts["packets"] += 1

        adapter.tap_receiver(receiver, on_frame=on_frame, keyframe=lambda d: False, on_packet=on_packet)

    return tap


def set_receive_buffer(pc: Any, size: int) -> None:
    """SO_RCVBUF of ``pc``'s ICE sockets (aioice's, via aiortc's private attributes; the kernel
    caps it at net.core.rmem_max). Off by default in both benchmarks."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
