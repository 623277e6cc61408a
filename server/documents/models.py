"""A meeting's documents: files (PDF, DOCX, XLSX, stored by content under ``var/documents``) and links."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class MeetingDocument(SQLModel, table=True):
    """An uploaded file (PDF, DOCX, XLSX) or a link, served only to those who may see the meeting."""

    __tablename__ = "meeting_documents"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    kind: str = Field(max_length=10)  # file | link
    title: str = Field(max_length=200)
    url: str = Field(default="", max_length=2000)
    filename: str = Field(default="", max_length=255)
    content_type: str = Field(default="", max_length=100)
    size: int = Field(default=0)
    sha256: str = Field(default="", max_length=64, index=True)  # the stored file's name under var/documents/
    uploaded_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
