"""The edges outside tools rely on: health, metrics, the API description, error pages,
oversized bodies, security headers and the language switch."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from server.api import api_doc
from tests.support.web import Browser, api_token


def test_healthz(browser: Browser) -> None:
    response = browser.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_metrics_are_for_admins_and_loopback_only(app: Starlette, browser: Browser) -> None:
    assert browser.get("/metrics").status_code == 403
    browser.login("admin")
    browser.get("/units")
    text = browser.get("/metrics").text
    assert 'giaoban_http_requests_total{method="GET",route="/units",status="200"}' in text
    assert "giaoban_http_request_duration_seconds_bucket" in text
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/metrics").status_code == 200
        # behind a reverse proxy, "loopback" means nothing
        assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403


def test_metrics_count_server_errors(app: Starlette) -> None:
    async def broken(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    app.router.routes.append(Route("/broken", broken))
    with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 1)) as client:
        page = client.get("/broken")
        assert page.status_code == 500
        assert "Lỗi máy chủ" in page.text  # a Vietnamese page, not a traceback
        assert "boom" not in page.text
        api = client.get("/broken", headers={"accept": "application/json"})
        assert api.json()["error"]["code"] == "internal"
        # /broken was added after the app was built, so it has no route label of its own
        assert 'giaoban_http_errors_total{route="unmatched"} 2.0' in client.get("/metrics").text


def test_openapi_describes_every_api_route(app: Starlette, browser: Browser) -> None:
    spec = browser.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    api_routes = [r for r in app.routes if isinstance(r, Route) and r.path.startswith("/api/") and r.path != "/api/openapi.json"]
    assert api_routes
    for route in api_routes:
        assert api_doc(route) is not None, f"{route.path} has no API description"
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in spec["paths"][route.path.replace(":int}", "}")], (route.path, method)
    token = spec["paths"]["/api/auth/token"]["post"]
    assert token["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/TokenRequest"
    assert "TokenRequest" in spec["components"]["schemas"]


def test_unknown_pages_are_vietnamese_404s_and_api_404s_are_json(browser: Browser) -> None:
    page = browser.get("/khong-co-trang-nay")
    assert page.status_code == 404 and "Không tìm thấy" in page.text
    api = browser.get("/api/khong-co")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_a_wrong_method_is_405_in_the_error_format(browser: Browser) -> None:
    response = browser.delete("/api/units", headers=api_token(browser, "thuky"))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_oversized_body_is_refused_before_it_is_read(browser: Browser, app: Starlette) -> None:
    limit = app.state.giaoban.settings.max_body_bytes
    big = b"x" * (limit + 1)
    api = browser.post("/api/auth/token", content=big, headers={"content-type": "application/json"})
    assert api.status_code == 413 and api.json()["error"]["code"] == "too_large"
    browser.login("admin")
    page = browser.submit("/admin/units/import", files={"file": ("u.csv", big, "text/csv")})
    assert page.status_code == 413 and "text/html" in page.headers["content-type"]


def test_a_streamed_oversized_body_without_length_is_refused(browser: Browser, app: Starlette) -> None:
    limit = app.state.giaoban.settings.max_body_bytes

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    response = browser.post("/api/auth/token", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_security_headers_on_every_page(browser: Browser) -> None:
    headers = browser.get("/login").headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


def test_the_language_switch_shows_english_and_back(browser: Browser) -> None:
    browser.login("thuky")
    english = browser.submit("/lang", {"locale": "en", "next": "/units"})
    assert '<html lang="en">' in english.text and "Search units" in english.text
    vietnamese = browser.submit("/lang", {"locale": "vi", "next": "/units"})
    assert '<html lang="vi">' in vietnamese.text and "Tìm kiếm đơn vị" in vietnamese.text


def test_api_errors_follow_the_language_too(browser: Browser) -> None:
    assert "đăng nhập" in browser.get("/api/units").json()["error"]["message"]
    browser.cookies.set("giaoban_lang", "en")
    assert "Log in" in browser.get("/api/units").json()["error"]["message"]


def test_the_administration_page_gathers_the_tools_for_admins_only(browser: Browser) -> None:
    browser.login("thuky")
    assert browser.get("/admin").status_code == 403
    assert 'href="/admin"' not in browser.get("/").text
    browser.submit("/logout")
    browser.login("admin")
    page = browser.get("/admin")
    assert page.status_code == 200
    for tool in ("/admin/users", "/admin/units/import", "/admin/units/reorganise", "/admin/holidays", "/admin/outbox", "/admin/replies", "/admin/audit"):
        assert f'href="{tool}"' in page.text


def test_home_leads_to_meetings_and_the_calendar_subscription(browser: Browser) -> None:
    page = browser.login("canbo.tanan").get("/")
    assert 'href="/meetings"' in page.text and 'href="/calendar/feeds"' in page.text
