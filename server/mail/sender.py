"""The outbox sender: one task that delivers due mail, owned by :class:`OutboxSender`.

Each mail goes through three short transactions, none held open across the network:
claim it (``pending`` → ``sending``, compare-and-set, committed), hand it to the
transport, then mark it ``sent`` or failed. A second process running a sender on the same
database cannot claim the same mail; a process that dies mid-way leaves its mail
``sending``, and the next pass of any sender gives it back once the claim is older than
``claim_timeout`` (well beyond the SMTP timeout, so a live but slow sender keeps its claim).

The task sleeps until the next mail falls due, for at most ``poll_interval`` (mail enqueued
by another process is noticed that late at worst), or until :meth:`OutboxSender.wake`.
When the SMTP server cannot be reached the sender backs off as a whole, without counting
the attempt against any mail: an outage delays mail, it does not kill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from email.utils import parseaddr

from server.db import Database, utcnow
from server.mail import outbox
from server.mail.outbox import Envelope
from server.mail.retry import DEFAULT_POLICY, RetryPolicy
from server.mail.transport import DeliveryError, Transport, classify
from server.tasks import stop_gracefully

log = logging.getLogger("giaoban.mail")


class OutboxSender:
    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        envelope_from: str,
        policy: RetryPolicy = DEFAULT_POLICY,
        poll_interval: float = 30.0,
        claim_timeout: dt.timedelta = dt.timedelta(minutes=10),
        unavailable_cap: dt.timedelta = dt.timedelta(minutes=5),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.transport = transport
        # MAIL FROM, where bounces go: the service mailbox's bare address ("Name <a@b>" → "a@b").
        self.envelope_from = parseaddr(envelope_from)[1] or envelope_from
        self.policy = policy
        self.poll_interval = poll_interval
        self.claim_timeout = claim_timeout
        self.unavailable_cap = unavailable_cap  # the longest wait while the server is down
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._outage = 0  # consecutive passes that found the server unreachable
        self._resume_at: dt.datetime | None = None  # no delivery before this (the server was down)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the task (in the running loop, from the app's lifespan)."""
        if self._task is not None:
            raise RuntimeError("the outbox sender is already running")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def close(self, grace: float = 5.0) -> None:
        """Stop: let the mail being sent finish for up to ``grace`` seconds (stopping between
        two mails leaves nothing half-done), then cancel the task and await it."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wakeup.set()
            await stop_gracefully(task, grace, log, "the outbox sender")
        await self.transport.release()

    def wake(self) -> None:
        """Mail was just enqueued (and committed): look now rather than at the next poll.

        Safe to call from a worker thread (a service running under ``Database.run``)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wakeup.set()
        else:
            loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, not before the sleep: a wake() during the pass is kept.
            self._wakeup.clear()
            try:
                await self.run_once()
                delay = await self._seconds_to_next()
            except Exception:  # the database is busy or down: log, wait, try again
                log.exception("the outbox sender failed a pass; retrying in %s s", self.poll_interval)
                delay = self.poll_interval
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)

    async def _seconds_to_next(self) -> float:
        """Until the next mail falls due (or the outage pause ends), at most ``poll_interval``."""
        now = self.clock()
        due = await self.db.run(outbox.next_due_at)
        wait = self.poll_interval if due is None else (due - now).total_seconds()
        if self._resume_at is not None:
            wait = max(wait, (self._resume_at - now).total_seconds())
        return min(max(wait, 0.0), self.poll_interval)

    async def run_once(self) -> int:
        """Give back stale claims, then deliver every mail due now, one at a time, until none
        is due, the server is unreachable, or the sender is stopping. Returns how many mails
        were tried (delivered or not)."""
        if self._resume_at is not None and self.clock() < self._resume_at:
            return 0  # the server was unreachable a moment ago: wait out the pause
        await self.db.run(outbox.release_stale, self.clock(), self.claim_timeout, self.policy)
        tried = 0
        try:
            while not self._stopping:
                envelope = await self.db.run(outbox.claim_next, self.clock())
                if envelope is None:
                    break
                tried += 1
                if not await self._deliver(envelope):
                    break  # unreachable: the rest waits for the outage backoff
        finally:
            if not self._stopping:
                await self.transport.release()  # idle now: do not hold the SMTP connection
        return tried

    async def _deliver(self, envelope: Envelope) -> bool:
        """Send one claimed mail and record the outcome; False when the server was unreachable."""
        try:
            await self.transport.send(
                sender=self.envelope_from, recipient=envelope.recipient, message_id=envelope.message_id, data=envelope.data
            )
        except asyncio.CancelledError:
            raise  # the claim stays: release_stale gives it back after claim_timeout
        except Exception as exc:
            failure = classify(exc) if not isinstance(exc, DeliveryError) else exc
            return await self._record_failure(envelope, failure)
        self._outage, self._resume_at = 0, None
        held = await self.db.run(outbox.mark_sent, envelope.id, self.clock(), claimed_at=envelope.claimed_at)
        if not held:
            log.warning("mail %s was delivered after its claim had been given back", envelope.message_id)
        return True

    async def _record_failure(self, envelope: Envelope, failure: DeliveryError) -> bool:
        now = self.clock()
        if failure.kind == "unavailable":
            self._outage += 1
            wait = min(self.policy.delay(self._outage), self.unavailable_cap)
            self._resume_at = now + wait
            log.warning("SMTP unavailable (%s); trying again in %s", failure, wait)
            await self.db.run(outbox.postpone, envelope.id, error=str(failure), until=now + wait, claimed_at=envelope.claimed_at)
            return False
        state = await self.db.run(
            outbox.mark_failed, envelope.id, error=str(failure), permanent=failure.kind == "permanent", now=now,
            policy=self.policy, claimed_at=envelope.claimed_at,
        )
        log.warning("mail %s to %s failed (%s): now %s", envelope.message_id, envelope.recipient, failure, state or "not ours")
        return True
