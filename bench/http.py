"""HTTP benchmark of the web service: start ``python -m server serve`` (demo data, SQLite, a
temporary directory) on 127.0.0.1, send a bounded number of requests per scenario from a
separate process, and report throughput, latency percentiles and the server's CPU.

    make bench BENCH_ARGS="--requests 400 --concurrency 8"

Traffic goes to 127.0.0.1 only, every loop is bounded, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from tests.test_serve import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    scenario: str
    requests: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def run_scenario(
    name: str, base: str, pid: int, requests: int, concurrency: int, build: object, headers: dict[str, str]
) -> Result:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            method, path, body = build  # type: ignore[misc]
            started = time.perf_counter()
            response = await client.request(method, base + path, json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return Result(
        name, requests, errors, round(elapsed, 3), round(requests / elapsed, 1),
        round(statistics.median(ordered) * 1000, 2), round(pct(0.95), 2), round(pct(0.99), 2),
        round(cpu * 1000 / requests, 3),
    )


async def main_async(args: argparse.Namespace) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as var_dir, serving(Path(var_dir), free_port()) as (base, process):
        token = httpx.post(f"{base}/api/auth/token", json={"username": "thuky", "password": "giaoban-demo"}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        scenarios = [
            ("GET /healthz", ("GET", "/healthz", None), {}),
            ("GET /api/units (116)", ("GET", "/api/units", None), auth),
            ("GET /api/units?q=tan an", ("GET", "/api/units?q=tan%20an", None), auth),
            ("POST /api/auth/token (argon2)", ("POST", "/api/auth/token", {"username": "lanhdao", "password": "giaoban-demo"}), {}),
        ]
        for name, build, headers in scenarios:
            count = args.requests if "argon2" not in name else max(20, args.requests // 10)
            results.append(await run_scenario(name, base, process.pid, count, args.concurrency, build, headers))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario (bounded)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "bench/results/http.json"))
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("--requests must be 1..100000 and --concurrency 1..256")
    results = asyncio.run(main_async(args))
    print(f"{'scenario':34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'errors':>6}")
    for r in results:
        print(f"{r.scenario:34} {r.per_second:8.1f} {r.p50_ms:8.2f} {r.p95_ms:8.2f} {r.p99_ms:8.2f} {r.server_cpu_ms_per_request:10.3f} {r.errors:6d}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "args": vars(args), "results": [asdict(r) for r in results],
    }, indent=2))
    print(f"written {out}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
