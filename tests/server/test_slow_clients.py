"""Slow and huge clients against a live uvicorn on 127.0.0.1, configured as ``python -m server
serve`` configures it (server/httpserver.py): a head sent slowly is cut after
``GIAOBAN_HEADER_TIMEOUT`` (2 s here, 10 s by default), an oversized head gets 431, and a body
over the limit gets 413 and a closed connection without being read to its end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.httpserver import MAX_HEAD_BYTES, http_options
from server.settings import Settings
from tests.support.live import live_settings

HEADER_TIMEOUT = 2.0
SLOW_CLIENTS = 50
HEAD = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: text/html\r\n\r\n"


@contextmanager
def running(settings: Settings) -> Iterator[int]:
    """The app served by uvicorn with ``python -m server serve``'s HTTP options; yields the port."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **http_options(settings))
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()
        app.state.giaoban.db.dispose()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[int]:
    with running(live_settings(tmp_path_factory.mktemp("slow"), demo_database, header_timeout=HEADER_TIMEOUT)) as port:
        yield port


async def trickle(port: int, before: bytes = b"") -> float:
    """Send a head one byte a second (after ``before``, sent whole); answer how long the
    server kept the connection open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        if before:
            writer.write(before)
            await reader.readuntil(b"</html>")
        reading = asyncio.ensure_future(reader.read())
        for byte in HEAD:
            writer.write(bytes([byte]))
            done, _ = await asyncio.wait([reading], timeout=1)
            if done:
                break
        else:
            await asyncio.wait_for(reading, 1)
        return time.monotonic() - started
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()


def test_slow_heads_are_cut_within_the_timeout_while_others_are_served(port: int) -> None:
    async def scenario() -> tuple[list[float], float, int]:
        slow = [asyncio.ensure_future(trickle(port)) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(0.5)  # all of them are connected and trickling
        async with httpx.AsyncClient() as http:
            asked = time.monotonic()
            response = await http.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            served = time.monotonic() - asked
        return list(await asyncio.gather(*slow)), served, response.status_code

    held, served, status = asyncio.run(scenario())
    assert status == 200 and served < 1
    # Without the timeout every one is held until the whole head has trickled in (~85 s).
    assert max(held) < HEADER_TIMEOUT + 1.5, sorted(held)[-5:]
    assert min(held) >= HEADER_TIMEOUT - 0.1


def test_the_timeout_starts_again_after_each_answer_on_a_kept_connection(port: int) -> None:
    first = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    held = asyncio.run(trickle(port, before=first))
    assert held < HEADER_TIMEOUT + 1.5


def test_a_huge_head_gets_431_and_the_connection_closes(port: int) -> None:
    async def scenario() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(MAX_HEAD_BYTES // 1000 + 2):
            writer.write(b"X-Padding-%d: %s\r\n" % (n, b"a" * 980))
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 431 ")


def test_a_declared_huge_body_is_refused_at_once_and_not_read(port: int) -> None:
    async def scenario() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"POST /api/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n{\"user")  # 100 MB announced, 6 bytes sent
        answer = await asyncio.wait_for(reader.read(), 5)  # EOF: the server closed the connection
        writer.close()
        return answer, time.monotonic() - started

    answer, elapsed = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
    assert elapsed < 2


def test_a_chunked_body_over_the_limit_is_cut(port: int) -> None:
    chunk = b"a" * 65536
    whole = 64 * 1024 * 1024  # what the client would send: 32 times the 2 MiB limit

    async def scenario() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0

        async def read_all() -> bytes:  # what arrived before the server closed (or reset) the connection
            received = b""
            try:
                while data := await reader.read(65536):
                    received += data
            except ConnectionError:
                pass
            return received

        answer = asyncio.ensure_future(read_all())
        try:
            while sent < whole and not answer.done():
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await asyncio.wait_for(writer.drain(), 5)
                sent += len(chunk)
        except ConnectionError:
            pass  # the server closed the connection under us: the point
        response = await asyncio.wait_for(answer, 5)
        writer.close()
        return response, sent

    answer, sent = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert sent < whole // 4, (sent, answer[:300])  # the rest was never read


def login(port: int, forwarded_for: str, password: str = "wrong-password") -> int:
    response = httpx.post(f"http://127.0.0.1:{port}/api/auth/token", json={"username": "lanhdao", "password": password},
                          headers={"X-Forwarded-For": forwarded_for}, timeout=10)
    return response.status_code


def test_a_forged_forwarded_for_does_not_escape_the_login_throttle(port: int) -> None:
    assert [login(port, f"203.0.113.{n}") for n in range(4)] == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_each_person_is_throttled_on_their_own_address(
    tmp_path: Path, demo_database: Path
) -> None:
    """Behind nginx every connection comes from the proxy: the throttle must key on the address
    it forwards, or one guesser would slow the chair's login too."""
    with running(live_settings(tmp_path, demo_database, trusted_proxies="127.0.0.1")) as proxied:
        assert [login(proxied, "203.0.113.66") for _ in range(4)] == [401, 401, 401, 429]
        assert login(proxied, "198.51.100.7", "giaoban-demo") == 200
