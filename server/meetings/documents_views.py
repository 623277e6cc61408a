"""Documents of a meeting: the page (list, upload, link, remove), the download, and the API.

Uploads are larger than any other request: :data:`UPLOAD_PATH` names the paths that the
body-limit middleware lets carry :func:`upload_limit` bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from unidecode import unidecode

from server.accounts.models import User
from server.accounts.views import client_ip
from server.api import ApiDoc, Param, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user, page_user
from server.errors import DomainError, InvalidInput, NotFound
from server.i18n import N_, Text
from server.meetings import documents, service
from server.meetings.api import ID
from server.meetings.documents import DocumentStore
from server.meetings.models import MeetingDocument
from server.meetings.schemas import iso

log = logging.getLogger("giaoban")

UPLOAD_PATH = re.compile(r"/(?:api/)?meetings/\d+/documents")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, the title and the CSRF token
ACTIONS = ("upload", "link", "delete")
DONE: dict[str, Text] = {
    "upload": N_("The file was attached."),
    "link": N_("The link was added."),
    "delete": N_("The document was removed."),
}


def upload_limit(max_document_bytes: int) -> int:
    """The body limit of an upload request: the largest file and the form around it."""
    return max_document_bytes + MULTIPART_OVERHEAD


def _store(request: Request) -> DocumentStore:
    return DocumentStore(app_state(request).settings.var_dir / "documents")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266, RFC 5987)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", unidecode(filename)) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _id(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not raw.isdigit():
        raise InvalidInput(N_("Some fields are invalid."), fields={name: N_("Must be a whole number.")})
    return int(raw)


# --- shapes ---------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    id: int
    kind: str  # file | link
    title: str
    url: str | None = None  # a link's address
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    download_url: str | None = None
    created_at: str


class DocumentList(BaseModel):
    items: list[DocumentOut]
    total: int


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=10_000)
    title: str = Field(max_length=10_000)


UPLOAD_BODY = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "PDF, DOCX or XLSX"},
        "title": {"type": "string", "maxLength": documents.TITLE_MAX, "description": "Default: the file name"},
    },
}


def document_out(document: MeetingDocument, public_url: str) -> dict[str, Any]:
    is_file = document.kind == "file"
    return DocumentOut(
        id=document.id or 0, kind=document.kind, title=document.title,
        url=None if is_file else document.url,
        filename=document.filename if is_file else None,
        content_type=document.content_type if is_file else None,
        size=document.size if is_file else None,
        download_url=f"{public_url}/meetings/{document.meeting_id}/documents/{document.id}" if is_file else None,
        created_at=iso(document.created_at),
    ).model_dump()


# --- shared steps ---------------------------------------------------------------------------


async def _upload(request: Request, actor: User, meeting_id: int, form: FormData) -> MeetingDocument:
    """Check the permission, stage and check the file, then add its row."""
    state = app_state(request)
    await state.db.run(service.get_editable, actor, meeting_id)  # refuse before writing anything
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        raise InvalidInput(N_("The file was not attached."), fields={"file": N_("Choose a file to attach.")})
    store = _store(request)
    staged = await run_in_threadpool(store.stage, upload.file, upload.filename or "", state.settings.max_document_bytes)
    try:
        title = form.get("title", "")
        return await state.db.run(documents.add_file, actor, meeting_id, staged, store,
                                  title=title if isinstance(title, str) else "", ip=client_ip(request))
    finally:
        store.discard(staged)  # nothing left once kept; the temporary file when refused


async def _delete(request: Request, actor: User, meeting_id: int, document_id: int) -> None:
    state = app_state(request)
    sha256 = await state.db.run(documents.delete, actor, meeting_id, document_id, ip=client_ip(request))
    if not sha256:
        return
    unused: bool = await state.db.run(documents.still_unused, sha256)
    if unused:
        await run_in_threadpool(_store(request).remove, sha256)


# --- pages ----------------------------------------------------------------------------------


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
    form = await request.form(max_files=1, max_fields=10)
    action = str(form.get("action", ""))
    try:
        if action == "upload":
            await _upload(request, user, meeting_id, form)
        elif action == "link":
            await state.db.run(documents.add_link, user, meeting_id, url=str(form.get("url", "")),
                               title=str(form.get("title", "")), ip=client_ip(request))
        elif action == "delete":
            document_id = str(form.get("document", ""))
            if not document_id.isdigit():
                raise NotFound(N_("No such document."))
            await _delete(request, user, meeting_id, int(document_id))
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
    path = _store(request).path_of(document.sha256)
    if not path.is_file():
        log.error("document %s of meeting %s: file %s is missing", document_id, meeting_id, document.sha256)
        raise NotFound(N_("The file of this document is missing on the server."))
    return FileResponse(path, media_type=document.content_type, headers={
        "Content-Disposition": content_disposition(document.filename),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    })


# --- API ------------------------------------------------------------------------------------


def _api_list(session: Session, viewer: User, meeting_id: int, public_url: str) -> dict[str, Any]:
    _meeting, rows = documents.list_documents(session, viewer, meeting_id)
    return {"items": [document_out(d, public_url) for d in rows], "total": len(rows)}


async def api_list(request: Request) -> Response:
    viewer = api_user(request)
    state = app_state(request)
    return JSONResponse(await state.db.run(_api_list, viewer, _id(request, "id"), state.settings.effective_public_url))


async def api_add(request: Request) -> Response:
    actor = api_user(request)
    meeting_id = _id(request, "id")
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        try:
            document = await _upload(request, actor, meeting_id, form)
        finally:
            await form.close()
    elif "application/json" in content_type:
        body = await parse_body(request, LinkIn)
        document = await state.db.run(documents.add_link, actor, meeting_id, url=body.url, title=body.title, ip=client_ip(request))
    else:
        raise InvalidInput(N_("Send a file as multipart/form-data, or a link as JSON."))
    return JSONResponse(document_out(document, state.settings.effective_public_url), status_code=201)


async def api_delete(request: Request) -> Response:
    actor = api_user(request)
    await _delete(request, actor, _id(request, "id"), _id(request, "doc_id"))
    return Response(status_code=204)


DOC_ID = Param("doc_id", "Document id", "integer", where="path")
routes = [
    Route("/meetings/{id:int}/documents", documents_page, methods=["GET", "POST"], name="meeting_documents"),
    Route("/meetings/{id:int}/documents/{doc_id:int}", download, methods=["GET"], name="meeting_document"),
    api_route("/api/meetings/{id}/documents", api_list, methods=["GET"], name="api_meeting_documents", doc=ApiDoc(
        "The documents of a meeting (files and links)", "documents", response=DocumentList, params=(ID,), errors=(404, 422))),
    api_route("/api/meetings/{id}/documents", api_add, methods=["POST"], name="api_meeting_document_add", doc=ApiDoc(
        "Attach a PDF, DOCX or XLSX file (multipart: file, title) or add a link (JSON: url, title)", "documents",
        body=LinkIn, response=DocumentOut, status=201, params=(ID,), errors=(403, 404, 409, 413, 422),
        extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": UPLOAD_BODY},
            "application/json": {"schema": {"$ref": "#/components/schemas/LinkIn"}},
        }}})),
    api_route("/api/meetings/{id}/documents/{doc_id}", api_delete, methods=["DELETE"], name="api_meeting_document_delete",
              doc=ApiDoc("Remove a document", "documents", status=204, params=(ID, DOC_ID), errors=(403, 404, 409, 422))),
]
