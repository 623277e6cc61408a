"""A real PostgreSQL server for the test run (pytest plugin, fixture ``postgres_server``).

The server is started from the installed PostgreSQL binaries in a throwaway directory,
listens on 127.0.0.1 only with trust authentication, and is stopped and deleted when the
session ends. Tests ask it for fresh empty databases with ``new_database(name)``.

PostgreSQL refuses to run as root, so under root (CI containers) initdb and pg_ctl run as
the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
INSTALL_HINT = "Run the tests with `make test`, which installs Debian's `postgresql` package."


class PostgresServer:
    """A running server; ``new_database`` hands out SQLAlchemy URLs of empty databases."""

    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port

    def admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        # CREATE DATABASE cannot run inside a transaction.
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def new_database(self, name: str) -> str:
        """Create database ``name`` (UTF-8, empty) and return its SQLAlchemy URL.

        A name already taken is an error rather than a silent reuse: two tests sharing a
        database would depend on each other's leftovers.
        """
        with self.admin_connection() as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{name}"


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl, or a test failure saying how to get them."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        # On Debian, libpq-dev's pg_config may point at /usr/bin, which has no initdb;
        # hence the check below and the fallbacks.
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versioned = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versioned, key=_major_version, reverse=True)  # newest first
    initdb_on_path = shutil.which("initdb")
    if initdb_on_path:
        candidates.append(Path(initdb_on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found via `pg_config --bindir`, "
        f"/usr/lib/postgresql/*/bin or PATH. {INSTALL_HINT}",
        pytrace=False,
    )


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    # The port may be taken again before the server binds it; the log then says so.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """Runs the PostgreSQL programs as the right OS user in a private directory."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data_dir = root / "data"
        self.log_file = root / "server.log"
        self.as_postgres_user = os.geteuid() == 0

    def prepare_root(self) -> None:
        if not self.as_postgres_user:
            return
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "Running as root, and PostgreSQL refuses root; but there is no `postgres` "
                f"system user to run it as. {INSTALL_HINT}",
                pytrace=False,
            )
        os.chown(self.root, account.pw_uid, account.pw_gid)

    def run(self, program: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self.as_postgres_user:
            if shutil.which("runuser"):
                command = ["runuser", "-u", "postgres", "--", *command]
            else:  # systems without util-linux's runuser
                command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
        # PG* variables of the caller (PGDATA, PGPORT...) must not redirect our server.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            command,
            cwd=self.root,  # the postgres user may not be allowed into the caller's directory
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def initdb(self, port: int) -> None:
        result = self.run(
            "initdb",
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--encoding", "UTF8",
            "--locale", "C",
            "--auth", "trust",
            "--no-sync",
            timeout=120,
        )
        if result.returncode != 0:
            pytest.fail(f"initdb failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
        # Only TCP from this machine; trust is fine for a server that lives for one test run.
        (self.data_dir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# giaoban test server\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                # Durability is pointless for a database deleted at the end of the run.
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )

    def start(self) -> None:
        try:
            result = self.run(
                "pg_ctl",
                "start",
                "--pgdata", str(self.data_dir),
                "--log", str(self.log_file),
                "--wait",
                "--timeout", str(START_TIMEOUT_SECONDS),
                timeout=START_TIMEOUT_SECONDS + 15,
            )
        except subprocess.TimeoutExpired:
            self.fail_with_log(f"pg_ctl start did not return within {START_TIMEOUT_SECONDS + 15}s")
        if result.returncode != 0:
            self.fail_with_log(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        for mode in ("fast", "immediate"):  # immediate only if fast did not stop it
            result = self.run(
                "pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode,
                "--wait", "--timeout", "30",
                timeout=45,
            )
            if result.returncode == 0:
                return

    def server_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def fail_with_log(self, message: str) -> NoReturn:
        log = self.server_log()
        pytest.fail(f"{message}\n--- PostgreSQL server log ---\n{log}", pytrace=False)


def wait_until_accepting(server: PostgresServer, process: ServerProcess) -> None:
    """pg_ctl --wait already waits; this also proves TCP on 127.0.0.1 and our auth work."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with server.admin_connection() as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                process.fail_with_log(f"PostgreSQL did not accept connections: {exc}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="giaoban-pg-"))
    process = ServerProcess(bindir, root)
    try:
        process.prepare_root()
        port = free_port()
        process.initdb(port)
        process.start()
        server = PostgresServer(port)
        wait_until_accepting(server, process)
        yield server
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
