"""The meeting room in a real headless Chromium (Debian's, fake camera and microphone): three
people join the same meeting and see and hear each other through the SFU."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser, Page

from tests.support.browser import logged_in, screenshot
from tests.support.live import Live

PEOPLE = ["thuky.ninhkieu", "canbo.tanan"]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what}")
        time.sleep(0.25)


def frames(page: Page) -> dict[str, int]:
    """Decoded video frames per participant, from the page's own getStats()."""
    found: dict[str, int] = {}
    for s in page.evaluate("window.giaobanRoom.inboundVideo()"):
        if s.get("participantId"):
            found[s["participantId"]] = found.get(s["participantId"], 0) + int(s.get("framesDecoded") or 0)
    return found


def you(page: Page) -> str:
    return str(page.evaluate("window.giaobanRoom.state.you.id"))


def join(page: Page, meeting_id: int) -> None:
    page.goto(f"/meetings/{meeting_id}/room")
    page.wait_for_selector("#prejoin")
    page.click("#join-button")
    page.wait_for_selector("#room", state="visible", timeout=20_000)


def playing(page: Page, others: list[str], what: str) -> None:
    """Each of ``others`` is seen with decoded frames rising."""
    try:
        first = wait_until(f"{what}: video from {others}", lambda: (f := frames(page)) and all(f.get(o, 0) > 0 for o in others) and f, 45)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the page has {page.evaluate('window.giaobanRoom.inboundVideo()')}") from None
    wait_until(f"{what}: frames rising", lambda: all(frames(page).get(o, 0) > first[o] + 5 for o in others))


def test_three_people_meet_in_the_browser(live: Live, chromium: Browser) -> None:
    meeting = live.meeting(users=PEOPLE)
    chair_ctx, chair = logged_in(chromium, live.base_url, "lanhdao")
    a_ctx, a = logged_in(chromium, live.base_url, "thuky.ninhkieu")
    b_ctx, b = logged_in(chromium, live.base_url, "canbo.tanan")
    try:
        chair.goto(f"/meetings/{meeting['id']}/room")
        chair.wait_for_selector("#prejoin")
        wait_until("the microphone level meter moves", lambda: chair.evaluate("document.querySelector('#mic-level').value") > 0)
        screenshot(chair, "prejoin")
        chair.click("#join-button")
        chair.wait_for_selector("#room", state="visible", timeout=20_000)
        join(a, meeting["id"])
        join(b, meeting["id"])
        ids = {name: you(p) for name, p in (("chair", chair), ("a", a), ("b", b))}
        playing(chair, [ids["a"], ids["b"]], "the chair")
        playing(a, [ids["chair"], ids["b"]], "participant a")
        playing(b, [ids["chair"], ids["a"]], "participant b")
        screenshot(chair, "room")

        # A mute shows in the others' participant list.
        b.click("#mute-button")
        wait_until("b shown muted to the chair", lambda: chair.get_attribute(f"#participants li[data-participant-id='{ids['b']}']", "data-muted") == "true")
        wait_until("b shown muted to a", lambda: a.get_attribute(f"#participants li[data-participant-id='{ids['b']}']", "data-muted") == "true")

        # A chat message arrives, as text.
        a.fill("#chat-input", "<b>Phường Tân An</b> đã sẵn sàng")
        a.click("#chat-send")
        wait_until("the chat message at b", lambda: "<b>Phường Tân An</b> đã sẵn sàng" in b.inner_text("#chat-log"))
        assert b.locator("#chat-log b").count() == 0

        # A screen share appears in the others' screen slot.
        a.click("#screen-button")
        wait_until("a's screen at the chair", lambda: any(
            s["slot"] == "screen" and s.get("participantId") == ids["a"] and (s.get("framesDecoded") or 0) > 3
            for s in chair.evaluate("window.giaobanRoom.inboundVideo()")))

        # A page reloaded mid-meeting joins again and sees the others.
        b.reload()
        b.wait_for_selector("#prejoin")
        b.click("#join-button")
        b.wait_for_selector("#room", state="visible", timeout=20_000)
        ids["b"] = you(b)
        playing(b, [ids["chair"], ids["a"]], "b after reloading")

        # The chair removes a participant.
        chair.once("dialog", lambda dialog: dialog.accept())
        chair.click(f"#participants li[data-participant-id='{ids['b']}'] .remove-participant")
        wait_until("b told it was removed", lambda: b.is_visible("#room-status") and "mời ra" in b.inner_text("body").lower() or
                   b.evaluate("window.giaobanRoom.state.connection") == "closed")
        wait_until("b gone from the chair's list", lambda: chair.locator(f"#participants li[data-participant-id='{ids['b']}']").count() == 0)
        screenshot(chair, "room-after-removal")
    finally:
        for ctx in (chair_ctx, a_ctx, b_ctx):
            ctx.close()


def test_a_ward_tests_its_line_through_the_sfu_before_a_meeting(live: Live, chromium: Browser) -> None:
    context, page = logged_in(chromium, live.base_url, "ct.ninh-kieu.tan-an")
    try:
        page.goto("/connection-test")
        page.click("#echo-start")
        verdict = wait_until("a verdict", lambda: page.get_attribute("#echo-verdict", "data-verdict"), 40)
        assert verdict in ("good", "fair", "poor")
        back = wait_until("my own video back through the SFU", lambda: [
            s for s in page.evaluate("window.giaobanEcho.inboundVideo()") if s["slot"] == "main" and (s.get("framesDecoded") or 0) > 10])
        assert back[0]["frameWidth"] > 0
        assert page.inner_text("#echo-rtt").strip() and page.inner_text("#echo-loss").strip()
        assert verdict == "good"  # loopback: no loss, a few milliseconds
        screenshot(page, "connection-test")
    finally:
        context.close()


HOSTILE_TITLE = '<!--<script> </script><img src=x onerror="window.pwned=1"> & Giao ban'


def test_a_title_written_to_break_the_page_does_not_stop_the_room(live: Live, chromium: Browser) -> None:
    """The page embeds the meeting's data in a ``<script type="application/json">`` element: a
    title that opens a comment and a script there (``<!--<script>``) once kept ``room.js`` from
    loading for everyone. Now the room opens, shows the title as text, and the media flows."""
    meeting = live.meeting(users=PEOPLE, title=HOSTILE_TITLE)
    chair_ctx, chair = logged_in(chromium, live.base_url, "lanhdao")
    ward_ctx, ward = logged_in(chromium, live.base_url, "canbo.tanan")
    try:
        join(chair, meeting["id"])
        join(ward, meeting["id"])
        assert chair.evaluate("JSON.parse(document.getElementById('room-config').textContent).meeting.title") == HOSTILE_TITLE
        assert HOSTILE_TITLE in chair.inner_text("body")
        assert chair.evaluate("window.pwned") is None and chair.locator("img[src=x]").count() == 0
        playing(ward, [you(chair)], "the ward, under a hostile title")
    finally:
        for ctx in (chair_ctx, ward_ctx):
            ctx.close()
