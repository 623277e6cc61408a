"""Invitation mails: the iMIP structure Outlook, Zimbra and Thunderbird accept, read back with
Python's own parser, and the Vietnamese bodies."""

from __future__ import annotations

import datetime as dt
import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from server.i18n import Catalogues
from server.mail.compose import (
    ComposeError,
    InvitationContext,
    RsvpLinks,
    compose_imip,
    compose_notice,
    ics_method,
    render_invitation,
)
from tests.server.mail.conftest import SERVICE_MAILBOX, ics

SUBJECT = "Giấy mời: Giao ban tháng 5 — Phường Tân An, 12/05/2025 08:00"


def build(object_method: str = "REQUEST", **overrides: object) -> EmailMessage:
    """An invitation whose ICS says METHOD:``object_method`` (``method=`` can be overridden)."""
    values: dict[str, object] = dict(
        sender=SERVICE_MAILBOX, recipient="tran.b@cantho.gov.vn.test", recipient_name="Trần Thị B", subject=SUBJECT,
        text="Kính gửi: Trần Thị B\nTrân trọng kính mời.", html="<p>Kính gửi: <b>Trần Thị B</b></p>", ics=ics(object_method),
        method=object_method, date=dt.datetime(2025, 5, 5, 1, 0, tzinfo=dt.UTC),
    )
    values.update(overrides)
    return compose_imip(**values)  # type: ignore[arg-type]


def parsed(message: EmailMessage) -> EmailMessage:
    """What a mail client gets: the bytes on the wire, parsed again."""
    data = message.as_bytes()
    data.decode("ascii")  # base64 parts and encoded headers: 7-bit clean
    back = email.message_from_bytes(data, policy=default_policy)
    assert isinstance(back, EmailMessage)
    return back


def test_the_mime_tree_is_mixed_alternative_plus_attachment() -> None:
    message = parsed(build())

    assert message.get_content_type() == "multipart/mixed"
    outer = list(message.iter_parts())
    assert [p.get_content_type() for p in outer] == ["multipart/alternative", "application/ics"]
    inner = list(outer[0].iter_parts())
    assert [p.get_content_type() for p in inner] == ["text/plain", "text/html", "text/calendar"]
    for part in [*inner, outer[1]]:
        assert part["Content-Transfer-Encoding"] == "base64"
        assert not part.is_multipart()


def test_every_part_reads_back_exactly() -> None:
    message = parsed(build())
    alternative = next(message.iter_parts())
    plain, html, calendar = alternative.iter_parts()

    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content() == "Kính gửi: Trần Thị B\r\nTrân trọng kính mời.\r\n"  # text in mail is CRLF
    assert html.get_content_charset() == "utf-8"
    assert "<b>Trần Thị B</b>" in html.get_content()
    # The calendar part: the very bytes given (CRLF and folding intact), method and charset set.
    assert calendar.get_payload(decode=True) == ics("REQUEST")
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_filename() is None and calendar.get_content_disposition() is None
    # The attachment: the same object as invite.ics.
    attachment = list(message.iter_parts())[1]
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_param("name") == "invite.ics"
    assert attachment.get_payload(decode=True) == ics("REQUEST")


def test_headers_and_the_vietnamese_subject() -> None:
    message = build()
    raw_headers = message.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?utf-8?" in raw_headers  # RFC 2047: the subject and names are encoded, not raw UTF-8
    back = parsed(message)

    assert back["Subject"] == SUBJECT
    assert back["From"].addresses[0].addr_spec == "giaoban@cantho.gov.vn.test"
    assert back["From"].addresses[0].display_name == "Giao Ban Cần Thơ"
    assert back["To"].addresses[0].addr_spec == "tran.b@cantho.gov.vn.test"
    assert back["To"].addresses[0].display_name == "Trần Thị B"
    assert back["Date"].datetime == dt.datetime(2025, 5, 5, 1, 0, tzinfo=dt.UTC)
    assert back["Content-Class"] == "urn:content-classes:calendarmessage"
    assert back["Auto-Submitted"] == "auto-generated"
    assert back["MIME-Version"] == "1.0"
    message_id = back["Message-ID"]
    assert message_id.startswith("<") and message_id.endswith("@cantho.gov.vn.test>")
    assert message_id != build()["Message-ID"]  # a fresh one per message


def test_the_method_parameter_is_the_method_inside() -> None:
    cancel = parsed(build("CANCEL"))
    calendar = list(next(cancel.iter_parts()).iter_parts())[2]
    assert calendar.get_param("method") == "CANCEL"
    assert b"METHOD:CANCEL" in calendar.get_payload(decode=True)

    with pytest.raises(ComposeError, match="METHOD:CANCEL"):
        build("CANCEL", method="REQUEST")
    # Case does not matter; the object's spelling is used.
    lower = build(method="request")
    assert list(next(parsed(lower).iter_parts()).iter_parts())[2].get_param("method") == "REQUEST"


@pytest.mark.parametrize(
    "bad",
    [
        b"BEGIN:VEVENT\r\nEND:VEVENT\r\n",
        ics().replace(b"METHOD:REQUEST\r\n", b""),
        ics().replace(b"METHOD:REQUEST\r\n", b"METHOD:REQUEST\r\nMETHOD:CANCEL\r\n"),
        ics().replace(b"METHOD:REQUEST", b"METHOD:INVITE"),
        "Giao ban".encode("utf-16"),
    ],
)
def test_objects_without_exactly_one_known_method_are_refused(bad: bytes) -> None:
    with pytest.raises(ComposeError):
        ics_method(bad)


def test_a_folded_method_line_is_read() -> None:
    assert ics_method(ics().replace(b"METHOD:REQUEST", b"METHOD:REQ\r\n UEST")) == "REQUEST"


@pytest.mark.parametrize("recipient", ["", "not-an-address", "a@b@c", "tran.b@cantho.gov.vn.test\r\nBcc: x@y", "trần@cantho.vn"])
def test_unusable_recipients_are_refused(recipient: str) -> None:
    with pytest.raises(ComposeError):
        build(recipient=recipient)


def test_a_notice_without_calendar_is_text_and_html() -> None:
    message = parsed(compose_notice(sender=SERVICE_MAILBOX, recipient="a@cantho.gov.vn.test", subject="Đã ghi nhận",
                                    text="Đã ghi nhận.", html="<p>Đã ghi nhận.</p>"))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Đã ghi nhận"


def context(**overrides: object) -> InvitationContext:
    values: dict[str, object] = dict(
        notice="invitation", title="Giao ban tháng 5 <khẩn>", start=dt.datetime(2025, 5, 12, 1, 0, tzinfo=dt.UTC),
        end=dt.datetime(2025, 5, 12, 3, 0, tzinfo=dt.UTC), host="UBND Phường Tân An", chair="Trần Văn Minh",
        recipient_name="Phạm Văn Tâm", join_url="https://giaoban.test/join/abc?x=1&y=2",
        agenda=["Báo cáo kết quả tháng 4", "Nhiệm vụ tháng 5"],
        rsvp=RsvpLinks(accept="https://giaoban.test/r/a", tentative="https://giaoban.test/r/t",
                       decline="https://giaoban.test/r/d", delegate="https://giaoban.test/r/g"),
    )
    values.update(overrides)
    return InvitationContext(**values)  # type: ignore[arg-type]


def test_the_invitation_reads_in_vietnamese_with_local_time() -> None:
    mail = render_invitation(context(), Catalogues().get("vi"))

    # 01:00 UTC is 08:00 in Cần Thơ; dd/mm/yyyy, 24-hour clock, the weekday in Vietnamese.
    assert "12/05/2025 08:00" in mail.subject
    for body in (mail.text, mail.html):
        assert "Thứ Hai, ngày 12/05/2025, 08:00–10:00" in body
        assert "Đơn vị chủ trì" in body and "UBND Phường Tân An" in body
        assert "Chương trình họp" in body and "Nhiệm vụ tháng 5" in body
    for url in ("https://giaoban.test/r/a", "https://giaoban.test/r/t", "https://giaoban.test/r/d", "https://giaoban.test/r/g"):
        assert f'href="{url}"' in mail.html and url in mail.text
    # HTML is escaped in the HTML part only; the plain text keeps the characters.
    assert "Giao ban tháng 5 &lt;khẩn&gt;" in mail.html and "Giao ban tháng 5 <khẩn>" in mail.text
    assert 'href="https://giaoban.test/join/abc?x=1&amp;y=2"' in mail.html
    assert "https://giaoban.test/join/abc?x=1&y=2" in mail.text
    assert "<table" in mail.html and "<style>" in mail.html


def test_a_cancellation_asks_for_no_answer_and_offers_no_link() -> None:
    mail = render_invitation(context(notice="cancellation", join_url="", rsvp=None), Catalogues().get("en"))
    assert mail.subject.startswith("Cancelled: Giao ban tháng 5 <khẩn>")
    assert "https://giaoban.test/r/" not in mail.html + mail.text
    assert "Join the meeting" not in mail.html


def test_a_meeting_past_midnight_names_the_end_day() -> None:
    mail = render_invitation(context(end=dt.datetime(2025, 5, 12, 18, 0, tzinfo=dt.UTC)), Catalogues().get("en"))
    assert "08:00–13/05/2025 01:00" in mail.text


def test_the_plain_text_uses_only_strings_the_html_has() -> None:
    """Only the HTML templates are extracted into the catalogue: a string that only the .txt
    used would never be translated."""
    templates = Path(__file__).resolve().parents[3] / "web" / "templates" / "mail"
    strings = re.compile(r'_\(\s*"([^"]+)"')
    text = set(strings.findall((templates / "invitation.txt").read_text(encoding="utf-8")))
    html = set(strings.findall((templates / "invitation.html").read_text(encoding="utf-8")))
    assert text and text <= html


def test_the_rendered_bodies_make_a_message() -> None:
    mail = render_invitation(context(), Catalogues().get("vi"))
    message = parsed(compose_imip(sender=SERVICE_MAILBOX, recipient="tam@cantho.gov.vn.test", subject=mail.subject,
                                  text=mail.text, html=mail.html, ics=ics(), method="REQUEST"))
    assert message["Subject"] == mail.subject
    plain, html, _calendar = next(message.iter_parts()).iter_parts()
    assert "Thứ Hai, ngày 12/05/2025" in plain.get_content() and "Thứ Hai, ngày 12/05/2025" in html.get_content()


def test_the_invitation_mail_matches_its_golden_file() -> None:
    """The whole message, byte for byte (MIME boundaries are random, so they are named in
    order before comparing). ``GIAOBAN_REGOLD=1`` rewrites the file after a deliberate change."""
    import os
    import re
    from pathlib import Path

    calendar = (Path(__file__).resolve().parents[1] / "calendar" / "golden" / "request.ics").read_bytes()
    mail = render_invitation(context(), Catalogues().get("vi"))
    message = compose_imip(
        sender=SERVICE_MAILBOX, recipient="tam@cantho.gov.vn.test", recipient_name="Phạm Văn Tâm", subject=mail.subject,
        text=mail.text, html=mail.html, ics=calendar, method="REQUEST",
        date=dt.datetime(2025, 5, 1, 2, 0, tzinfo=dt.UTC), message_id="<golden@cantho.gov.vn.test>",
    )
    data = message.as_bytes()
    names: dict[bytes, bytes] = {}
    data = re.sub(rb"=+\d+==", lambda m: names.setdefault(m.group(0), b"==boundary-%d==" % len(names)), data)
    path = Path(__file__).resolve().parent / "golden" / "invitation.eml"
    if os.environ.get("GIAOBAN_REGOLD") == "1":
        path.write_bytes(data)
    assert path.exists(), f"{path} is missing: GIAOBAN_REGOLD=1 pytest {__file__} -k golden writes it"
    assert data == path.read_bytes(), "the invitation mail changed; check it, then GIAOBAN_REGOLD=1 to accept"
