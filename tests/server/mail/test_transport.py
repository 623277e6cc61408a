"""Transports: one SMTP URL (plain, STARTTLS, implicit TLS, URL-encoded credentials) over a
real SMTP server, TLS sessions with a certificate made here, and .eml files when no server is
configured."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.mail.transport import DeliveryError, FileTransport, SmtpTransport, classify, make_transport
from server.mail.urls import InvalidSmtpUrl, SmtpConfig, parse_smtp_url
from tests.server.mail.conftest import ENVELOPE_FROM, REFUSED, Recorder, SmtpServer, free_port, invitation

pytestmark = pytest.mark.anyio


# --- the URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", SmtpConfig("plain", "127.0.0.1", 2525)),
        ("smtp://relay.cantho.gov.vn", SmtpConfig("plain", "relay.cantho.gov.vn", 25)),
        ("smtp+starttls://giaoban:p%40ss%3Aw%2Frd@mail.cantho.gov.vn:587",
         SmtpConfig("starttls", "mail.cantho.gov.vn", 587, "giaoban", "p@ss:w/rd")),
        ("smtp+starttls://giaoban%40cantho.gov.vn:secret@mail.cantho.gov.vn",
         SmtpConfig("starttls", "mail.cantho.gov.vn", 587, "giaoban@cantho.gov.vn", "secret")),
        ("smtps://giaoban:secret@mail.cantho.gov.vn:465?timeout=20&helo=giaoban.cantho.gov.vn",
         SmtpConfig("tls", "mail.cantho.gov.vn", 465, "giaoban", "secret", 20.0, "giaoban.cantho.gov.vn")),
        ("SMTPS://mail.cantho.gov.vn", SmtpConfig("tls", "mail.cantho.gov.vn", 465)),
        ("smtp://[::1]:25", SmtpConfig("plain", "::1", 25)),
    ],
)
def test_smtp_urls_are_read(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.cantho.gov.vn", "scheme http://"),
        ("mail.cantho.gov.vn:25", "scheme"),
        ("", "scheme nothing"),
        ("smtp://", "no host"),
        ("smtp://mail.cantho.gov.vn:port", "not a valid URL"),
        ("smtp://mail.cantho.gov.vn:99999", "not a valid URL"),
        ("smtp://giaoban:secret@mail.cantho.gov.vn", "without encryption"),
        ("smtps://:secret@mail.cantho.gov.vn", "no user name"),
        ("smtps://mail.cantho.gov.vn/inbox", "path"),
        ("smtps://mail.cantho.gov.vn?verify=no", "unknown parameters: verify"),
        ("smtps://mail.cantho.gov.vn?timeout=soon", "timeout must be a number"),
        ("smtps://mail.cantho.gov.vn?timeout=0", "between 0 and 600"),
    ],
)
def test_bad_urls_say_what_is_wrong_and_never_show_the_password(url: str, reason: str) -> None:
    with pytest.raises(InvalidSmtpUrl) as caught:
        parse_smtp_url(url)
    assert "GIAOBAN_SMTP_URL" in str(caught.value) and reason in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_description_and_repr_hide_the_password() -> None:
    config = parse_smtp_url("smtp+starttls://giaoban:hidden-pass@mail.cantho.gov.vn:587")
    assert config.describe() == "smtp+starttls://giaoban:***@mail.cantho.gov.vn:587"
    assert "hidden-pass" not in repr(config)


def test_no_url_means_files(tmp_path: Path) -> None:
    assert isinstance(make_transport("", tmp_path / "outbox"), FileTransport)
    assert isinstance(make_transport("smtp://127.0.0.1:25", tmp_path / "outbox"), SmtpTransport)


# --- plain SMTP -----------------------------------------------------------------------------


async def test_a_message_arrives_byte_for_byte(smtp_server: SmtpServer, recorder: Recorder) -> None:
    message = invitation("tran.b@cantho.gov.vn.test")
    data = message.as_bytes()
    transport = SmtpTransport.from_url(smtp_server.url)
    try:
        for _ in range(2):  # two mails over one connection
            await transport.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test",
                                 message_id=message["Message-ID"], data=data)
    finally:
        await transport.release()
    assert [(r.mail_from, r.rcpt_tos, r.data) for r in recorder.received] == [
        (ENVELOPE_FROM, ["tran.b@cantho.gov.vn.test"], data)] * 2


async def test_failures_are_classified(smtp_server: SmtpServer, recorder: Recorder) -> None:
    recorder.refuse_once["busy@cantho.gov.vn.test"] = "450 4.2.1 mailbox busy"
    transport = SmtpTransport.from_url(smtp_server.url)
    data = invitation(REFUSED).as_bytes()
    with pytest.raises(DeliveryError) as refused:
        await transport.send(sender=ENVELOPE_FROM, recipient=REFUSED, message_id="<x@y>", data=data)
    assert refused.value.kind == "permanent" and "550 5.1.1" in str(refused.value)
    with pytest.raises(DeliveryError) as busy:
        await transport.send(sender=ENVELOPE_FROM, recipient="busy@cantho.gov.vn.test", message_id="<x@y>", data=data)
    assert busy.value.kind == "transient" and "450" in str(busy.value)
    # After a refusal the next mail still goes (a fresh connection).
    await transport.send(sender=ENVELOPE_FROM, recipient="busy@cantho.gov.vn.test", message_id="<x@y>", data=data)
    await transport.release()
    assert len(recorder.received) == 1

    smtp_server.stop()
    with pytest.raises(DeliveryError) as down:
        await transport.send(sender=ENVELOPE_FROM, recipient="busy@cantho.gov.vn.test", message_id="<x@y>", data=data)
    assert down.value.kind == "unavailable"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b")]), "permanent"),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "mailbox full", "a@b")]), "transient"),
        (aiosmtplib.SMTPDataError(554, "rejected as spam"), "permanent"),
        (aiosmtplib.SMTPDataError(451, "local error"), "transient"),
        (aiosmtplib.SMTPResponseException(421, "closing"), "unavailable"),
        (aiosmtplib.SMTPSenderRefused(553, "not yours", "giaoban@x"), "unavailable"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), "unavailable"),
        (aiosmtplib.SMTPConnectError("refused"), "unavailable"),
        (aiosmtplib.SMTPServerDisconnected("gone"), "unavailable"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), "unavailable"),
        (ConnectionRefusedError(111, "Connection refused"), "unavailable"),
        (ssl.SSLCertVerificationError("self-signed"), "unavailable"),
    ],
)
def test_each_smtp_error_has_a_kind(error: Exception, kind: str) -> None:
    assert classify(error).kind == kind


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate[1], certificate[0])
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[1]))


class Logins:
    """aiosmtpd authenticator: accepts one user name and password, remembers the attempts."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def __call__(self, server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        ok = (login, password) == ("giaoban@cantho.gov.vn.test", "mật khẩu:/@")
        self.seen.append((login, password, session.ssl is not None))  # type: ignore[attr-defined]
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


CREDENTIALS = "giaoban%40cantho.gov.vn.test:m%E1%BA%ADt%20kh%E1%BA%A9u%3A%2F%40"  # the password is URL-encoded UTF-8


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[SmtpServer, Logins]]:
    logins = Logins()
    server = SmtpServer(Recorder(), free_port(), tls_context=server_context(certificate), require_starttls=True,
                        authenticator=logins, auth_require_tls=True)
    server.start()
    yield server, logins
    server.stop()


async def test_starttls_then_login_then_the_message(starttls_server: tuple[SmtpServer, Logins],
                                                    certificate: tuple[Path, Path]) -> None:
    server, logins = starttls_server
    url = f"smtp+starttls://{CREDENTIALS}@127.0.0.1:{server.port}"
    transport = SmtpTransport.from_url(url, tls_context=client_context(certificate))
    message = invitation("tran.b@cantho.gov.vn.test")
    await transport.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test", message_id="<m@x>", data=message.as_bytes())
    await transport.release()

    assert logins.seen == [("giaoban@cantho.gov.vn.test", "mật khẩu:/@", True)]  # logged in over TLS only
    [received] = server.handler.received
    assert email.message_from_bytes(received.data)["Message-ID"] == message["Message-ID"]


async def test_an_untrusted_certificate_or_a_wrong_password_is_unavailable_not_a_bad_mail(
    starttls_server: tuple[SmtpServer, Logins], certificate: tuple[Path, Path]
) -> None:
    server, _logins = starttls_server
    data = invitation("tran.b@cantho.gov.vn.test").as_bytes()
    untrusted = SmtpTransport.from_url(f"smtp+starttls://{CREDENTIALS}@127.0.0.1:{server.port}")  # system CAs only
    with pytest.raises(DeliveryError) as caught:
        await untrusted.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test", message_id="<m@x>", data=data)
    assert caught.value.kind == "unavailable"
    wrong = SmtpTransport.from_url(f"smtp+starttls://giaoban:wrong@127.0.0.1:{server.port}", tls_context=client_context(certificate))
    with pytest.raises(DeliveryError) as caught:
        await wrong.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test", message_id="<m@x>", data=data)
    assert caught.value.kind == "unavailable" and "535" in str(caught.value)
    assert server.handler.received == []


async def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    logins = Logins()
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this session is TLS from the first byte.
    server = SmtpServer(Recorder(), free_port(), ssl_context=server_context(certificate), authenticator=logins,
                        auth_require_tls=False)
    server.start()
    try:
        transport = SmtpTransport.from_url(f"smtps://{CREDENTIALS}@127.0.0.1:{server.port}", tls_context=client_context(certificate))
        await transport.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test", message_id="<m@x>",
                             data=invitation("tran.b@cantho.gov.vn.test").as_bytes())
        await transport.release()
    finally:
        server.stop()
    assert [s[:2] for s in logins.seen] == [("giaoban@cantho.gov.vn.test", "mật khẩu:/@")]
    assert len(server.handler.received) == 1


# --- files ----------------------------------------------------------------------------------


async def test_files_are_written_whole_and_once_per_message(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "outbox"
    transport = FileTransport(directory)
    message = invitation("tran.b@cantho.gov.vn.test")
    for _ in range(2):  # a resend replaces the file rather than adding one
        await transport.send(sender=ENVELOPE_FROM, recipient="tran.b@cantho.gov.vn.test",
                             message_id=message["Message-ID"], data=message.as_bytes())
    [written] = list(directory.iterdir())
    assert written.name == message["Message-ID"].strip("<>") + ".eml"
    assert written.read_bytes() == message.as_bytes()
    assert transport.path_for("<../../etc/passwd@x>").parent == directory  # a Message-ID cannot leave the folder
