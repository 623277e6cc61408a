"""Documents of a meeting: the page (list, upload, link, remove) and the download. The upload
steps and their body limit are shared with the API in :mod:`server.documents.forms`."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route
from unidecode import unidecode

from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.documents import forms
from server.documents import service as documents
from server.documents.models import MeetingDocument
from server.edge import client_ip, whole_number
from server.errors import DomainError, InvalidInput, NotFound
from server.i18n import N_, Text
from server.meetings import service

log = logging.getLogger("giaoban")

ACTIONS = ("upload", "link", "delete")
DONE: dict[str, Text] = {
    "upload": N_("The file was attached."),
    "link": N_("The link was added."),
    "delete": N_("The document was removed."),
}


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266, RFC 5987)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", unidecode(filename)) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass(frozen=True)
class DocumentRow:
    id: int
    kind: str
    title: str
    href: str
    filename: str
    type_label: str
    size_kib: int
    created_at: dt.datetime


def _row(document: MeetingDocument) -> DocumentRow:
    is_file = document.kind == "file"
    return DocumentRow(
        id=document.id or 0, kind=document.kind, title=document.title,
        href=f"/meetings/{document.meeting_id}/documents/{document.id}" if is_file else document.url,
        filename=document.filename, type_label=document.filename.rpartition(".")[2].upper() if is_file else "",
        size_kib=-(-document.size // 1024), created_at=document.created_at,
    )


def _page_context(session: Session, viewer: User, meeting_id: int) -> dict[str, Any]:
    meeting, rows = documents.list_documents(session, viewer, meeting_id)
    return {
        "meeting": meeting,
        "documents": [_row(d) for d in rows],
        "can_edit": service.can_edit(session, viewer, meeting),
        "errors": {action: {} for action in ACTIONS},
        "values": {"upload": {"title": ""}, "link": {"url": "", "title": ""}},
        "done": None,
    }


async def documents_page(request: Request) -> Response:
    user = page_user(request)
    meeting_id = int(request.path_params["id"])
    state = app_state(request)
    if request.method == "GET":
        context = await state.db.run(_page_context, user, meeting_id)
        context["done"] = DONE.get(request.query_params.get("done", ""))
        context["max_size"] = documents.size_text(state.settings.max_document_bytes)
        return state.pages.render(request, "meetings/documents.html", context)
    await state.db.run(service.require_editor, user, meeting_id)  # 404/403 before the form is read
    form = await request.form(max_files=1, max_fields=10)
    action = str(form.get("action", ""))
    try:
        if action == "upload":
            await forms.upload(request, user, meeting_id, form)
        elif action == "link":
            await state.db.run(documents.add_link, user, meeting_id, url=str(form.get("url", "")),
                               title=str(form.get("title", "")), ip=client_ip(request))
        elif action == "delete":
            document_id = whole_number(form.get("document", ""))
            if document_id is None:
                raise NotFound(N_("No such document."))
            await forms.delete(request, user, meeting_id, document_id)
        else:
            raise InvalidInput(N_("Nothing was changed."), fields={"action": N_("Unknown action.")})
    except DomainError as exc:
        if exc.status not in (409, 413, 422) or action not in ACTIONS:
            raise
        context = await state.db.run(_page_context, user, meeting_id)
        context["errors"][action] = exc.fields or {"form": exc.message}
        if action in context["values"]:
            context["values"][action] = {k: str(form.get(k, "")) for k in context["values"][action]}
        context["max_size"] = documents.size_text(state.settings.max_document_bytes)
        return state.pages.render(request, "meetings/documents.html", context, status_code=exc.status)
    finally:
        await form.close()
    return RedirectResponse(f"/meetings/{meeting_id}/documents?done={action}", status_code=303)


async def download(request: Request) -> Response:
    user = page_user(request)
    meeting_id, document_id = int(request.path_params["id"]), int(request.path_params["doc_id"])
    document = await app_state(request).db.run(documents.get_document, user, meeting_id, document_id)
    if document.kind != "file":
        raise NotFound(N_("This document is a link, not a file."))
    path = forms.store(request).path_of(document.sha256)
    if not path.is_file():
        log.error("document %s of meeting %s: file %s is missing", document_id, meeting_id, document.sha256)
        raise NotFound(N_("The file of this document is missing on the server."))
    return FileResponse(path, media_type=document.content_type, headers={
        "Content-Disposition": content_disposition(document.filename),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    })


routes = [
    Route("/meetings/{id:int}/documents", documents_page, methods=["GET", "POST"], name="meeting_documents"),
    Route("/meetings/{id:int}/documents/{doc_id:int}", download, methods=["GET"], name="meeting_document"),
]
