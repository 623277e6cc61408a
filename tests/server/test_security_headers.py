"""Every answer's security headers; the CSP lets scripts connect only to the service itself
(server/auth.py ``security_headers``, built once from ``GIAOBAN_PUBLIC_URL``)."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.app import create_app
from server.auth import security_headers
from server.settings import Settings


def connect_sources(policy: str) -> list[str]:
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


def test_scripts_connect_only_to_the_public_origin_over_https_and_wss(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"public_url": "https://giaoban.cantho.gov.vn/"}))
    with TestClient(app) as client:
        for path in ("/login", "/api/units", "/static/css/app.css", "/no-such-page"):
            policy = client.get(path).headers["content-security-policy"]
            assert connect_sources(policy) == ["'self'", "https://giaoban.cantho.gov.vn", "wss://giaoban.cantho.gov.vn"]
            assert "ws:" not in policy.replace("wss://giaoban.cantho.gov.vn", "")
    app.state.giaoban.db.dispose()


def test_a_plain_http_service_gets_its_own_ws_origin_only() -> None:
    headers = dict(security_headers("http://127.0.0.1:8000"))
    assert connect_sources(headers[b"content-security-policy"].decode()) == [
        "'self'", "http://127.0.0.1:8000", "ws://127.0.0.1:8000",
    ]
    assert headers[b"x-frame-options"] == b"DENY" and headers[b"x-content-type-options"] == b"nosniff"
