"""Fixtures for web tests: a migrated SQLite database with the demo data (built once per run
and copied for each test), the app on it, and a client that can log in and send CSRF tokens."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server import demo
from server.app import create_app
from server.db import Database
from server.migrate import upgrade_to_head
from server.settings import Settings, load_settings
from server.workdays import service as workdays

DEMO_PASSWORD = "giaoban-demo"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "demo.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    db = Database(url)
    with db.session() as session:
        workdays.seed_if_empty(session)
        demo.load(session, DEMO_PASSWORD, meetings=False)  # each test plans its own meetings
    db.dispose()
    return path


@pytest.fixture
def settings(demo_database: Path, tmp_path: Path) -> Settings:
    path = tmp_path / "giaoban.db"
    shutil.copy(demo_database, path)
    return load_settings(
        database_url=f"sqlite:///{path}", demo=True, var_dir=tmp_path / "var", demo_password=DEMO_PASSWORD
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Starlette]:
    application = create_app(settings)
    yield application
    application.state.giaoban.db.dispose()


class Browser(TestClient):
    """A TestClient that behaves like a person's browser: logs in through the form and sends
    the page's CSRF token with every form it posts."""

    def csrf(self) -> str:
        page = self.get("/login" if "giaoban_session" not in self.cookies else "/units")
        match = CSRF_RE.search(page.text)
        assert match, "the page carries no CSRF token"
        return match.group(1)

    def login(self, username: str, password: str = DEMO_PASSWORD) -> Browser:
        response = self.post("/login", data={"username": username, "password": password, "csrf_token": self.csrf()})
        assert response.status_code == 200 and "/login" not in str(response.url), response.text[:2000]
        return self

    def submit(self, url: str, data: dict[str, str] | None = None, files: dict[str, tuple[str, bytes, str]] | None = None):  # type: ignore[no-untyped-def]
        return self.post(url, data={**(data or {}), "csrf_token": self.csrf()}, files=files)


@pytest.fixture
def browser(app: Starlette) -> Iterator[Browser]:
    with Browser(app, raise_server_exceptions=False) as client:
        yield client


def other_browser(app: Starlette) -> Browser:
    return Browser(app, raise_server_exceptions=False)


def api_token(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
