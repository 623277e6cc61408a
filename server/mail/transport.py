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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

FailureKind = Literal["permanent", "transient", "unavailable"]
Security = Literal["plain", "starttls", "tls"]
SCHEMES: dict[str, tuple[Security, int]] = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


class DeliveryError(Exception):
    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


class InvalidSmtpUrl(ValueError):
    """``GIAOBAN_SMTP_URL`` cannot be used; the message says why (never the password)."""


class Transport(Protocol):
    async def send(self, *, sender: str, recipient: str, message_id: str, data: bytes) -> None:
        """Deliver one message to one recipient, or raise :class:`DeliveryError`."""

    async def release(self) -> None:
        """Let go of any open connection (the queue is empty for now, or the sender stops)."""

    def describe(self) -> str:
        """Where mail goes, for logs (no secret in it)."""


# --- the URL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    security: Security
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 60.0
    helo: str = ""

    def describe(self) -> str:
        scheme = next(name for name, (security, _port) in SCHEMES.items() if security == self.security)
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read ``GIAOBAN_SMTP_URL``; :class:`InvalidSmtpUrl` tells what is wrong with it."""
    hint = "expected smtp://host:port, smtp+starttls://user:password@host:587 or smtps://user:password@host:465"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # a port that is not a number, a malformed IPv6 host
        raise InvalidSmtpUrl(f"GIAOBAN_SMTP_URL is not a valid URL ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidSmtpUrl(f"GIAOBAN_SMTP_URL has the scheme {scheme + '://' if scheme else 'nothing'}; {hint}")
    security, default_port = SCHEMES[scheme]
    host = parts.hostname or ""
    if not host:
        raise InvalidSmtpUrl(f"GIAOBAN_SMTP_URL names no host; {hint}")
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidSmtpUrl(f"GIAOBAN_SMTP_URL has a path or fragment an SMTP server cannot use; {hint}")
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if password and not username:
        raise InvalidSmtpUrl("GIAOBAN_SMTP_URL has a password but no user name")
    if username and security == "plain":
        raise InvalidSmtpUrl(
            "GIAOBAN_SMTP_URL sends a user name and password without encryption: "
            "use smtp+starttls:// (port 587) or smtps:// (port 465)"
        )
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - {"timeout", "helo"})
    if unknown:
        raise InvalidSmtpUrl(f"GIAOBAN_SMTP_URL has unknown parameters: {', '.join(unknown)} (known: timeout, helo)")
    timeout = 60.0
    if "timeout" in query:
        try:
            timeout = float(query["timeout"][-1])
        except ValueError:
            raise InvalidSmtpUrl("GIAOBAN_SMTP_URL: timeout must be a number of seconds") from None
        if not 0 < timeout <= 600:
            raise InvalidSmtpUrl("GIAOBAN_SMTP_URL: timeout must be between 0 and 600 seconds")
    helo = query.get("helo", [""])[-1]
    if port is not None and not 0 < port < 65536:
        raise InvalidSmtpUrl("GIAOBAN_SMTP_URL: the port must be between 1 and 65535")
    return SmtpConfig(security=security, host=host, port=port or default_port, username=username, password=password,
                      timeout=timeout, helo=helo)


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
