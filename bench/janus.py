"""Debian's Janus (1.1.x) on loopback, for comparing our SFU with it under the same load.

``Janus`` starts ``/usr/bin/janus`` in the foreground as a child process with a throw-away
configuration folder: only the VideoRoom plugin and the plain HTTP transport (on 127.0.0.1, a
free port, admin API off unless asked for), no STUN, ICE gathering on ``lo`` only. Janus 1.1.2
skips interfaces flagged IFF_LOOPBACK before it applies ``ice_enforce_list``, so the Janus
process (and only it) runs with ``bench/janus_loopback.c`` preloaded: its ``getifaddrs()``
clears that flag on ``lo``, and 127.0.0.1 becomes Janus's one and only host candidate.

``JanusSession`` / ``VideoRoomHandle`` are a small client of the Janus HTTP API (plain
long-poll): create a session, attach the VideoRoom plugin, create a room, publish with a JSEP
offer, subscribe to a feed (Janus 1.x multistream ``streams`` syntax) and start with an answer.
Every request and every wait is bounded; a session's long-poll and keepalive tasks end with it.

    with Janus() as janus:                      # janus.base_url, janus.pid
        async with JanusSession(janus.base_url) as session:
            handle = await session.attach()
            room = await handle.create_room()
            publisher_id, answer = await handle.publish(room, offer_sdp)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from bench.measure import die_with_parent

BENCH = Path(__file__).resolve().parent
SHIM_SOURCE = BENCH / "janus_loopback.c"
BUILD_DIR = BENCH / "results" / ".build"
JANUS_BINARY = "/usr/bin/janus"
# Debian's multiarch folder (x86_64-linux-gnu, aarch64-linux-gnu…) holding plugins/ and transports/
LIB = next((p.parent.parent for p in sorted(Path("/usr/lib").glob("*/janus/plugins/libjanus_videoroom.so"))),
           Path("/usr/lib/x86_64-linux-gnu/janus"))
VIDEOROOM = "janus.plugin.videoroom"


class JanusError(Exception):
    """Janus (core or plugin) answered with an error, or a process/setup step failed."""


def ensure_installed(binary: str = JANUS_BINARY) -> None:
    """Install Debian's ``janus`` package with apt-get when ``binary`` is missing (sudo unless root)."""
    if Path(binary).exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise JanusError(f"{binary} is missing and there is no apt-get: install Janus 1.1 by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing Debian's janus ({binary} is missing)", flush=True)
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "--no-install-recommends", "janus"]):
        result = subprocess.run(sudo + command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise JanusError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    if not Path(binary).exists():
        raise JanusError(f"the janus package did not install {binary}")


def version(binary: str = JANUS_BINARY) -> str:
    """Janus's version as it reports it ("1.1.2"), or "?"."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return next((ln.split("(")[-1].rstrip(")") for ln in out.splitlines() if ln.startswith("Janus version")), "?")


# -- the loopback shim ---------------------------------------------------------------------------


def build_loopback_shim(source: Path = SHIM_SOURCE, build_dir: Path = BUILD_DIR) -> Path:
    """``janus_loopback.c`` compiled to a shared object, cached by the source's hash."""
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    target = build_dir / f"janus_loopback-{digest}.so"
    if target.exists():
        return target
    build_dir.mkdir(parents=True, exist_ok=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise JanusError("gcc is needed to build bench/janus_loopback.c (apt-get install gcc)")
    with tempfile.TemporaryDirectory(dir=build_dir) as tmp:
        out = Path(tmp) / target.name
        result = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out), str(source), "-ldl"],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise JanusError(f"building {source.name} failed:\n{result.stderr}")
        os.replace(out, target)  # atomic: concurrent builds end with the same file
    return target


# -- the process ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class JanusConfig:
    """What the benchmark may vary; everything else is Janus's default."""

    http_port: int = 0  # 0: a free port
    admin: bool = False  # the admin API (handle_info counters), on 127.0.0.1 as well
    admin_port: int = 0
    admin_secret: str = field(default_factory=lambda: secrets.token_hex(8))
    rtp_port_range: str = "40000-49999"
    debug_level: int = 4  # 4 = info: a few lines per join, nothing per packet
    session_timeout: int = 60
    event_loops: int = 0  # 0: Janus's default (one loop thread per handle)
    nack_optimizations: bool = False
    extra_general: dict[str, Any] = field(default_factory=dict)
    extra_media: dict[str, Any] = field(default_factory=dict)


def _jcfg_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _jcfg(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, values in sections.items():
        lines.append(f"{name}: {{")
        lines += [f"\t{key} = {_jcfg_value(value)}" for key, value in values.items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


def _others(folder: Path, keep: str) -> str:
    """Comma-separated names of the libraries in ``folder`` other than ``keep``."""
    return ",".join(sorted(p.name for p in folder.glob("*.so") if p.name != keep))


def write_config(folder: Path, config: JanusConfig) -> None:
    plugins, transports = LIB / "plugins", LIB / "transports"
    general: dict[str, Any] = {
        "configs_folder": str(folder),
        "plugins_folder": str(plugins),
        "transports_folder": str(transports),
        "events_folder": str(LIB / "events"),
        "loggers_folder": str(LIB / "loggers"),
        "debug_level": config.debug_level,
        "debug_timestamps": True,
        "server_name": "giaoban-bench",
        "interface": "127.0.0.1",  # the address Janus writes in SDP (o=, c=); else the first NIC's
        "session_timeout": config.session_timeout,
        "hide_dependencies": True,
    }
    if config.admin:
        general["admin_secret"] = config.admin_secret
    if config.event_loops:
        general["event_loops"] = config.event_loops
    general.update(config.extra_general)
    media: dict[str, Any] = {"rtp_port_range": config.rtp_port_range, "nack_optimizations": config.nack_optimizations}
    media.update(config.extra_media)
    main = {
        "general": general,
        "certificates": {},
        "media": media,
        "nat": {"nice_debug": False, "full_trickle": False, "ice_enforce_list": "lo", "ignore_mdns": True},
        "plugins": {"disable": _others(plugins, "libjanus_videoroom.so")},
        "transports": {"disable": _others(transports, "libjanus_http.so")},
        "loggers": {"disable": _others(LIB / "loggers", "")},
        "events": {"broadcast": False},
    }
    (folder / "janus.jcfg").write_text(_jcfg(main))
    http = {
        "general": {"json": "plain", "base_path": "/janus", "http": True, "port": config.http_port, "ip": "127.0.0.1",
                    "https": False},
        "admin": {"admin_base_path": "/admin", "admin_http": config.admin, "admin_port": config.admin_port or 7088,
                  "admin_ip": "127.0.0.1", "admin_https": False},
        "cors": {},
    }
    (folder / "janus.transport.http.jcfg").write_text(_jcfg(http))
    (folder / "janus.plugin.videoroom.jcfg").write_text(_jcfg({"general": {}}))


class Running(NamedTuple):
    base_url: str
    pid: int


class Janus:
    """Janus in the foreground as a child process; ``stop()`` (or leaving the ``with``) ends it:
    SIGTERM, then SIGKILL after ``grace`` seconds, and removes its configuration folder (unless
    ``keep_folder``). Its output goes to ``log_path`` (default: in that folder). Janus gets SIGTERM
    if this process dies first (Linux prctl PR_SET_PDEATHSIG)."""

    def __init__(self, config: JanusConfig | None = None, *, binary: str = JANUS_BINARY, log_path: Path | None = None,
                 startup_timeout: float = 20.0, keep_folder: bool = False) -> None:
        self.config = config or JanusConfig()
        self.keep_folder = keep_folder
        self.binary = binary
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.folder: Path | None = None
        self.base_url = ""
        self.admin_url = ""

    @property
    def pid(self) -> int:
        if self.process is None:
            raise JanusError("Janus is not running")
        return self.process.pid

    def start(self, config: JanusConfig | None = None) -> Running:
        if self.process is not None:
            raise JanusError("Janus is already running")
        if config is not None:
            self.config = config
        if not Path(self.binary).exists():
            raise JanusError(f"{self.binary} is missing: apt-get install -y --no-install-recommends janus")
        config = self.config
        if not config.http_port:
            config.http_port = free_port()
        if config.admin and not config.admin_port:
            config.admin_port = free_port()
        shim = build_loopback_shim()
        self.folder = Path(tempfile.mkdtemp(prefix="giaoban-janus-"))
        write_config(self.folder, config)
        if self.log_path is None:
            self.log_path = self.folder / "janus.log"
        self.base_url = f"http://127.0.0.1:{config.http_port}/janus"
        self.admin_url = f"http://127.0.0.1:{config.admin_port}/admin" if config.admin else ""
        env = dict(os.environ)
        env["LD_PRELOAD"] = f"{shim} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(shim)
        command = [self.binary, "--configs-folder", str(self.folder), "--config", str(self.folder / "janus.jcfg"),
                   "--disable-colors"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=self.folder, start_new_session=True, preexec_fn=die_with_parent)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return Running(self.base_url, self.process.pid)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JanusError(f"Janus exited with {self.process.returncode} while starting; see {self.log_path}:\n"
                                 + self.log_tail())
            try:
                info = httpx.get(f"{self.base_url}/info", timeout=2).json()
                if info.get("janus") == "server_info":
                    if VIDEOROOM not in info.get("plugins", {}):
                        raise JanusError(f"Janus runs without {VIDEOROOM}; see {self.log_path}")
                    return
            except (httpx.HTTPError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise JanusError(f"Janus did not answer on {self.base_url} within {self.startup_timeout}s ({last}); "
                         f"see {self.log_path}:\n" + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        """End Janus (SIGTERM, then SIGKILL); returns its exit code. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(grace)
        if self.folder is not None and not self.keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)  # the log too, unless log_path is outside
        return process.returncode

    def __enter__(self) -> Janus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the HTTP API ---------------------------------------------------------------------------------

_transactions = itertools.count(1)


def _transaction() -> str:
    return f"t{os.getpid()}-{next(_transactions)}"


def _plugin_error(message: dict[str, Any]) -> None:
    if message.get("janus") == "error":
        error = message.get("error", {})
        raise JanusError(f"janus error {error.get('code')}: {error.get('reason')}")
    data = message.get("plugindata", {}).get("data", {})
    if "error_code" in data or data.get("videoroom") == "event" and "error" in data:
        raise JanusError(f"videoroom error {data.get('error_code')}: {data.get('error')}")


class JanusSession:
    """A Janus session over HTTP: requests by POST, events by a long-poll GET task, keepalives every
    ``keepalive`` seconds. Share one ``httpx.AsyncClient`` between many sessions of a process
    (its connection limit must allow one long-poll per session)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None, *, timeout: float = 15.0,
                 keepalive: float = 25.0, max_poll_errors: int = 5) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None))
        self.timeout = timeout
        self.keepalive = keepalive
        self.max_poll_errors = max_poll_errors
        self.id: int | None = None
        self.handles: dict[int, VideoRoomHandle] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=200)  # unsolicited events, latest last
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.id}"

    async def _post(self, url: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        body = {**body, "transaction": body.get("transaction") or _transaction()}
        response = await self.client.post(url, json=body, timeout=timeout or self.timeout)
        response.raise_for_status()
        message: dict[str, Any] = response.json()
        _plugin_error(message)
        return message

    async def create(self) -> JanusSession:
        message = await self._post(self.base_url, {"janus": "create"})
        self.id = int(message["data"]["id"])
        self._tasks = [asyncio.create_task(self._poll()), asyncio.create_task(self._keepalive())]
        return self

    async def __aenter__(self) -> JanusSession:
        return await self.create()

    async def __aexit__(self, *exc: object) -> None:
        await self.destroy()

    async def attach(self, plugin: str = VIDEOROOM) -> VideoRoomHandle:
        message = await self._post(self.url, {"janus": "attach", "plugin": plugin})
        handle = VideoRoomHandle(self, int(message["data"]["id"]))
        self.handles[handle.id] = handle
        return handle

    async def message(self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin message; returns (plugin data, jsep) from the synchronous answer or, after
        an ``ack``, from the event carrying the same transaction (within ``timeout``)."""
        transaction = _transaction()
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = waiter
        try:
            request: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
            if jsep is not None:
                request["jsep"] = jsep
            reply = await self._post(f"{self.url}/{handle_id}", request, timeout)
            if reply.get("janus") == "ack":
                reply = await asyncio.wait_for(waiter, timeout or self.timeout)
                _plugin_error(reply)
            return reply.get("plugindata", {}).get("data", {}), reply.get("jsep")
        finally:
            self._pending.pop(transaction, None)

    async def trickle_completed(self, handle_id: int) -> None:
        await self._post(f"{self.url}/{handle_id}", {"janus": "trickle", "candidate": {"completed": True}})

    async def _poll(self) -> None:
        """Long-poll for events until the session is destroyed or ``max_poll_errors`` in a row fail."""
        errors = 0
        while not self._closed and errors < self.max_poll_errors:
            try:
                response = await self.client.get(self.url, params={"maxev": 10, "rid": int(time.time() * 1000)},
                                                  timeout=self.timeout + 40)  # Janus answers within 30 s
                response.raise_for_status()
                body = response.json()
                errors = 0
            except (httpx.HTTPError, ValueError):
                errors += 1
                await asyncio.sleep(0.5)
                continue
            for event in body if isinstance(body, list) else [body]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        waiter = self._pending.get(event.get("transaction") or "")
        if waiter is not None and not waiter.done() and kind in ("event", "error"):
            waiter.set_result(event)
            return
        self.events.append(event)
        handle = self.handles.get(event.get("sender") or 0)
        if handle is not None:
            handle._on_event(event)

    async def _keepalive(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.keepalive)
            with contextlib.suppress(httpx.HTTPError, JanusError, ValueError):
                await self._post(self.url, {"janus": "keepalive"})

    async def destroy(self) -> None:
        """Destroy the session on Janus (bounded) and stop its tasks; never raises."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self.id is not None:
            with contextlib.suppress(Exception):
                await self._post(self.url, {"janus": "destroy"}, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)
        if self._own_client:
            with contextlib.suppress(Exception):
                await self.client.aclose()


class VideoRoomHandle:
    """A handle on ``janus.plugin.videoroom`` (Janus 1.x API)."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.webrtcup = asyncio.Event()
        self.hangup: str | None = None
        self.media: dict[str, bool] = {}  # mid → receiving, from "media" events

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "webrtcup":
            self.webrtcup.set()
        elif kind == "hangup":
            self.hangup = str(event.get("reason"))
        elif kind == "media":
            self.media[str(event.get("mid"))] = bool(event.get("receiving"))

    async def request(self, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return await self.session.message(self.id, body, jsep, timeout)

    async def create_room(self, room: int | None = None, *, publishers: int = 1, videocodec: str = "vp8",
                          audiocodec: str = "opus", bitrate: int = 0, **extra: Any) -> int:
        """Create a (non-permanent) room; returns its id."""
        body: dict[str, Any] = {"request": "create", "publishers": publishers, "videocodec": videocodec,
                                "audiocodec": audiocodec, "bitrate": bitrate, "permanent": False, **extra}
        if room is not None:
            body["room"] = room
        data, _ = await self.request(body)
        if data.get("videoroom") != "created":
            raise JanusError(f"create: unexpected answer {data}")
        return int(data["room"])

    async def publish(self, room: int, offer_sdp: str, *, display: str = "presenter",
                      timeout: float | None = None) -> tuple[int, str]:
        """``joinandconfigure`` as a publisher with ``offer_sdp``; returns (publisher id, answer SDP)."""
        body = {"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": display}
        data, jsep = await self.request(body, {"type": "offer", "sdp": offer_sdp, "trickle": False}, timeout)
        if data.get("videoroom") != "joined" or not jsep or jsep.get("type") != "answer":
            raise JanusError(f"joinandconfigure: unexpected answer {data} (jsep: {bool(jsep)})")
        return int(data["id"]), str(jsep["sdp"])

    async def subscribe(self, room: int, feed: int, mids: list[str] | None = None, *,
                        timeout: float | None = None) -> str:
        """``join`` as a subscriber to ``feed`` (its streams ``mids``, or all); returns Janus's offer SDP."""
        streams = [{"feed": feed, "mid": mid} for mid in mids] if mids else [{"feed": feed}]
        body = {"request": "join", "room": room, "ptype": "subscriber", "streams": streams}
        data, jsep = await self.request(body, None, timeout)
        if data.get("videoroom") != "attached" or not jsep or jsep.get("type") != "offer":
            raise JanusError(f"subscribe: unexpected answer {data} (jsep: {bool(jsep)})")
        return str(jsep["sdp"])

    async def start(self, answer_sdp: str, *, timeout: float | None = None) -> None:
        data, _ = await self.request({"request": "start"}, {"type": "answer", "sdp": answer_sdp, "trickle": False},
                                     timeout)
        if data.get("started") != "ok":
            raise JanusError(f"start: unexpected answer {data}")

    async def wait_webrtcup(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.webrtcup.wait(), timeout)

    async def list_participants(self, room: int) -> list[dict[str, Any]]:
        data, _ = await self.request({"request": "listparticipants", "room": room})
        return list(data.get("participants", []))


# -- the admin API (optional) -------------------------------------------------------------------


async def admin(client: httpx.AsyncClient, admin_url: str, secret: str, request: str, path: str = "",
                timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    body = {"janus": request, "transaction": _transaction(), "admin_secret": secret, **fields}
    response = await client.post(admin_url + path, json=body, timeout=timeout)
    response.raise_for_status()
    message: dict[str, Any] = response.json()
    _plugin_error(message)
    return message


async def sent_packets(janus: Janus, profiles: set[str] | None = None) -> int | None:
    """RTP packets Janus has sent on every handle so far (admin ``handle_info``: each medium's
    ``stats.out.packets``); None without the admin API. Adds the SRTP profiles seen to ``profiles``."""
    if not janus.admin_url:
        return None
    secret = janus.config.admin_secret
    total = 0
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=8)) as client:
        sessions = (await admin(client, janus.admin_url, secret, "list_sessions"))["sessions"]
        for session in sessions:
            handles = (await admin(client, janus.admin_url, secret, "list_handles", f"/{session}")).get("handles", [])
            for handle in handles:
                try:
                    info = (await admin(client, janus.admin_url, secret, "handle_info", f"/{session}/{handle}"))["info"]
                except (httpx.HTTPError, JanusError, KeyError):
                    continue  # gone meanwhile
                if profiles is not None and info.get("webrtc", {}).get("dtls", {}).get("srtp-profile"):
                    profiles.add(info["webrtc"]["dtls"]["srtp-profile"])
                for medium in info.get("webrtc", {}).get("media", {}).values():
                    total += int(medium.get("stats", {}).get("out", {}).get("packets", 0))
    return total
