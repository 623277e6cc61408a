"""`python -m server serve` as `make run` starts it: a real HTTP server on 127.0.0.1, migrations
applied, demo data loaded once, logins printed, data kept across restarts."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(var_dir: Path, port: int) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIAOBAN_")}
    env.update(GIAOBAN_DEMO="1", GIAOBAN_VAR_DIR=str(var_dir), GIAOBAN_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def log_in(client: httpx.Client, base: str, username: str) -> None:
    page = client.get(f"{base}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        f"{base}/login", data={"username": username, "password": "giaoban-demo", "csrf_token": token.group(1)}
    )
    assert response.status_code == 200 and str(response.url).endswith("/"), response.text[:500]


def test_serve_runs_the_demo_and_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    var_dir = tmp_path / "fresh" / "var"  # as in a fresh clone: the folder does not exist yet
    with serving(var_dir, port) as (base, process), httpx.Client(follow_redirects=True, timeout=10) as client:
        login = client.get(f"{base}/")
        assert str(login.url).startswith(f"{base}/login") and "Đăng nhập" in login.text
        log_in(client, base, "thuky")
        units = client.get(f"{base}/units")
        assert units.text.count('<a href="/units/ct') == 116
        admin = httpx.Client(follow_redirects=True, timeout=10)
        log_in(admin, base, "admin")
        page = admin.get(f"{base}/admin/users/new")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        created = admin.post(
            f"{base}/admin/users/new",
            data={"username": "canbo.giu", "full_name": "Cán bộ Giữ", "email": "giu@cantho.gov.vn.test",
                  "unit": "ct", "role": "official", "password": "mat-khau-giu-2026", "csrf_token": token.group(1)},
        )
        assert created.status_code == 201
        # The demo briefing's invitations, one per unit mailbox and one for the chair, reach
        # the file outbox through the app's own sender.
        deadline = time.monotonic() + 60
        while len(list((var_dir / "outbox").glob("*.eml"))) < 117:
            assert time.monotonic() < deadline, "the demo invitations did not reach var/outbox/"
            time.sleep(0.2)
    output = process.stdout.read() if process.stdout else ""
    assert "thuky" in output and "giaoban-demo" in output and "lanhdao" in output
    assert (var_dir / "giaoban.db").exists()
    # Signed with a random key of its own, made at the first start and said so.
    assert f"random key made now and kept in {var_dir / 'demo-secret-key'}" in output
    key = (var_dir / "demo-secret-key").read_text()
    assert len(key.strip()) >= 48 and stat.S_IMODE((var_dir / "demo-secret-key").stat().st_mode) == 0o600

    with serving(var_dir, port) as (base, process), httpx.Client(follow_redirects=True, timeout=10) as client:
        page = client.get(f"{base}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        response = client.post(
            f"{base}/login", data={"username": "canbo.giu", "password": "mat-khau-giu-2026", "csrf_token": token.group(1)}
        )
        assert "Cán bộ Giữ" in response.text
        log_in(client, base, "thuky")
        assert client.get(f"{base}/units").text.count('<a href="/units/ct') == 116  # not loaded twice
    output = process.stdout.read() if process.stdout else ""
    assert "made now" not in output and "demo-secret-key" in output
    assert (var_dir / "demo-secret-key").read_text() == key  # the same key: sessions survive a restart
