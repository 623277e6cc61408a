"""A real IMAP server for the tests (pytest plugin, fixture ``dovecot``): Debian's dovecot,
on 127.0.0.1 only, without TLS, with one mailbox (``MAILBOX_USER``) stored as a maildir.

Each test gets its own server in a throwaway directory, stopped and deleted at teardown.
Under root (CI containers) the server's processes and the mailbox run as unprivileged
system users, so the directory is made in /tmp (pytest's own tmp dirs are closed to them)
and handed to the mailbox user.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

DOVECOT = Path("/usr/sbin/dovecot")
MAILBOX_USER = "giaoban@cantho.gov.vn.test"
MAILBOX_PASSWORD = "mat-khau thu/nghiem@1"  # characters a URL must encode
START_TIMEOUT_SECONDS = 30
INSTALL_HINT = "Run the tests with `make test`, which installs Debian's `dovecot-imapd` package."


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _account(*names: str) -> pwd.struct_passwd:
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail(f"Running as root, but none of the system users {', '.join(names)} exists to run dovecot as. {INSTALL_HINT}",
                pytrace=False)


class DovecotServer:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.host = "127.0.0.1"
        self.port = port
        self.log_file = root / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        from urllib.parse import quote

        return f"imap://{quote(MAILBOX_USER, safe='')}:{quote(MAILBOX_PASSWORD, safe='')}@{self.host}:{self.port}"

    def configure(self) -> None:
        if os.geteuid() == 0:
            internal = _account("dovecot", "postgres", "nobody")
            login = _account("dovenull", "nobody")
            mail = _account("postgres", "nobody")
        else:
            internal = login = mail = pwd.getpwuid(os.geteuid())
        (self.root / "run").mkdir()
        (self.root / "mail").mkdir()
        (self.root / "users").write_text(
            f"{MAILBOX_USER}:{{PLAIN}}{MAILBOX_PASSWORD}:{mail.pw_uid}:{mail.pw_gid}::{self.root}::\n")
        (self.root / "dovecot.conf").write_text(f"""\
# giaoban test server: loopback only, no TLS, one passwd-file user
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_file}
info_log_path = {self.log_file}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal.pw_name}
default_internal_group = {_group(internal)}
default_login_user = {login.pw_name}
first_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
mail_location = maildir:{self.root}/mail
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.root}/users
}}
userdb {{
  driver = passwd-file
  args = {self.root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
""")
        (self.root / "state").mkdir()
        self.root.chmod(0o755)  # the login and auth processes read the users file
        if os.geteuid() == 0:
            for path in (self.root, self.root / "mail", self.root / "users"):
                os.chown(path, mail.pw_uid, mail.pw_gid)

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                self.fail_with_log(f"dovecot exited with status {self.process.returncode}")
            try:
                with imaplib.IMAP4(self.host, self.port, timeout=5) as conn:
                    conn.login(MAILBOX_USER, MAILBOX_PASSWORD)
                    conn.select("INBOX")
                    conn.logout()
                return
            except (OSError, imaplib.IMAP4.error) as exc:
                if time.monotonic() > deadline:
                    self.fail_with_log(f"dovecot did not accept a login within {START_TIMEOUT_SECONDS}s: {exc}")
                time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def fail_with_log(self, message: str) -> NoReturn:
        try:
            log = self.log_file.read_text(errors="replace")
        except OSError:
            log = "(no log)"
        self.stop()
        pytest.fail(f"{message}\n--- dovecot log ---\n{log}", pytrace=False)

    # --- for the tests ---------------------------------------------------------------------

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(MAILBOX_USER, MAILBOX_PASSWORD)
        conn.select("INBOX")
        return conn

    def deliver(self, raw: bytes) -> None:
        """Put a mail in INBOX, unseen (as the mail server's delivery would)."""
        conn = self.connect()
        try:
            typ, data = conn.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self) -> list[set[str]]:
        """The flags of every mail in INBOX, in order."""
        conn = self.connect()
        try:
            typ, data = conn.search(None, "ALL")
            assert typ == "OK", data
            result = []
            for number in data[0].split():
                typ, fetched = conn.fetch(number.decode(), "(FLAGS)")
                assert typ == "OK", fetched
                flags = imaplib.ParseFlags(fetched[0] if isinstance(fetched[0], bytes) else b"")
                result.append({f.decode() for f in flags})
            return result
        finally:
            conn.logout()


def _group(account: pwd.struct_passwd) -> str:
    import grp

    return grp.getgrgid(account.pw_gid).gr_name


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    if not DOVECOT.is_file():
        pytest.fail(f"{DOVECOT} not found. {INSTALL_HINT}", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="giaoban-imap-"))
    server = DovecotServer(root, free_port())
    try:
        server.configure()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
