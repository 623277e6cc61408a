"""The upload form the documents page and the documents API share: how large a body may be,
where the files go, and the steps of attaching or removing a document."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from server.accounts.models import User
from server.appstate import app_state
from server.documents import service as documents
from server.documents.models import MeetingDocument
from server.documents.service import DocumentStore
from server.edge import client_ip
from server.errors import InvalidInput
from server.i18n import N_
from server.meetings import service as meetings

UPLOAD_PATH = re.compile(r"/(?:api/)?meetings/\d+/documents")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, the title and the CSRF token


def upload_limit(max_document_bytes: int) -> int:
    """The body limit of an upload request: the largest file and the form around it."""
    return max_document_bytes + MULTIPART_OVERHEAD


def store(request: Request) -> DocumentStore:
    return DocumentStore(app_state(request).settings.var_dir / "documents")


async def upload(request: Request, actor: User, meeting_id: int, form: FormData) -> MeetingDocument:
    """Check the permission, stage and check the file, then add its row."""
    state = app_state(request)
    await state.db.run(meetings.get_editable, actor, meeting_id)  # refuse before writing anything
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        raise InvalidInput(N_("The file was not attached."), fields={"file": N_("Choose a file to attach.")})
    files = store(request)
    staged = await run_in_threadpool(files.stage, upload.file, upload.filename or "", state.settings.max_document_bytes)
    try:
        title = form.get("title", "")
        return await state.db.run(documents.add_file, actor, meeting_id, staged, files,
                                  title=title if isinstance(title, str) else "", ip=client_ip(request))
    finally:
        files.discard(staged)  # nothing left once kept; the temporary file when refused


async def delete(request: Request, actor: User, meeting_id: int, document_id: int) -> None:
    state = app_state(request)
    sha256 = await state.db.run(documents.delete, actor, meeting_id, document_id, ip=client_ip(request))
    if not sha256:
        return
    unused: bool = await state.db.run(documents.still_unused, sha256)
    if unused:
        await run_in_threadpool(store(request).remove, sha256)
