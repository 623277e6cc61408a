"""Failed-login throttling per client address (the per-account lock lives in the database)."""

from __future__ import annotations

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class LoginThrottle:
    """At most ``failures`` failed logins per address in ``minutes`` minutes."""

    def __init__(self, failures: int = 20, minutes: int = 15) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._item = RateLimitItemPerMinute(failures, minutes)

    def allowed(self, address: str) -> bool:
        return self._limiter.test(self._item, "login", address)

    def failed(self, address: str) -> None:
        self._limiter.hit(self._item, "login", address)

    def retry_after(self, address: str) -> int:
        reset_at, _ = self._limiter.get_window_stats(self._item, "login", address)
        import time

        return max(1, int(reset_at - time.time()))
