"""Uvicorn's HTTP protocol with the limits it lacks against slow and oversized request heads.

Uvicorn bounds only the idle time *between* requests (``timeout_keep_alive``), and every byte
received restarts that timer: a client that sends its request line and headers one byte a
second holds a connection (and its memory) for as long as it likes ("slowloris"). Here a
request's head must arrive whole within ``header_timeout`` seconds of the connection opening,
or of the previous response ending, and may be at most ``MAX_HEAD_BYTES``; otherwise the
connection is closed (with a 431 for an oversized head). A connection whose request was
answered before its body was all read is closed too, rather than read to the body's end.
Bodies are otherwise the app's business (server/bodylimit.py); behind nginx its
``client_header_timeout`` and ``client_body_timeout`` do the same jobs first (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import Settings

MAX_HEAD_BYTES = 64 * 1024  # nginx accepts 8 KiB lines and 32 KiB of headers by default


class HeadTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is None or self.transport.is_closing():
            return
        # Still inside a head (the bytes that completed one are not counted: they may carry a body).
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._stop_head_timer()
            message = b"Request header fields too large"
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(message), message)
            )
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # Answered before its body was all read (a 413, a refusal): uvicorn would go on reading
        # and discarding the rest, however long or slow. Close instead, as h11 does.
        unread_body = self.cycle is not None and self.cycle.more_body
        pipelined = bool(self.pipeline)  # a queued request's head has already arrived
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread_body:
            self.transport.close()
        elif not pipelined:
            self._await_head()


def http_options(settings: Settings) -> dict[str, Any]:
    """Uvicorn's arguments for HTTP (``python -m server serve`` and the tests' live servers).

    The client address (the login throttle's key, the audit log's) is the peer's, unless the
    peer is a trusted reverse proxy (``GIAOBAN_TRUSTED_PROXIES``): then it is the address that
    proxy puts in ``X-Forwarded-For``. Without that, behind nginx every person would share the
    proxy's address, and one guesser would slow everyone's logins."""
    protocol = type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"header_timeout": settings.header_timeout})
    proxies = settings.trusted_proxy_list()
    return {
        "http": protocol, "timeout_keep_alive": 5,
        "proxy_headers": bool(proxies), "forwarded_allow_ips": list(proxies) if proxies else None,
    }
