"""Where mail goes: an SMTP server (``aiosmtplib``), or ``.eml`` files when none is configured.

One URL configures SMTP (``GIAOBAN_SMTP_URL``)::

    smtp://relay.cantho.gov.vn:25                          plain, no credentials (an internal relay, tests)
    smtp+starttls://user:p%40ss@mail.cantho.gov.vn:587     STARTTLS required, then AUTH
    smtps://user:p%40ss@mail.cantho.gov.vn:465             implicit TLS (RFC 8314), then AUTH

Credentials are URL-encoded and refused on plain ``smtp://`` (they would cross the network
in clear). Optional query parameters: ``timeout`` (seconds, default 60) and ``helo`` (the
name given in EHLO). Every failure is raised as :class:`DeliveryError` of one of three kinds,
which the sender treats differently:

- ``permanent``: the server refused this mail for good (5xx to RCPT or DATA): it goes dead;
- ``transient``: refused for now (4xx): retried with backoff, counted as an attempt;
- ``unavailable``: the server could not be reached or refused *us* (connection, TLS, login,
  sender address): says nothing about the mail, so it waits without losing an attempt.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import uuid
from pathlib import Path
from typing import Literal, Protocol, Self

import aiosmtplib

from server.mail.urls import SmtpConfig, parse_smtp_url

FailureKind = Literal["permanent", "transient", "unavailable"]


class DeliveryError(Exception):
    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


class Transport(Protocol):
    async def send(self, *, sender: str, recipient: str, message_id: str, data: bytes) -> None:
        """Deliver one message to one recipient, or raise :class:`DeliveryError`."""

    async def release(self) -> None:
        """Let go of any open connection (the queue is empty for now, or the sender stops)."""

    def describe(self) -> str:
        """Where mail goes, for logs (no secret in it)."""


# --- SMTP -----------------------------------------------------------------------------------


class SmtpTransport:
    """Delivers over one SMTP connection, kept open across a burst of mail and reopened after
    any error (a failed transaction can leave the session in a state not worth repairing)."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._tls_context = tls_context  # None: the system's trusted certificates
        self._client: aiosmtplib.SMTP | None = None

    @classmethod
    def from_url(cls, url: str, *, tls_context: ssl.SSLContext | None = None) -> Self:
        return cls(parse_smtp_url(url), tls_context=tls_context)

    def describe(self) -> str:
        return self.config.describe()

    async def send(self, *, sender: str, recipient: str, message_id: str, data: bytes) -> None:
        try:
            client = await self._connected()
            await client.sendmail(sender, [recipient], data)
        except BaseException as exc:
            self._drop()
            if isinstance(exc, Exception):
                raise classify(exc) from exc
            raise  # cancelled: the sender is stopping

    async def release(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password or None,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",  # required when asked, never opportunistic on smtp://
            tls_context=self._tls_context,
            timeout=config.timeout,
            local_hostname=config.helo or None,
        )
        await client.connect()
        self._client = client
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def classify(exc: Exception) -> DeliveryError:
    """An ``aiosmtplib`` (or socket) error as one of the three kinds the sender knows."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        text = "; ".join(_reply(r.code, r.message) for r in refusals) or "recipient refused"
        permanent = bool(refusals) and all(500 <= r.code < 600 for r in refusals)
        return DeliveryError(f"recipient refused: {text}", "permanent" if permanent else "transient")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return DeliveryError(f"recipient refused: {_reply(exc.code, exc.message)}", "permanent" if exc.code >= 500 else "transient")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return DeliveryError(f"the server refused the sender address {exc.sender}: {_reply(exc.code, exc.message)}", "unavailable")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"login refused: {_reply(exc.code, exc.message)}", "unavailable")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return DeliveryError(f"cannot reach the SMTP server: {exc}", "unavailable")
    if isinstance(exc, (aiosmtplib.SMTPHeloError, aiosmtplib.SMTPNotSupported)):
        return DeliveryError(f"cannot talk to the SMTP server: {exc}", "unavailable")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if exc.code == 421:  # "service not available, closing channel"
            return DeliveryError(f"the SMTP server is closing: {_reply(exc.code, exc.message)}", "unavailable")
        kind: FailureKind = "permanent" if 500 <= exc.code < 600 else "transient"
        return DeliveryError(f"refused: {_reply(exc.code, exc.message)}", kind)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)):  # disconnects, timeouts, TLS, refused
        return DeliveryError(f"cannot reach the SMTP server: {exc.__class__.__name__}: {exc}", "unavailable")
    if isinstance(exc, ValueError):  # an address aiosmtplib will not put on the wire
        return DeliveryError(f"unusable address: {exc}", "permanent")
    return DeliveryError(f"{exc.__class__.__name__}: {exc}", "transient")


# --- files ----------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class FileTransport:
    """Writes each message to ``{directory}/{message-id}.eml`` (what ``make run`` does when no
    SMTP server is configured). Atomic: written to a temporary file, then renamed, so a
    reader never sees half a message; sending the same message again replaces the file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"files in {self.directory}"

    def path_for(self, message_id: str) -> Path:
        name = _UNSAFE.sub("_", message_id.strip().strip("<>")) or "message"
        return self.directory / f"{name}.eml"

    async def send(self, *, sender: str, recipient: str, message_id: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, self.path_for(message_id), data)
        except OSError as exc:
            raise DeliveryError(f"cannot write the message: {exc}", "unavailable") from exc

    async def release(self) -> None:
        return None

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def make_transport(smtp_url: str, outbox_dir: Path) -> Transport:
    """SMTP when ``smtp_url`` is set, otherwise files under ``outbox_dir``."""
    return SmtpTransport.from_url(smtp_url) if smtp_url.strip() else FileTransport(outbox_dir)
