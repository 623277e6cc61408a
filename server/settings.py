"""Every setting of the service, read once from ``GIAOBAN_*`` environment variables.

Demo mode (``GIAOBAN_DEMO=1``, what ``make run`` sets) needs no setup so that a newcomer can
try the product: without ``GIAOBAN_SECRET_KEY`` it signs with a random key made on first start
and kept in ``{var_dir}/demo-secret-key``, and it listens on loopback only unless
``GIAOBAN_DEMO_PUBLIC=1``. Outside demo mode unsafe settings stop the start.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from media.config import MediaConfig
from server.mail.retry import RetryPolicy
from server.mail.urls import parse_imap_url, parse_smtp_url
from server.ratelimit import ThrottlePolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEMO_PASSWORD = "giaoban-demo"
DEMO_KEY_FILE = "demo-secret-key"


def _split(value: str) -> tuple[str, ...]:
    """A comma-separated setting's items."""
    return tuple(p.strip() for p in value.split(",") if p.strip())


class UnsafeSettings(Exception):
    """Raised when the settings would run a production service insecurely."""


def demo_secret_key(var_dir: Path) -> tuple[str, bool]:
    """The demo's signing key, made on first use and kept in ``var_dir`` (mode 0600); answers
    the key and whether it was made now. Two processes starting at once get the same key: the
    key is written whole to a private file first, then linked into place, which fails for all
    but one of them; the others read the winner's file."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / DEMO_KEY_FILE
    created = False
    if not path.exists():
        draft = var_dir / f".{DEMO_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            os.link(draft, path)
            created = True
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key) < 32:
        raise UnsafeSettings(f"{path} holds no usable key: delete it and start again (a new one is made)")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return key, created


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIAOBAN_", extra="ignore")

    demo: bool = False
    demo_public: bool = False  # demo mode may listen on a non-loopback address (anyone reaching it can log in)
    database_url: str = ""  # empty: SQLite at {var_dir}/giaoban.db
    secret_key: str = ""
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    demo_password: str = DEFAULT_DEMO_PASSWORD
    var_dir: Path = PROJECT_ROOT / "var"
    default_locale: str = "vi"
    session_max_age: int = Field(default=12 * 3600, ge=60)
    token_max_age: int = Field(default=12 * 3600, ge=60)
    # Idle timeouts (docs/security.md): a session unused this long ends before its max age. 4 h
    # for browsers: a room page makes no request during a half-day meeting, and a reconnecting
    # socket must still find its session; a PC left logged in overnight is still cut off.
    session_idle_seconds: int = Field(default=4 * 3600, ge=60)
    token_idle_seconds: int = Field(default=2 * 3600, ge=60)  # scripts use a token at once, then drop it
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Failed logins (server/ratelimit.py): per address and username together, delays that
    # double from 1 s after a few free failures, up to a cap; and a budget per address.
    login_free_failures: int = Field(default=ThrottlePolicy.free_failures, ge=1)
    login_max_delay: int = Field(default=ThrottlePolicy.max_delay, ge=1, le=24 * 3600)
    login_address_failures: int = Field(default=ThrottlePolicy.address_failures, ge=1)
    login_address_minutes: int = Field(default=ThrottlePolicy.address_minutes, ge=1, le=24 * 60)
    # Slow clients: a request's line and headers must arrive within this many seconds
    # (uvicorn has no such limit of its own; server/httpserver.py).
    header_timeout: float = Field(default=10, gt=0, le=300)
    trusted_proxies: str = ""  # reverse proxies whose X-Forwarded-For names the client (addresses or CIDR, comma-separated)
    mail_from: str = "Giao Ban <giaoban@cantho.gov.vn.test>"  # ORGANIZER of invitations; replies come back here
    smtp_url: SecretStr = SecretStr("")  # empty: .eml files in {var_dir}/outbox
    mail_max_attempts: int = Field(default=RetryPolicy.max_attempts, ge=1)
    mail_sender: bool = True  # run the outbox sender in this process (one per deployment is enough)
    imap_url: SecretStr = SecretStr("")  # the service mailbox, where calendar replies arrive; empty: not read
    imap_interval: int = Field(default=60, ge=1)  # seconds between two readings of the mailbox
    max_endpoints: int = Field(default=150, ge=1)  # what the media plane carries at once
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Meeting rooms and signalling (docs/signalling.md)
    room_opens_before: int = Field(default=60, ge=0, le=24 * 60)  # minutes before an occurrence's start
    room_closes_after: int = Field(default=120, ge=0, le=24 * 60)  # minutes after its scheduled end
    signal_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)  # one signalling message
    signal_rate: int = Field(default=20, ge=1)  # messages a second per connection (bursts of twice that)
    heartbeat: int = Field(default=15, ge=1)  # seconds; a connection silent for 3 of them is closed
    # The media plane (media/, SFU worker processes)
    sfu_workers: int = Field(default=1, ge=1, le=64)
    sfu_room_spread: int = Field(default=100, ge=0, le=10_000)  # a room's participants per worker before it spreads (0: never)
    sfu_video_codec: str = "VP8"  # VP8 | H264: what every publisher and subscriber uses
    media_addresses: str = ""  # local addresses offered as ICE candidates, comma-separated; empty: every non-loopback one
    media_announced_address: str = ""  # public address put in their place (1:1 NAT)
    media_remote_networks: str = ""  # accept client candidates only from these networks (CIDR, comma-separated)
    # One UDP port per SFU worker (ICE-lite, docs/media-ports.md): worker i uses this + i; 0: each a free port;
    # -1 or empty: off, every peer connection its own ephemeral port
    media_udp_port: int = Field(default=-1, ge=-1, le=65535)
    ice_servers: str = ""  # JSON list of RTCIceServer for browsers, e.g. [{"urls": "turn:turn.cantho.gov.vn", ...}]

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("vi", "en"):
            raise ValueError("must be 'vi' or 'en'")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _readable_smtp_url(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip():
            parse_smtp_url(value.get_secret_value())  # a clear ValueError, never showing the password
        return value

    @field_validator("imap_url")
    @classmethod
    def _readable_imap_url(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip():
            parse_imap_url(value.get_secret_value())  # a clear ValueError, never showing the password
        return value

    @field_validator("sfu_video_codec")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value.upper() not in ("VP8", "H264"):
            raise ValueError("must be VP8 or H264")
        return value.upper()

    @field_validator("media_addresses", "media_announced_address")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for part in _split(value):
            ipaddress.ip_address(part)  # ValueError names the bad address
        return value

    @field_validator("media_udp_port", mode="before")
    @classmethod
    def _udp_port(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return -1  # empty: off
        return value

    @model_validator(mode="after")
    def _udp_ports_fit(self) -> Settings:
        if self.media_udp_port >= 0 and not _split(self.media_addresses):
            # one socket, one candidate: it must be the address browsers reach, not a guess
            raise ValueError("GIAOBAN_MEDIA_UDP_PORT needs GIAOBAN_MEDIA_ADDRESSES (the first one is bound)")
        if self.media_udp_port > 0 and self.media_udp_port + self.sfu_workers - 1 > 65535:
            raise ValueError(f"GIAOBAN_MEDIA_UDP_PORT + GIAOBAN_SFU_WORKERS - 1 must be at most 65535, "
                             f"not {self.media_udp_port + self.sfu_workers - 1}")
        return self

    @field_validator("media_remote_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _split(value):
            ipaddress.ip_network(part, strict=False)
        return value

    @field_validator("ice_servers")
    @classmethod
    def _ice_servers(cls, value: str) -> str:
        import json

        if value.strip():
            servers = json.loads(value)
            if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
                raise ValueError('must be a JSON list of objects with "urls"')
        return value

    def ice_server_list(self) -> list[dict[str, object]]:
        import json

        return list(json.loads(self.ice_servers)) if self.ice_servers.strip() else []

    def media_config(self) -> MediaConfig:
        return MediaConfig(
            workers=self.sfu_workers, room_spread=self.sfu_room_spread, addresses=_split(self.media_addresses),
            announced_address=self.media_announced_address.strip(), remote_networks=_split(self.media_remote_networks),
            video_codec=self.sfu_video_codec, udp_port=self.media_udp_port,
        )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'giaoban.db'}"
        return self

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    _demo_key: str = PrivateAttr(default="")

    @property
    def effective_secret_key(self) -> str:
        """``GIAOBAN_SECRET_KEY``; in demo mode without one, the demo's own random key."""
        if self.secret_key:
            return self.secret_key
        if not self.demo:
            raise UnsafeSettings("GIAOBAN_SECRET_KEY is not set (and GIAOBAN_DEMO is not 1)")
        if not self._demo_key:
            self._demo_key, _ = demo_secret_key(self.var_dir)
        return self._demo_key

    def trusted_proxy_list(self) -> tuple[str, ...]:
        return _split(self.trusted_proxies)

    def login_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            address_failures=self.login_address_failures, address_minutes=self.login_address_minutes,
            free_failures=self.login_free_failures, max_delay=self.login_max_delay,
        )

    @property
    def listens_on_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: whatever it resolves to may be reachable

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")

    def check_safe(self) -> None:
        """Refuse to serve outside demo mode with a setting that is only fit for a demo, and a
        demo on a network address unless told so."""
        if self.demo:
            if not self.listens_on_loopback and not self.demo_public:
                raise UnsafeSettings(
                    f"Refusing to serve the demo on {self.host}: its accounts share a published password, "
                    "so anyone who reaches it can log in. Listen on 127.0.0.1 (GIAOBAN_HOST), or set "
                    "GIAOBAN_DEMO_PUBLIC=1 if that is what you want."
                )
            return
        problems: list[str] = []
        if len(self.secret_key) < 32:
            problems.append(
                "GIAOBAN_SECRET_KEY must be set to a random value of at least 32 characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if problems:
            raise UnsafeSettings(
                "Refusing to start outside demo mode (GIAOBAN_DEMO is not 1):\n  - "
                + "\n  - ".join(problems)
            )


def load_settings(**overrides: object) -> Settings:
    """Read the environment; ``overrides`` win (tests use them)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a check across settings: its message names them
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = "GIAOBAN_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise UnsafeSettings("Invalid configuration:\n  - " + "\n  - ".join(lines)) from None
