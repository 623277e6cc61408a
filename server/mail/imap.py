"""The reply reader: one task that reads the service mailbox over IMAP and applies the iMIP
REPLY mails officials' calendars send ("Accept" in Outlook or Zimbra), owned by
:class:`ReplyReader`.

Every ``interval`` seconds the task connects (the standard library's :mod:`imaplib`, in a
worker thread: the event loop never waits on the network), selects INBOX and takes at most
``batch`` UNSEEN mails, oldest first. Each mail is fetched without being marked read
(``BODY.PEEK[]``) and applied in its own transaction (``Database.run``). A mail that was
applied, or clearly refused (:class:`InvalidInput`: not a calendar reply, a foreign UID, a
sender who is not the attendee…), is then marked ``\\Seen``, so it is not read again. Any
other error (the database is down, a bug) leaves the mail unseen for the next pass.

What happened to the last mails is kept in memory (:attr:`ReplyReader.outcomes`) and logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import email
import imaplib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.policy import default as default_policy
from email.utils import parseaddr
from typing import Literal

from sqlmodel import Session

from server.db import Database, utcnow
from server.errors import InvalidInput
from server.mail import replies, rsvp
from server.mail.urls import ImapTarget
from server.tasks import stop_gracefully

log = logging.getLogger("giaoban.mail")

MAILBOX = "INBOX"


# --- what happened to each mail ---------------------------------------------------------------


@dataclass(frozen=True)
class ReplyOutcome:
    at: dt.datetime
    sender: str
    subject: str
    status: Literal["applied", "refused", "deferred"]  # deferred: left unseen for the next pass
    detail: str


# --- the IMAP side (blocking: always called through asyncio.to_thread) ---------------------------


class _Mailbox:
    def __init__(self, target: ImapTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.conn: imaplib.IMAP4 | None = None

    def open(self) -> list[bytes]:
        """Connect, log in, select INBOX; the UIDs of the unseen mails, oldest first."""
        t = self.target
        if t.tls:
            self.conn = imaplib.IMAP4_SSL(t.host, t.port, ssl_context=ssl.create_default_context(), timeout=self.timeout)
        else:
            self.conn = imaplib.IMAP4(t.host, t.port, timeout=self.timeout)
        self.conn.login(t.user, t.password)
        typ, _ = self.conn.select(MAILBOX)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"cannot select {MAILBOX}")
        typ, data = self.conn.uid("SEARCH", None, "UNSEEN")  # type: ignore[arg-type]
        if typ != "OK":
            raise imaplib.IMAP4.error("SEARCH UNSEEN failed")
        found = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted(found, key=int)

    def fetch(self, uid: bytes) -> bytes | None:
        assert self.conn is not None
        typ, data = self.conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"FETCH {uid!r} failed")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None  # expunged meanwhile

    def mark_seen(self, uid: bytes) -> None:
        assert self.conn is not None
        typ, _ = self.conn.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Seen)")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"STORE {uid!r} failed")

    def abort(self) -> None:
        """From the event loop, without blocking: cut the socket, so that a worker thread
        waiting on the server fails at once instead of at its timeout."""
        conn, self.conn = self.conn, None
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except Exception:  # the connection is gone anyway
            with contextlib.suppress(Exception):
                conn.shutdown()


def _headers(raw: bytes) -> tuple[str, str]:
    try:
        message = email.message_from_bytes(raw, policy=default_policy)
        return parseaddr(str(message.get("From", "")))[1], str(message.get("Subject", ""))[:200]
    except Exception:
        return "", ""


# --- the task ---------------------------------------------------------------------------------


class ReplyReader:
    def __init__(
        self,
        db: Database,
        target: ImapTarget,
        *,
        interval: float = 60.0,
        batch: int = 50,
        timeout: float = 30.0,
        notify: rsvp.DeputyNotifier | None = None,
        applied: Callable[[], None] | None = None,  # e.g. the outbox sender's wake(): a deputy was invited
        keep: int = 100,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.target = target
        self.interval = interval
        self.batch = batch
        self.timeout = timeout
        self.notify = notify
        self.applied = applied
        self.clock = clock
        self.outcomes: collections.deque[ReplyOutcome] = collections.deque(maxlen=keep)  # newest last
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the task (in the running loop, from the app's lifespan)."""
        if self._task is not None:
            raise RuntimeError("the reply reader is already running")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="reply-reader")

    async def close(self, grace: float = 5.0) -> None:
        """Stop: let the mail being applied finish for up to ``grace`` seconds, then cancel the
        task and await it. (A worker thread blocked on the network ends at its socket timeout.)"""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        await stop_gracefully(task, grace, log, "the reply reader")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:  # the IMAP server is down, the password is wrong…
                log.warning("the reply reader could not read %r: %s; trying again in %s s", self.target, exc, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)

    # --- one pass ----------------------------------------------------------------------------

    async def poll_once(self) -> list[ReplyOutcome]:
        """Read the unseen mails once (at most ``batch``); what happened to each. IMAP errors
        are raised (nothing is lost: what was not marked seen is read again next time)."""
        box = _Mailbox(self.target, self.timeout)
        outcomes: list[ReplyOutcome] = []
        try:
            uids = await asyncio.to_thread(box.open)
            for uid in uids[: self.batch]:
                if self._stop.is_set():
                    break
                raw = await asyncio.to_thread(box.fetch, uid)
                if raw is None:
                    continue
                outcome = await self._apply(raw)
                if outcome.status != "deferred":
                    await asyncio.to_thread(box.mark_seen, uid)
                outcomes.append(outcome)
        except asyncio.CancelledError:
            box.abort()  # closing: nothing half-done is lost, the mail stays unseen
            raise
        finally:
            if box.conn is not None:
                await asyncio.to_thread(box.close)
        return outcomes

    async def _apply(self, raw: bytes) -> ReplyOutcome:
        sender, subject = _headers(raw)
        try:
            result = await self.db.run(self._apply_in, raw)
        except InvalidInput as exc:
            outcome = ReplyOutcome(self.clock(), sender, subject, "refused", str(exc.message))
            log.info("calendar reply from %s refused: %s", sender or "(no sender)", outcome.detail)
        except Exception as exc:
            outcome = ReplyOutcome(self.clock(), sender, subject, "deferred", f"{type(exc).__name__}: {exc}")
            log.warning("calendar reply from %s not applied, kept for the next pass", sender or "(no sender)", exc_info=True)
        else:
            detail = f"{result.participant_name}: {result.response} — {result.meeting_title} (#{result.meeting_id})"
            outcome = ReplyOutcome(self.clock(), sender, subject, "applied", detail)
            log.info("calendar reply from %s applied: %s", sender, detail)
            if result.deputy_added and self.applied is not None:
                self.applied()
        self.outcomes.append(outcome)
        return outcome

    def _apply_in(self, session: Session, raw: bytes) -> replies.ReplyResult:
        return replies.apply_reply_mail(session, raw, notify=self.notify)

