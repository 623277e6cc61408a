"""Failed logins are throttled per username and address together, with growing delays, and per
address across usernames; a guesser never locks the owner out, and an unknown name is answered
exactly as a known one (server/ratelimit.py, server/auth.py ``attempt_login``)."""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from tests.support.web import DEMO_PASSWORD, Browser

ATTACKER = ("203.0.113.66", 40000)
OWNER = ("198.51.100.7", 40001)


def client(app: Starlette, address: tuple[str, int]) -> Browser:
    return Browser(app, raise_server_exceptions=False, client=address)


def guess(api: Browser, username: str, password: str = "wrong-password") -> httpx.Response:
    return api.post("/api/auth/token", json={"username": username, "password": password})


def test_a_guesser_is_slowed_ever_more_while_the_owner_logs_in_from_elsewhere(app: Starlette) -> None:
    attacker = client(app, ATTACKER)
    answers = [guess(attacker, "lanhdao") for _ in range(20)]
    statuses = [a.status_code for a in answers]
    # The first few failures are free; then the pair waits, and is not even checked meanwhile.
    assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}, statuses
    assert answers[4].headers["retry-after"] == "1"
    assert answers[4].json()["error"]["code"] == "too_many_requests"
    delays = [int(answers[4].headers["retry-after"])]
    for _ in range(2):  # wait each delay out, fail once more: the next delay is twice as long
        time.sleep(delays[-1] + 0.1)
        assert guess(attacker, "lanhdao").status_code == 401
        throttled = guess(attacker, "lanhdao")
        assert throttled.status_code == 429
        delays.append(int(throttled.headers["retry-after"]))
    assert delays == [1, 2, 4]
    # While the delay runs even the right password is not checked from the attacker's address…
    assert guess(attacker, "lanhdao", DEMO_PASSWORD).status_code == 429
    # …but the chair, from an address that has not failed, logs in at once, page and API.
    client(app, OWNER).login("lanhdao")
    assert guess(client(app, OWNER), "lanhdao", DEMO_PASSWORD).status_code == 200
    # The guesser's other usernames are not slowed by lanhdao's delay.
    assert guess(attacker, "thuky", DEMO_PASSWORD).status_code == 200


def test_the_page_answers_429_with_the_wait(app: Starlette) -> None:
    attacker = client(app, ATTACKER)
    pages = [
        attacker.post("/login", data={"username": "lanhdao", "password": "sai", "csrf_token": attacker.csrf()})
        for _ in range(4)
    ]
    assert [p.status_code for p in pages] == [401, 401, 401, 429]
    assert "Vui lòng thử lại sau 1 giây" in pages[3].text and pages[3].headers["retry-after"] == "1"


def test_unknown_and_known_accounts_get_byte_identical_answers(app: Starlette) -> None:
    api = client(app, ATTACKER)
    for _ in range(4):  # three failures each, then both wait
        known, unknown = guess(api, "lanhdao"), guess(api, "khong-co-ai")
        assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
        assert known.headers.get("retry-after") == unknown.headers.get("retry-after")
    assert known.status_code == 429
    page = client(app, ("203.0.113.67", 40000))
    for _ in range(4):
        token = page.csrf()
        known = page.post("/login", data={"username": "lanhdao", "password": "sai", "csrf_token": token})
        unknown = page.post("/login", data={"username": "khong-co-ai", "password": "sai", "csrf_token": token})
        assert known.status_code == unknown.status_code
        # The form gives back what was typed; everything else is the same, byte for byte.
        assert known.content.replace(b"lanhdao", b"NAME") == unknown.content.replace(b"khong-co-ai", b"NAME")
    assert known.status_code == 429


def test_one_address_has_a_budget_of_failures_across_usernames(settings: Settings) -> None:
    budget = 6  # 20 by default (GIAOBAN_LOGIN_ADDRESS_FAILURES); fewer here, each failure hashes
    app = create_app(settings.model_copy(update={"login_address_failures": budget}))
    sprayer = client(app, ATTACKER)
    assert all(guess(sprayer, f"nobody{n}").status_code == 401 for n in range(budget))
    refused = guess(sprayer, "thuky", DEMO_PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60
    assert "từ địa chỉ này" in refused.json()["error"]["message"]
    assert guess(client(app, OWNER), "thuky", DEMO_PASSWORD).status_code == 200
    app.state.giaoban.db.dispose()


def test_the_right_password_starts_the_pair_afresh(app: Starlette) -> None:
    api = client(app, ATTACKER)
    for _ in range(2):
        assert guess(api, "thuky").status_code == 401
    assert guess(api, "thuky", DEMO_PASSWORD).status_code == 200
    assert [guess(api, "thuky").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_hashing_never_blocks_the_event_loop(app: Starlette) -> None:
    """Ten logins hash their passwords (Argon2, tens of ms each) while /healthz answers at once."""

    async def scenario() -> tuple[float, list[float]]:
        transport = httpx.ASGITransport(app=app, client=OWNER)
        async with httpx.AsyncClient(transport=transport, base_url="http://giaoban.test") as http:
            started = time.perf_counter()

            async def login() -> float:
                response = await http.post("/api/auth/token", json={"username": "thuky", "password": DEMO_PASSWORD})
                assert response.status_code == 200
                return time.perf_counter() - started

            logins = [asyncio.ensure_future(login()) for _ in range(10)]
            await asyncio.sleep(0.005)  # the logins are under way
            asked = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            health = time.perf_counter() - started
            assert time.perf_counter() - asked < 1
            return health, list(await asyncio.gather(*logins))

    health, logins = asyncio.run(scenario())
    assert health < min(logins), (health, sorted(logins))
