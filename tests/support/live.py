"""The whole service served for real on 127.0.0.1 (uvicorn in a thread, its own event loop,
SFU workers as child processes), for tests that need real WebSockets and real WebRTC.

ICE stays on loopback: the SFU offers only 127.0.0.1 and accepts only 127.0.0.0/8 candidates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.rooms.messages import transport_max_size
from server.settings import Settings, load_settings
from tests.support.web import DEMO_PASSWORD

T = TypeVar("T")
LOCAL = dt.timezone(dt.timedelta(hours=7))


@dataclass
class Live:
    settings: Settings
    base_url: str
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    app: Any
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[4:]

    def token(self, username: str) -> str:
        if username not in self._tokens:
            response = httpx.post(f"{self.base_url}/api/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            assert response.status_code == 200, response.text
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    def meeting(self, *, units: list[str] | None = None, users: list[str] | None = None, starts_in: int = 20,
                minutes: int = 60, chair: str = "lanhdao", title: str = "Giao ban trực tuyến") -> dict[str, Any]:
        """A meeting planned by ``thuky`` starting ``starts_in`` minutes from now (its room is open)."""
        start = (dt.datetime.now(LOCAL) + dt.timedelta(minutes=starts_in)).replace(second=0, microsecond=0)
        body = {
            "title": title, "start": start.isoformat(), "end": (start + dt.timedelta(minutes=minutes)).isoformat(),
            "host_unit": "ct", "chair": chair, "kind": "ad_hoc", "agenda": [],
            "participants": {"units": units or [], "levels": [], "users": users or []}, "confirm": True,
        }
        response = httpx.post(f"{self.base_url}/api/meetings", json=body, headers={"Authorization": f"Bearer {self.token('thuky')}"})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the server's loop (to reach the hub and the SFU supervisor)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """The same, awaited from a test's own event loop."""
        return await asyncio.wait_for(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop)), timeout)

    @property
    def hub(self) -> Any:
        return self.app.state.giaoban.rooms


def serve(settings: Settings) -> Iterator[Live]:
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="websockets-sansio",
                            ws_max_size=transport_max_size(settings.signal_max_bytes))  # as `serve` runs it
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), name="live-server", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(settings, f"http://127.0.0.1:{port}", server, loop, app)
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()


def live_settings(directory: Path, demo_database: Path, **overrides: Any) -> Settings:
    path = directory / "giaoban.db"
    shutil.copy(demo_database, path)
    values: dict[str, Any] = dict(
        database_url=f"sqlite:///{path}", demo=True, var_dir=directory / "var", demo_password=DEMO_PASSWORD,
        media_addresses="127.0.0.1", media_remote_networks="127.0.0.0/8", mail_sender=False, heartbeat=3,
    )
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[Live]:
    yield from serve(live_settings(tmp_path_factory.mktemp("live"), demo_database))
