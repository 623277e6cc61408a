"""Command line: ``python -m server COMMAND``. Run with ``--help`` for the list."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path

from server.settings import Settings, UnsafeSettings, load_settings


def _db(settings: Settings):  # type: ignore[no-untyped-def]
    from server.db import Database

    return Database(settings.database_url)


def _print_import_errors(exc: Exception) -> None:
    from server.csvfile import ImportFailed
    from server.i18n import Catalogues

    translations = Catalogues().get("en")
    if isinstance(exc, ImportFailed):
        print(f"error: {exc.message}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error.render(translations)}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server.migrate import upgrade_to_head
    from server.workdays import service as workdays

    upgrade_to_head(settings.database_url)
    with _db(settings).session() as session:
        seeded = workdays.seed_if_empty(session)
    print("database is at the latest revision" + (f"; {seeded} public holidays loaded" if seeded else ""))
    return 0


def cmd_import_units(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts import service as accounts
    from server.audit import service as audit
    from server.errors import DomainError
    from server.units import csvimport

    data = Path(args.file).read_bytes()
    try:
        with _db(settings).session() as session:
            result = csvimport.import_units(session, data, actor="cli", batch=Path(args.file).name)
            accounts.sync_endpoint_accounts(session)
            audit.record(session, "units_imported", target=Path(args.file).name, created=result.created, updated=result.updated)
    except DomainError as exc:
        _print_import_errors(exc)
        return 1
    print(f"units: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")
    return 0


def cmd_reorganise_units(settings: Settings, args: argparse.Namespace) -> int:
    from server.errors import DomainError
    from server.units import reorganise

    data = Path(args.file).read_bytes()
    try:
        with _db(settings).session() as session:
            result = reorganise.apply_file(session, data, actor=None, batch=Path(args.file).name)
    except DomainError as exc:
        _print_import_errors(exc)
        return 1
    print(
        f"units: {result.created} created, {result.merged} merged, {result.renamed} renamed, "
        f"{result.moved} moved, {result.dissolved} dissolved, {result.edited} edited"
    )
    return 0


def cmd_import_users(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts import service as accounts
    from server.errors import DomainError

    data = Path(args.file).read_bytes()
    try:
        with _db(settings).session() as session:
            created = accounts.import_users(session, data, actor=None)
    except DomainError as exc:
        _print_import_errors(exc)
        return 1
    print("username,initial_password")
    for user, password in created:
        print(f"{user.username},{password}")
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts import service as accounts
    from server.errors import DomainError
    from server.i18n import Catalogues, render

    password = args.password or getpass.getpass("password (empty: generate one): ")
    data = accounts.NewUser(args.username, args.full_name, args.email, args.unit, args.role, password)
    try:
        with _db(settings).session() as session:
            user, password = accounts.create_user(session, data, actor=None)
    except DomainError as exc:
        translations = Catalogues().get("en")
        print(f"error: {render(exc.message, translations)}", file=sys.stderr)
        for field, message in exc.fields.items():
            print(f"  {field}: {render(message, translations)}", file=sys.stderr)
        return 1
    print(f"created {user.username} ({user.role}); password: {password}")
    return 0


def cmd_load_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server import demo
    from server.workdays import service as workdays

    with _db(settings).session() as session:
        workdays.seed_if_empty(session)
        loaded = demo.load(session, settings.demo_password)
    print("demo data loaded" if loaded else "the database already has units; demo data not loaded")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from server import demo
    from server.accounts import service as accounts
    from server.app import create_app
    from server.httpserver import http_options
    from server.migrate import upgrade_to_head
    from server.rooms.messages import transport_max_size
    from server.workdays import service as workdays

    settings.check_safe()
    if settings.demo and not settings.secret_key:
        from server.settings import DEMO_KEY_FILE, demo_secret_key

        _, created = demo_secret_key(settings.var_dir)
        print(f"demo mode: sessions and links are signed with a random key {'made now and ' if created else ''}"
              f"kept in {settings.var_dir / DEMO_KEY_FILE} (delete it to log everyone out)", flush=True)
    upgrade_to_head(settings.database_url)
    db = _db(settings)
    with db.session() as session:
        workdays.seed_if_empty(session)  # real public holidays, in every mode
    if settings.demo:
        from server.i18n import Catalogues
        from server.mail.invitations import MailNotifier

        # The demo briefing's invitations go to the outbox like any other (var/outbox/*.eml).
        notify = MailNotifier(settings.effective_public_url, settings.mail_from, Catalogues().get(settings.default_locale))
        with db.session() as session:
            demo.load(session, settings.demo_password, notify=notify)
        print(demo.logins_text(settings.demo_password, settings.effective_public_url), flush=True)
    else:
        with db.session() as session:
            if accounts.active_demo_accounts(session):
                raise UnsafeSettings(
                    "Refusing to start outside demo mode: the database holds active demo accounts "
                    "with the published password. Reset their passwords or disable them first "
                    "(or run with GIAOBAN_DEMO=1)."
                )
    db.dispose()
    # WebSocket frames are cut at the protocol level well above the signalling limit, which
    # answers with a clear error (GIAOBAN_SIGNAL_MAX_BYTES); app-level heartbeats, no ws pings.
    # Slow and oversized request heads are cut, and X-Forwarded-For is read from trusted proxies
    # only (server/httpserver.py: GIAOBAN_HEADER_TIMEOUT, GIAOBAN_TRUSTED_PROXIES).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                **http_options(settings),
                ws="websockets-sansio", ws_max_size=transport_max_size(settings.signal_max_bytes), ws_ping_interval=None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Giao Ban service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate, load demo data in demo mode, and serve HTTP").set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    p = sub.add_parser("import-units", help="import units from CSV: code,parent_code,level,kind,name[,email]")
    p.add_argument("file")
    p.set_defaults(func=cmd_import_units)
    p = sub.add_parser(
        "reorganise-units", help="rename, move, merge and dissolve units from CSV: old_code,new_code[,new_name,...]"
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_reorganise_units)
    p = sub.add_parser("import-users", help="create officials from CSV: username,full_name,email,unit_code[,role]")
    p.add_argument("file")
    p.set_defaults(func=cmd_import_users)
    p = sub.add_parser("create-user", help="create one account (the first administrator, say)")
    p.add_argument("--username", required=True)
    p.add_argument("--full-name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--role", choices=["admin", "secretary", "official"], default="official")
    p.add_argument("--password", default="", help="omit to be asked; empty generates one")
    p.set_defaults(func=cmd_create_user)
    sub.add_parser("load-demo", help="load the demo units and accounts into an empty database").set_defaults(func=cmd_load_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.func(settings, args))
    except UnsafeSettings as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
