"""How often and how late the outbox tries a mail again: the one place the defaults live
(``GIAOBAN_MAIL_MAX_ATTEMPTS`` defaults to ``RetryPolicy.max_attempts``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts: ``base × 2^(attempts − 1)``, at most ``cap``."""

    max_attempts: int = 12
    base: dt.timedelta = dt.timedelta(seconds=30)
    cap: dt.timedelta = dt.timedelta(hours=1)

    def delay(self, attempts: int) -> dt.timedelta:
        factor = 1 << min(max(attempts - 1, 0), 30)  # 2^(attempts − 1), bounded for absurd counts
        return min(self.base * factor, self.cap)


DEFAULT_POLICY = RetryPolicy()
