"""The documents API: list, attach (a file or a link) and remove a meeting's documents."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.accounts.models import User
from server.api import ApiDoc, Param, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user
from server.documents import forms
from server.documents import service as documents
from server.documents.schemas import UPLOAD_BODY, DocumentList, DocumentOut, LinkIn, document_out
from server.edge import ID, client_ip, path_int
from server.errors import InvalidInput
from server.i18n import N_
from server.meetings import service as meetings


def _api_list(session: Session, viewer: User, meeting_id: int, public_url: str) -> dict[str, Any]:
    _meeting, rows = documents.list_documents(session, viewer, meeting_id)
    return {"items": [document_out(d, public_url) for d in rows], "total": len(rows)}


async def api_list(request: Request) -> Response:
    viewer = api_user(request)
    state = app_state(request)
    return JSONResponse(await state.db.run(_api_list, viewer, path_int(request), state.settings.effective_public_url))


async def api_add(request: Request) -> Response:
    actor = api_user(request)
    meeting_id = path_int(request)
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        try:
            document = await forms.upload(request, actor, meeting_id, form)
        finally:
            await form.close()
    elif "application/json" in content_type:
        await state.db.run(meetings.require_editor, actor, meeting_id)  # 404/403 before the body is read
        body = await parse_body(request, LinkIn)
        document = await state.db.run(documents.add_link, actor, meeting_id, url=body.url, title=body.title, ip=client_ip(request))
    else:
        raise InvalidInput(N_("Send a file as multipart/form-data, or a link as JSON."))
    return JSONResponse(document_out(document, state.settings.effective_public_url), status_code=201)


async def api_delete(request: Request) -> Response:
    actor = api_user(request)
    await forms.delete(request, actor, path_int(request), path_int(request, "doc_id"))
    return Response(status_code=204)


DOC_ID = Param("doc_id", "Document id", "integer", where="path", schema=ID.schema)
routes = [
    api_route("/api/meetings/{id:int}/documents", api_list, methods=["GET"], name="api_meeting_documents", doc=ApiDoc(
        "The documents of a meeting (files and links)", "documents", response=DocumentList, params=(ID,), errors=(404, 422))),
    api_route("/api/meetings/{id:int}/documents", api_add, methods=["POST"], name="api_meeting_document_add", doc=ApiDoc(
        "Attach a PDF, DOCX or XLSX file (multipart: file, title) or add a link (JSON: url, title)", "documents",
        body=LinkIn, response=DocumentOut, status=201, params=(ID,), errors=(403, 404, 409, 413, 422),
        extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": UPLOAD_BODY},
            "application/json": {"schema": {"$ref": "#/components/schemas/LinkIn"}},
        }}})),
    api_route("/api/meetings/{id:int}/documents/{doc_id:int}", api_delete, methods=["DELETE"], name="api_meeting_document_delete",
              doc=ApiDoc("Remove a document", "documents", status=204, params=(ID, DOC_ID), errors=(403, 404, 409, 422))),
]
