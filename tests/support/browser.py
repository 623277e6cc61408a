"""Debian's Chromium, headless, with a fake camera and microphone, driven by Playwright's
Python client (its own browser download is never used). Each person is a browser context
logged in through the real login form of a live server (``tests.support.live``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.web import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-gpu", "--no-first-run", "--auto-select-desktop-capture-source=Entire screen",
    # Host candidates as addresses, not mDNS names: the SFU keeps only those in 127.0.0.0/8
    # (GIAOBAN_MEDIA_REMOTE_NETWORKS in tests) and offers only 127.0.0.1.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread, and the
    # suite's asyncio.run() tests after the browser tests need it gone.
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield browser
    browser.close()


def logged_in(browser: Browser, base_url: str, username: str, locale: str = "vi") -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url, locale=locale, permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))
    return context, page


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
