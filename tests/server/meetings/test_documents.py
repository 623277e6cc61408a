"""Meeting documents: real PDF, DOCX and XLSX uploads checked by content, links, downloads only
for those who may see the meeting, changes only by its editors, and the size limits."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"



# --- real files, made by hand ---------------------------------------------------------------


def make_pdf(padding: int = 0) -> bytes:
    """A one-page PDF with a correct cross-reference table (and optional padding in a comment)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    if padding:
        out += b"%" + b"x" * padding + b"\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_office(main_type: str, part: str, body: bytes, extra: dict[str, bytes] | None = None,
                prolog: str = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>') -> bytes:
    manifest = (
        prolog +
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{part}" ContentType="{main_type}"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        f'Target="{part}"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", manifest)
        archive.writestr("_rels/.rels", rels)
        archive.writestr(part, body)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def make_docx() -> bytes:
    return make_office(DOCX_MAIN, "word/document.xml", (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>Báo cáo tình hình kinh tế - xã hội</w:t></w:r></w:p></w:body></w:document>").encode())


def make_xlsx() -> bytes:
    return make_office(XLSX_MAIN, "xl/workbook.xml", (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheets><sheet name="Số liệu" sheetId="1"/></sheets></workbook>').encode())


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def declare_huge(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size that the ZIP's directory declares for its first entry."""
    at = data.find(b"PK\x01\x02")
    return data[:at + 24] + struct.pack("<L", size) + data[at + 28:]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def secretary(browser: Browser) -> dict[str, str]:
    return api_token(browser, "thuky")


@pytest.fixture
def meeting(browser: Browser, secretary: dict[str, str]) -> int:
    response = browser.post("/api/meetings", json=plan(), headers=secretary)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def stored_files(settings: Settings) -> list[Path]:
    folder = settings.var_dir / "documents"
    return sorted(folder.iterdir()) if folder.exists() else []


def listing(browser: Browser, meeting: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = browser.get(f"/api/meetings/{meeting}/documents", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- uploads --------------------------------------------------------------------------------


def test_a_secretary_attaches_pdf_docx_and_xlsx_through_the_page(browser: Browser, meeting: int, secretary: dict[str, str], settings: Settings) -> None:
    browser.login("thuky")
    files = [("Báo cáo tuần.pdf", make_pdf(), "application/pdf"), ("Kế hoạch.docx", make_docx(), DOCX_TYPE),
             ("Số liệu.xlsx", make_xlsx(), XLSX_TYPE)]
    for name, data, kind in files:
        page = browser.submit(f"/meetings/{meeting}/documents", {"action": "upload", "title": ""}, files={"file": (name, data, kind)})
        assert page.status_code == 200 and str(page.url).endswith("?done=upload"), page.text[:2000]
        assert name.rsplit(".", 1)[0] in page.text
    items = listing(browser, meeting, secretary)
    assert [(i["filename"], i["content_type"], i["size"]) for i in items] == [(n, k, len(d)) for n, d, k in files]
    assert [i["title"] for i in items] == ["Báo cáo tuần", "Kế hoạch", "Số liệu"]
    assert {p.name for p in stored_files(settings)} == {_sha(d) for _, d, _ in files}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_download_is_the_file_with_safe_headers_and_a_vietnamese_name(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    data = make_docx()
    created = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("Biên bản họp.docx", data, DOCX_TYPE)},
                           data={"title": "Biên bản"}, headers=secretary)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "file" and body["title"] == "Biên bản" and body["content_type"] == DOCX_TYPE
    browser.login("thuky")
    response = browser.get(f"/meetings/{meeting}/documents/{body['id']}")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == DOCX_TYPE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('Biên bản họp.docx', safe='')}" in disposition
    assert 'filename="Bien ban hop.docx"' in disposition


def test_a_name_that_lies_is_corrected_to_what_the_file_is(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    created = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("C:\\Users\\thu\\so-lieu.pdf", make_xlsx(), "application/pdf")},
                           headers=secretary)
    assert created.status_code == 201, created.text
    assert created.json()["filename"] == "so-lieu.xlsx" and created.json()["content_type"] == XLSX_TYPE


def test_an_invited_endpoint_downloads_and_an_uninvited_one_is_told_nothing(app: Starlette, browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    data = make_pdf()
    doc = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("a.pdf", data, "application/pdf")}, headers=secretary).json()
    with other_browser(app) as ward:
        ward.login("ct.ninh-kieu.tan-an")
        assert ward.get(f"/meetings/{meeting}/documents/{doc['id']}").content == data
        page = ward.get(f"/meetings/{meeting}/documents")
        assert page.status_code == 200 and "a.pdf" in page.text and 'value="upload"' not in page.text
    with other_browser(app) as stranger:
        token = api_token(stranger, "ct.cai-rang")
        assert stranger.get(f"/api/meetings/{meeting}/documents", headers=token).status_code == 404
        stranger.login("ct.cai-rang")
        assert stranger.get(f"/meetings/{meeting}/documents/{doc['id']}").status_code == 404
        assert stranger.get(f"/meetings/{meeting}/documents").status_code == 404
    assert "/login" in str(browser.get(f"/meetings/{meeting}/documents/{doc['id']}").url)  # not logged in


def test_a_document_of_another_meeting_is_not_served_under_this_one(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    doc = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("a.pdf", make_pdf(), "application/pdf")}, headers=secretary).json()
    other = browser.post("/api/meetings", json=plan(start=at(monday(), 14), end=at(monday(), 15)), headers=secretary).json()
    browser.login("thuky")
    assert browser.get(f"/meetings/{other['id']}/documents/{doc['id']}").status_code == 404


def test_someone_who_may_only_see_the_meeting_cannot_attach(app: Starlette, browser: Browser, meeting: int, settings: Settings) -> None:
    with other_browser(app) as official:
        token = api_token(official, "canbo.tanan")
        official.login("canbo.tanan")
        page = official.submit(f"/meetings/{meeting}/documents", {"action": "upload"}, files={"file": ("a.pdf", make_pdf(), "application/pdf")})
        assert page.status_code == 403
        api = official.post(f"/api/meetings/{meeting}/documents", files={"file": ("a.pdf", make_pdf(), "application/pdf")}, headers=token)
        assert api.status_code == 403 and api.json()["error"]["code"] == "forbidden"
        link = official.post(f"/api/meetings/{meeting}/documents", json={"url": "https://example.org", "title": "x"}, headers=token)
        assert link.status_code == 403
        assert listing(official, meeting, token) == []
    assert stored_files(settings) == []


# --- refused files --------------------------------------------------------------------------


BAD_FILES = [
    pytest.param("bao-cao.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode", id="renamed-exe"),
    pytest.param("ke-hoach.docx", b"<!doctype html><html><script>alert(1)</script></html>", id="renamed-html"),
    pytest.param("so-lieu.xlsx", make_zip({"readme.txt": b"not a workbook"}), id="plain-zip"),
    pytest.param("macro.docx", make_office("application/vnd.ms-word.document.macroEnabled.main+xml", "word/document.xml", b"<x/>"), id="macro-docx"),
    pytest.param("truncated.docx", make_docx()[:200], id="damaged-zip"),
    pytest.param("many.xlsx", make_zip({f"part{i}.xml": b"" for i in range(1001)}), id="too-many-entries"),
    pytest.param("bomb.docx", declare_huge(make_docx(), 300 * 1024 * 1024), id="declared-300MB"),
    pytest.param("entities.docx", make_office(DOCX_MAIN, "word/document.xml", b"<x/>",
                                              prolog='<!DOCTYPE t [<!ENTITY a "aaaa">]>'), id="dtd"),
    pytest.param("empty.pdf", b"", id="empty"),
]


@pytest.mark.parametrize(("name", "data"), BAD_FILES)
def test_a_file_that_is_not_a_pdf_docx_or_xlsx_is_refused_and_nothing_is_kept(
    browser: Browser, meeting: int, secretary: dict[str, str], settings: Settings, name: str, data: bytes
) -> None:
    api = browser.post(f"/api/meetings/{meeting}/documents", files={"file": (name, data, "application/pdf")}, headers=secretary)
    assert api.status_code == 422, api.text
    assert api.json()["error"]["code"] == "invalid" and "file" in api.json()["error"]["fields"]
    browser.login("thuky")
    page = browser.submit(f"/meetings/{meeting}/documents", {"action": "upload"}, files={"file": (name, data, "application/pdf")})
    assert page.status_code == 422 and 'id="file-error"' in page.text
    assert listing(browser, meeting, secretary) == []
    assert stored_files(settings) == []


def test_no_file_chosen_is_an_error_on_the_form(browser: Browser, meeting: int) -> None:
    browser.login("thuky")
    page = browser.submit(f"/meetings/{meeting}/documents", {"action": "upload"})
    assert page.status_code == 422 and 'id="file-error"' in page.text


@pytest.fixture
def small_app(settings: Settings) -> Iterator[Starlette]:
    application = create_app(settings.model_copy(update={"max_document_bytes": 64 * 1024}))
    yield application
    application.state.giaoban.db.dispose()


def test_a_file_over_the_limit_is_refused_and_nothing_is_kept(small_app: Starlette, settings: Settings) -> None:
    with Browser(small_app, raise_server_exceptions=False) as client:
        secretary = api_token(client, "thuky")
        meeting = client.post("/api/meetings", json=plan(), headers=secretary).json()["id"]
        just_over = make_pdf(padding=80 * 1024)  # under the body limit: the upload itself is measured
        api = client.post(f"/api/meetings/{meeting}/documents", files={"file": ("lon.pdf", just_over, "application/pdf")}, headers=secretary)
        assert api.status_code == 413 and api.json()["error"]["code"] == "too_large", api.text
        assert "64 KiB" in api.json()["error"]["fields"]["file"]
        far_over = make_pdf(padding=300 * 1024)  # over the body limit: refused before it is read
        assert client.post(f"/api/meetings/{meeting}/documents", files={"file": ("x.pdf", far_over, "application/pdf")},
                           headers=secretary).status_code == 413
        client.login("thuky")
        page = client.submit(f"/meetings/{meeting}/documents", {"action": "upload"}, files={"file": ("lon.pdf", just_over, "application/pdf")})
        assert page.status_code == 413 and 'id="file-error"' in page.text
        page = client.submit(f"/meetings/{meeting}/documents", {"action": "upload"}, files={"file": ("x.pdf", far_over, "application/pdf")})
        assert page.status_code == 413 and "text/html" in page.headers["content-type"]
        assert listing(client, meeting, secretary) == []
    assert stored_files(settings) == []


def test_uploads_may_exceed_the_small_body_limit_that_other_paths_keep(browser: Browser, meeting: int, secretary: dict[str, str], app: Starlette) -> None:
    small = app.state.giaoban.settings.max_body_bytes
    big = make_pdf(padding=small + 1024)
    created = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("lon.pdf", big, "application/pdf")}, headers=secretary)
    assert created.status_code == 201, created.text[:500]
    assert created.json()["size"] == len(big)
    other = browser.post(f"/api/meetings/{meeting}/cancel", content=b"x" * (small + 1), headers={**secretary, "content-type": "application/json"})
    assert other.status_code == 413
    not_post = browser.post(f"/meetings/{meeting}/documents/1", content=b"x" * (small + 1), headers={"content-type": "application/pdf"})
    assert not_post.status_code == 413


# --- links, removal -------------------------------------------------------------------------


def test_links_are_added_listed_and_removed(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    created = browser.post(f"/api/meetings/{meeting}/documents", json={"url": "https://cantho.gov.vn/van-ban?id=1", "title": "Văn bản chỉ đạo"},
                           headers=secretary)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "link" and created.json()["download_url"] is None
    browser.login("thuky")
    page = browser.get(f"/meetings/{meeting}/documents")
    assert 'href="https://cantho.gov.vn/van-ban?id=1"' in page.text and "Văn bản chỉ đạo" in page.text
    assert browser.get(f"/meetings/{meeting}/documents/{created.json()['id']}").status_code == 404  # a link has no file
    assert browser.delete(f"/api/meetings/{meeting}/documents/{created.json()['id']}", headers=secretary).status_code == 204
    assert listing(browser, meeting, secretary) == []
    assert browser.delete(f"/api/meetings/{meeting}/documents/{created.json()['id']}", headers=secretary).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "javascript:alert(1)", "title": "x"}, "url"),
    ({"url": "ftp://example.org/a.pdf", "title": "x"}, "url"),
    ({"url": "https://", "title": "x"}, "url"),
    ({"url": "https://example.org/a b", "title": "x"}, "url"),
    ({"url": "https://user:secret@example.org/", "title": "x"}, "url"),
    ({"url": "https://example.org/" + "a" * 2000, "title": "x"}, "url"),
    ({"url": "https://example.org/", "title": "  "}, "title"),
    ({"url": "https://example.org/", "title": "t" * 201}, "title"),
])
def test_a_bad_link_names_its_field_and_nothing_is_added(browser: Browser, meeting: int, secretary: dict[str, str], body: dict[str, str], field: str) -> None:
    response = browser.post(f"/api/meetings/{meeting}/documents", json=body, headers=secretary)
    assert response.status_code == 422 and field in response.json()["error"]["fields"], response.text
    browser.login("thuky")
    page = browser.submit(f"/meetings/{meeting}/documents", {"action": "link", **body})
    assert page.status_code == 422
    assert ('id="url-error"' if field == "url" else 'id="link-title-error"') in page.text
    assert listing(browser, meeting, secretary) == []


def test_the_same_file_is_stored_once_and_removed_with_its_last_document(browser: Browser, meeting: int, secretary: dict[str, str], settings: Settings) -> None:
    data = make_pdf()
    first = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("a.pdf", data, "application/pdf")}, headers=secretary).json()
    second = browser.post(f"/api/meetings/{meeting}/documents", files={"file": ("b.pdf", data, "application/pdf")}, headers=secretary).json()
    assert [p.name for p in stored_files(settings)] == [_sha(data)]
    browser.login("thuky")
    page = browser.submit(f"/meetings/{meeting}/documents", {"action": "delete", "document": str(first["id"])})
    assert page.status_code == 200 and str(page.url).endswith("?done=delete")
    assert [p.name for p in stored_files(settings)] == [_sha(data)]
    assert browser.delete(f"/api/meetings/{meeting}/documents/{second['id']}", headers=secretary).status_code == 204
    assert stored_files(settings) == []


def test_the_api_description_offers_both_bodies(browser: Browser) -> None:
    spec = browser.get("/api/openapi.json").json()
    post = spec["paths"]["/api/meetings/{id}/documents"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert "413" in post["responses"] and "delete" in spec["paths"]["/api/meetings/{id}/documents/{doc_id}"]
