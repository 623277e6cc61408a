"""The application, composed from routes, middleware and a lifespan (Starlette style)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from limits.storage import MemoryStorage
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from media.supervisor import Supervisor
from server.accounts import api as accounts_api
from server.accounts import pages as accounts_pages
from server.accounts.sessions import Lifetimes, TableSessionStore
from server.accounts.tokens import TokenSigner
from server.appstate import AppState
from server.audit import pages as audit_pages
from server.auth import RequestContextMiddleware, security_headers
from server.bodylimit import BodyLimitMiddleware
from server.calendar import api as calendar_api
from server.calendar import pages as calendar_pages
from server.csrf import CSRFMiddleware
from server.db import Database
from server.documents import api as documents_api
from server.documents import pages as documents_pages
from server.documents.forms import UPLOAD_PATH, upload_limit
from server.home import routes as home_routes
from server.i18n import Catalogues
from server.mail import pages as mail_pages
from server.mail.imap import ReplyReader
from server.mail.invitations import MailDeputyNotifier, notifier
from server.mail.retry import RetryPolicy
from server.mail.sender import OutboxSender
from server.mail.transport import make_transport
from server.mail.urls import parse_imap_url
from server.meetings import api as meetings_api
from server.meetings import pages as meetings_pages
from server.metrics import Metrics, MetricsMiddleware, route_names
from server.openapi import build_spec, openapi_view
from server.ratelimit import LoginThrottle
from server.records import api as records_api
from server.records import pages as records_pages
from server.responses import exception_handlers
from server.rooms import pages as rooms_pages
from server.rooms import service as rooms_service
from server.rooms.access import JoinLinks
from server.rooms.hub import RoomHub
from server.rooms.socket import echo_socket, room_socket
from server.settings import Settings, load_settings
from server.templating import Pages
from server.units import api as units_api
from server.units import pages as units_pages
from server.workdays import pages as workdays_pages

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
SESSION_COOKIE = "giaoban_session"


def app_version() -> str:
    try:
        return version("giaoban")
    except PackageNotFoundError:  # running from a checkout that was not installed
        return "0+unknown"


def all_routes() -> list[BaseRoute]:
    return [
        *home_routes,
        *accounts_pages.routes,
        *accounts_api.routes,
        *units_pages.routes,
        *units_api.routes,
        *audit_pages.routes,
        *meetings_api.routes,
        *documents_pages.routes,
        *documents_api.routes,
        *records_pages.routes,
        *records_api.routes,
        *meetings_pages.routes,
        *workdays_pages.routes,
        *calendar_pages.routes,
        *calendar_api.routes,
        *mail_pages.routes,
        # no convertor: the socket reads the id, and answers a bad one with an error, not a refused upgrade
        WebSocketRoute("/ws/meetings/{meeting_id}", room_socket, name="room_socket"),
        WebSocketRoute("/ws/echo", echo_socket, name="echo_socket"),
        *rooms_pages.routes,
        Route("/api/openapi.json", openapi_view, name="openapi"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    db = Database(settings.database_url)
    routes = all_routes()
    metrics = Metrics()

    def new_sender() -> OutboxSender:
        transport = make_transport(settings.smtp_url.get_secret_value(), settings.var_dir / "outbox")
        return OutboxSender(db, transport, envelope_from=settings.mail_from,
                            policy=RetryPolicy(max_attempts=settings.mail_max_attempts))

    def new_reader(state: AppState) -> ReplyReader | None:
        url = settings.imap_url.get_secret_value().strip()
        if not url:
            return None
        return ReplyReader(db, parse_imap_url(url), interval=settings.imap_interval,
                           notify=MailDeputyNotifier(notifier(state.settings, state.catalogues)), applied=state.outbox_sender.wake)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One sender per running loop: the lifespan owns it, starts it, and closes it. (Tests
        # may run the app in several loops at once; each gets its own.)
        state: AppState = app.state.giaoban
        previous, state.outbox_sender = state.outbox_sender, new_sender()
        if settings.mail_sender:
            state.outbox_sender.start()
        # The reply reader, likewise, when the service mailbox is configured.
        previous_reader, state.reply_reader = state.reply_reader, new_reader(state)
        if state.reply_reader is not None:
            state.reply_reader.start()
        # The meeting rooms and their SFU workers (started on first use), likewise. Stays left
        # open by a process that stopped end now ("dropped"): rooms live in this process.
        await state.db.run(rooms_service.close_open_stays)
        previous_rooms, state.rooms = state.rooms, RoomHub(lambda on_event: Supervisor(settings.media_config(), on_event))
        try:
            yield
        finally:
            await state.rooms.close()
            state.rooms = previous_rooms
            if state.reply_reader is not None:
                await state.reply_reader.close()
            state.reply_reader = previous_reader
            await state.outbox_sender.close()
            state.outbox_sender = previous
            db.dispose()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics, names=route_names(routes)),
            Middleware(
                SessionMiddleware,
                secret_key=settings.effective_secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=settings.session_max_age,
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
            Middleware(RequestContextMiddleware, headers=security_headers(settings.effective_public_url)),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                larger=[(UPLOAD_PATH, upload_limit(settings.max_document_bytes))],
            ),
            Middleware(CSRFMiddleware),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    catalogues = Catalogues()
    app.state.giaoban = AppState(
        settings=settings,
        db=db,
        catalogues=catalogues,
        pages=Pages(catalogues),
        token_signer=TokenSigner(settings.effective_secret_key, settings.token_max_age),
        sessions=TableSessionStore(db, Lifetimes(
            browser_idle=settings.session_idle_seconds, browser_max_age=settings.session_max_age,
            token_idle=settings.token_idle_seconds, token_max_age=settings.token_max_age,
        )),
        login_throttle=LoginThrottle(MemoryStorage(), settings.login_policy()),  # Redis: a later issue
        metrics=metrics,
        version=app_version(),
        openapi=build_spec(routes, app_version()),
        outbox_sender=new_sender(),  # not started: wake() is a no-op until a lifespan runs one
        join_links=JoinLinks(settings.effective_secret_key),
    )
    state = app.state.giaoban
    metrics.media_snapshot = lambda: state.rooms.snapshot() if state.rooms is not None else None
    return app
