"""The mail servers' URLs: ``GIAOBAN_SMTP_URL`` (where invitations go) and ``GIAOBAN_IMAP_URL``
(the service mailbox the reply reader reads). Each parser raises a ValueError that says what
is wrong and never shows the password; the settings check both at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Security = Literal["plain", "starttls", "tls"]
SCHEMES: dict[str, tuple[Security, int]] = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


class InvalidSmtpUrl(ValueError):
    """``GIAOBAN_SMTP_URL`` cannot be used; the message says why (never the password)."""


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


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    tls: bool  # imaps: TLS from the first byte

    def __repr__(self) -> str:  # never the password
        scheme = "imaps" if self.tls else "imap"
        return f"ImapTarget({scheme}://{self.user}@{self.host}:{self.port})"


def parse_imap_url(url: str) -> ImapTarget:
    """``imap://user:password@host:143`` or ``imaps://user:password@host:993``, the user and
    password URL-encoded (``@`` as ``%40``). A ValueError says what is wrong, never the password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("the IMAP URL is not readable (expected imaps://user:password@host:993)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ValueError(f"the IMAP URL must start with imap:// or imaps://, not {scheme or '(nothing)'}://")
    if not parts.hostname:
        raise ValueError("the IMAP URL names no host")
    if not parts.username or parts.password is None:
        raise ValueError("the IMAP URL needs a user and a password: imaps://user:password@host:993")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the IMAP URL has nothing after the host and port (the mailbox is always INBOX)")
    tls = scheme == "imaps"
    return ImapTarget(host=parts.hostname, port=port or (993 if tls else 143), user=unquote(parts.username),
                      password=unquote(parts.password), tls=tls)
