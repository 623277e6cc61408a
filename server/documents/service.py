"""Meeting documents: PDF, Word (DOCX) and Excel (XLSX) files, and links.

A file's type is decided by its content, never by its name: a PDF starts with ``%PDF-``; a
DOCX or XLSX is a ZIP whose ``[Content_Types].xml`` names the main part of a Word document or
an Excel workbook. Only the ZIP's directory and that one small part are read, within limits,
so a ZIP bomb is refused without being unpacked.

Files are stored once per content under ``{var_dir}/documents/{sha256}``: an upload is written
to a temporary file beside them and renamed into place only when its row is added, so a
failed request leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit
from xml.etree import ElementTree

from sqlmodel import Session, col, func, select

from server.accounts.models import User
from server.audit import service as audit
from server.documents.models import MeetingDocument
from server.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from server.i18n import N_, Text
from server.meetings import service
from server.meetings.models import Meeting
from server.text import nfc

TITLE_MAX = 200
URL_MAX = 2000
FILENAME_MAX = 255
MAX_PER_MEETING = 100
ZIP_MAX_ENTRIES = 1000
ZIP_MAX_UNPACKED = 200 * 1024 * 1024
ZIP_MAX_DIRECTORY = 1024 * 1024
CONTENT_TYPES_MAX = 256 * 1024
CHUNK = 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileType:
    extension: str
    content_type: str


PDF = FileType("pdf", "application/pdf")
DOCX = FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
XLSX = FileType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
FILE_TYPES = (PDF, DOCX, XLSX)
# The content type of the main part, as [Content_Types].xml names it. Macro-enabled documents
# and templates have other main types and are refused with everything else.
MAIN_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_EOCD = b"PK\x05\x06"


def _refused(message: Text) -> InvalidInput:
    return InvalidInput(N_("The file was not attached."), fields={"file": message})


WRONG_TYPE = N_("Only PDF, Word (.docx) and Excel (.xlsx) files can be attached; this file is none of them.")
DAMAGED = N_("The file looks like a Word or Excel document but is damaged.")
TOO_BIG_INSIDE = N_("The file unpacks to too many parts or too much data for a document; it was refused.")


# --- what a file is -------------------------------------------------------------------------


def sniff(path: Path) -> FileType:
    """The type of the file at ``path`` by its content, or a 422 naming the ``file`` field."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"%PDF-") and head[5:6].isdigit():
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_office(path)
    raise _refused(WRONG_TYPE)


def _check_zip_directory(path: Path) -> None:
    """Refuse before :mod:`zipfile` builds its directory: too many entries, or a huge directory."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 22 - 65535))
        tail = handle.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        raise _refused(DAMAGED)
    _sig, _disk, _start, _here, entries, directory_size, _offset, _comment = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if entries > ZIP_MAX_ENTRIES or directory_size > ZIP_MAX_DIRECTORY:  # 0xFFFF (ZIP64) is refused too
        raise _refused(TOO_BIG_INSIDE)


def _sniff_office(path: Path) -> FileType:
    _check_zip_directory(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > ZIP_MAX_ENTRIES or sum(i.file_size for i in infos) > ZIP_MAX_UNPACKED:
                raise _refused(TOO_BIG_INSIDE)
            try:
                manifest = archive.getinfo("[Content_Types].xml")
            except KeyError:
                raise _refused(WRONG_TYPE) from None
            if manifest.file_size > CONTENT_TYPES_MAX:
                raise _refused(TOO_BIG_INSIDE)
            with archive.open(manifest) as part:
                data = part.read(CONTENT_TYPES_MAX + 1)
            names = {i.filename for i in infos}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError):
        raise _refused(DAMAGED) from None
    if len(data) > CONTENT_TYPES_MAX:
        raise _refused(TOO_BIG_INSIDE)
    return _main_part_type(data, names)


def _main_part_type(manifest: bytes, names: set[str]) -> FileType:
    # No DTD is needed in this file; refusing one keeps entity expansion out of the parser.
    if b"<!DOCTYPE" in manifest.upper() or b"<!ENTITY" in manifest.upper():
        raise _refused(DAMAGED)
    try:
        root = ElementTree.fromstring(manifest)
    except ElementTree.ParseError:
        raise _refused(DAMAGED) from None
    found = {
        MAIN_PARTS[kind]
        for element in root.iter(f"{_CONTENT_TYPES_NS}Override")
        if (kind := element.get("ContentType", "")) in MAIN_PARTS
        and element.get("PartName", "").lstrip("/") in names
    }
    if len(found) != 1:
        raise _refused(WRONG_TYPE)
    return found.pop()


# --- names, titles, links -------------------------------------------------------------------


def clean_filename(raw: str, file_type: FileType) -> str:
    """The name to offer on download: no folders or control characters, NFC, and the
    extension of what the file really is."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = nfc("".join(c for c in name if c.isprintable())).strip(". ")
    stem, dot, extension = name.rpartition(".")
    if not dot or extension.lower() not in {t.extension for t in FILE_TYPES}:
        stem = name
    stem = stem.strip(". ")[: FILENAME_MAX - len(file_type.extension) - 1] or "document"
    return f"{stem}.{file_type.extension}"


def _title(raw: str, default: str = "") -> str:
    title = nfc(raw) or nfc(default)
    if not title:
        raise InvalidInput(N_("The document was not added."), fields={"title": N_("Give the document a title.")})
    if len(title) > TITLE_MAX:
        raise InvalidInput(N_("The document was not added."), fields={"title": N_("At most {n} characters.", n=TITLE_MAX)})
    return title


def clean_url(raw: str) -> str:
    """An absolute http or https address, or a 422 naming the ``url`` field."""
    url = raw.strip()

    def bad(message: Text) -> InvalidInput:
        return InvalidInput(N_("The link was not added."), fields={"url": message})

    if not url:
        raise bad(N_("Enter the link's address."))
    if len(url) > URL_MAX:
        raise bad(N_("At most {n} characters.", n=URL_MAX))
    if any(c.isspace() or not c.isprintable() for c in url):
        raise bad(N_("A web address has no spaces."))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise bad(N_("Give a web address starting with http:// or https://.")) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad(N_("Give a web address starting with http:// or https://."))
    if parts.username is not None or parts.password is not None:
        raise bad(N_("A shared link may not carry a user name or password."))
    return url


# --- storage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    """An upload written to a temporary file and checked, not yet kept."""

    path: Path
    sha256: str
    size: int
    file_type: FileType
    filename: str


class DocumentStore:
    """Files by their SHA-256 under one folder; uploads are staged beside them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise NotFound(N_("No such document."))
        return self.root / sha256

    def stage(self, source: BinaryIO, filename: str, max_bytes: int) -> Staged:
        """Copy ``source`` to a temporary file, hashing it; refuse it when it is empty, larger
        than ``max_bytes`` or not a PDF, DOCX or XLSX (and then leave nothing behind)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        path = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(handle, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            N_("The file was not attached."),
                            fields={"file": N_("The file is larger than {size}.", size=size_text(max_bytes))},
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise _refused(N_("The file is empty."))
            file_type = sniff(path)
            return Staged(path, digest.hexdigest(), size, file_type, clean_filename(filename, file_type))
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def keep(self, staged: Staged) -> None:
        """Move the staged file into place (the same content may already be there)."""
        final = self.path_of(staged.sha256)
        if final.exists():
            staged.path.unlink(missing_ok=True)
        else:
            os.replace(staged.path, final)

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)


def size_text(n: int) -> str:
    """A size limit as people read it: ``20 MiB``, ``64 KiB``."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


# --- rows -----------------------------------------------------------------------------------


def list_documents(session: Session, viewer: User, meeting_id: int) -> tuple[Meeting, list[MeetingDocument]]:
    meeting = service.get_visible(session, viewer, meeting_id)
    rows = session.exec(
        select(MeetingDocument).where(MeetingDocument.meeting_id == meeting_id).order_by(col(MeetingDocument.id))
    ).all()
    return meeting, list(rows)


def get_document(session: Session, viewer: User, meeting_id: int, document_id: int) -> MeetingDocument:
    """A document of a meeting ``viewer`` may see; 404 otherwise."""
    service.get_visible(session, viewer, meeting_id)
    document = session.get(MeetingDocument, document_id)
    if document is None or document.meeting_id != meeting_id:
        raise NotFound(N_("No such document."))
    return document


def _room_for_one_more(session: Session, meeting_id: int) -> None:
    count = session.exec(select(func.count()).where(MeetingDocument.meeting_id == meeting_id)).one()
    if count >= MAX_PER_MEETING:
        raise Conflict(N_("A meeting has at most {n} documents; remove one first.", n=MAX_PER_MEETING))


def add_file(
    session: Session, actor: User, meeting_id: int, staged: Staged, store: DocumentStore, *, title: str = "", ip: str = ""
) -> MeetingDocument:
    """Attach a staged file. The file is moved into place inside the transaction, so a row
    never names a file that is missing."""
    meeting = service.get_editable(session, actor, meeting_id)
    _room_for_one_more(session, meeting_id)
    document = MeetingDocument(
        meeting_id=meeting.id or 0, kind="file", title=_title(title, staged.filename.rpartition(".")[0]),
        filename=staged.filename, content_type=staged.file_type.content_type, size=staged.size,
        sha256=staged.sha256, uploaded_by_id=actor.id,
    )
    session.add(document)
    session.flush()
    store.keep(staged)
    audit.record(session, "document_added", actor=actor, target=str(meeting_id), ip=ip,
                 document=document.id, filename=document.filename, size=document.size)
    return document


def add_link(session: Session, actor: User, meeting_id: int, *, url: str, title: str, ip: str = "") -> MeetingDocument:
    meeting = service.get_editable(session, actor, meeting_id)
    errors: dict[str, Text | str] = {}
    address = name = ""
    try:
        address = clean_url(url)
    except InvalidInput as exc:
        errors.update(exc.fields)
    try:
        name = _title(title)
    except InvalidInput as exc:
        errors.update(exc.fields)
    if errors:
        raise InvalidInput(N_("The link was not added."), fields=errors)
    _room_for_one_more(session, meeting_id)
    document = MeetingDocument(meeting_id=meeting.id or 0, kind="link", title=name, url=address, uploaded_by_id=actor.id)
    session.add(document)
    session.flush()
    audit.record(session, "document_added", actor=actor, target=str(meeting_id), ip=ip, document=document.id, url=document.url)
    return document


def delete(session: Session, actor: User, meeting_id: int, document_id: int, *, ip: str = "") -> str:
    """Remove a document; returns the SHA-256 of a file no row names any more (to remove
    from the store once this transaction is committed), or ``""``."""
    service.get_editable(session, actor, meeting_id)
    document = get_document(session, actor, meeting_id, document_id)
    session.delete(document)
    session.flush()
    audit.record(session, "document_removed", actor=actor, target=str(meeting_id), ip=ip,
                 document=document_id, title=document.title)
    if document.kind != "file" or not document.sha256:
        return ""
    still_used = session.exec(select(func.count()).where(MeetingDocument.sha256 == document.sha256)).one()
    return "" if still_used else document.sha256


def still_unused(session: Session, sha256: str) -> bool:
    """No row names this file (checked again just before the file is removed)."""
    return session.exec(select(func.count()).where(MeetingDocument.sha256 == sha256)).one() == 0
