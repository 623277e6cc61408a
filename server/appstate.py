"""The typed state the app carries (settings, database, pages, …), one object for all views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from server.accounts.sessions import SessionStore
    from server.accounts.tokens import TokenSigner
    from server.db import Database
    from server.i18n import Catalogues
    from server.mail.imap import ReplyReader
    from server.mail.sender import OutboxSender
    from server.metrics import Metrics
    from server.ratelimit import LoginThrottle
    from server.rooms.access import JoinLinks
    from server.rooms.hub import RoomHub
    from server.settings import Settings
    from server.templating import Pages


@dataclass
class AppState:
    settings: Settings
    db: Database
    catalogues: Catalogues
    pages: Pages
    token_signer: TokenSigner
    sessions: SessionStore
    login_throttle: LoginThrottle
    metrics: Metrics
    version: str
    openapi: dict[str, Any]
    outbox_sender: OutboxSender
    join_links: JoinLinks
    reply_reader: ReplyReader | None = None  # reads the service mailbox while a lifespan runs (GIAOBAN_IMAP_URL)
    rooms: RoomHub | None = None  # the meeting rooms and the SFU workers, while a lifespan runs


def app_state(connection: HTTPConnection) -> AppState:
    return cast(AppState, connection.app.state.giaoban)


def scope_state(scope: Any) -> AppState:
    """The same, from an ASGI scope (middleware)."""
    return cast(AppState, scope["app"].state.giaoban)
