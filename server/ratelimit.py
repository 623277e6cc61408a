"""Failed-login throttling that cannot lock the rightful owner out (OWASP's Authentication Cheat
Sheet, "Login Throttling"): failures are counted per account *and* address together, and past a
few free ones each further attempt from that pair waits longer (1 s, 2 s, 4 s… up to a cap);
a correct password from an address that has not failed is never slowed. Beside it, each address
has a budget of failures across every username (a password sprayer's limit).

The counters live in a ``limits`` storage passed in (in memory for one process; a Redis storage
shares them between processes). Nothing here looks at whether the account exists: a name that
does not exist is counted, delayed and answered exactly as one that does.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class ThrottlePolicy:
    address_failures: int = 20  # failed logins an address may make, whatever the usernames…
    address_minutes: int = 15  # …in this moving window
    free_failures: int = 3  # failures of one username from one address before the next attempt waits
    first_delay: int = 1  # seconds; doubles with each further failure…
    max_delay: int = 15 * 60  # …up to this
    memory: int = 24 * 3600  # seconds a pair's failures are remembered after its first one


@dataclass(frozen=True)
class Wait:
    seconds: int  # 0: go ahead
    address: bool = False  # the address's own budget is spent (not only this username's delay)


class LoginThrottle:
    def __init__(self, storage: Storage | None = None, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._storage = storage or MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._address_item = RateLimitItemPerMinute(self.policy.address_failures, self.policy.address_minutes)

    @staticmethod
    def _pair(username: str, address: str) -> str:
        # Hashed: the name is whatever a client typed, of any length.
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return f"giaoban-login/{address}/{name}"

    def wait(self, username: str, address: str) -> Wait:
        """How long an attempt by ``username`` from ``address`` must wait before its password is
        even checked (``Wait(0)``: check it now)."""
        if not self._limiter.test(self._address_item, "giaoban-login-address", address):
            reset_at, _ = self._limiter.get_window_stats(self._address_item, "giaoban-login-address", address)
            return Wait(max(1, math.ceil(reset_at - time.time())), address=True)
        delay_key = self._pair(username, address) + "/delay"
        if self._storage.get(delay_key) > 0:
            return Wait(max(1, math.ceil(self._storage.get_expiry(delay_key) - time.time())))
        return Wait(0)

    def failed(self, username: str, address: str) -> int:
        """Count a failed attempt; answer the delay it starts for the pair (0: none yet)."""
        self._limiter.hit(self._address_item, "giaoban-login-address", address)
        pair = self._pair(username, address)
        failures = self._storage.incr(pair + "/failures", self.policy.memory)
        beyond = failures - self.policy.free_failures
        if beyond < 0:
            return 0
        delay = min(self.policy.max_delay, self.policy.first_delay << min(beyond, 30))
        self._storage.clear(pair + "/delay")
        self._storage.incr(pair + "/delay", delay)
        return delay

    def succeeded(self, username: str, address: str) -> None:
        """The right password: this pair starts afresh (the address's budget is kept)."""
        pair = self._pair(username, address)
        self._storage.clear(pair + "/failures")
        self._storage.clear(pair + "/delay")
