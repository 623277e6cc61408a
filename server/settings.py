"""Every setting of the service, read once from ``GIAOBAN_*`` environment variables.

Demo mode (``GIAOBAN_DEMO=1``, what ``make run`` sets) relaxes the secrets so that a
newcomer can try the product; outside demo mode unsafe settings stop the start.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from media.config import MediaConfig
from server.mail.retry import RetryPolicy
from server.mail.urls import parse_imap_url, parse_smtp_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEMO_PASSWORD = "giaoban-demo"
DEMO_SECRET_KEY = "demo-only-secret-key-do-not-use-in-production"


def _split(value: str) -> tuple[str, ...]:
    """A comma-separated setting's items."""
    return tuple(p.strip() for p in value.split(",") if p.strip())


class UnsafeSettings(Exception):
    """Raised when the settings would run a production service insecurely."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIAOBAN_", extra="ignore")

    demo: bool = False
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
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_seconds: int = Field(default=15 * 60, ge=1)
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

    @field_validator("media_remote_networks")
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
            video_codec=self.sfu_video_codec,
        )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'giaoban.db'}"
        return self

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_secret_key(self) -> str:
        return self.secret_key or DEMO_SECRET_KEY

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")

    def check_safe(self) -> None:
        """Refuse to serve outside demo mode with a setting that is only fit for a demo."""
        if self.demo:
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
            name = "GIAOBAN_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise UnsafeSettings("Invalid configuration:\n  - " + "\n  - ".join(lines)) from None
