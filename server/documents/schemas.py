"""The documents API's bodies and the shape of a document in answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.documents import service as documents
from server.documents.models import MeetingDocument
from server.meetings.schemas import iso


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
