"""HTTP screening under a local load generator: requests/s and latency for ``GET /v1/screen`` and
``POST /v1/screen/batch`` (1,000 pairs), against ``quietline serve --workers W`` on SQLite.

The load generator is ``wrk`` (C, closed loop, ``--concurrency`` keep-alive connections for ``--seconds``
per endpoint) when it is on PATH (``make bench`` installs it), else asyncio + httpx in this process.
Either shares the machine's cores with the server: the figures are a floor. Baseline in the same run:
``GET /healthz`` (the framework's own cost for a trivial endpoint that does one SQL query).

    .venv/bin/python benchmarks/bench_screening_http.py [--workers 2] [--concurrency 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from quietline.platform import migrate
from wrkload import run_wrk

CLI = str(Path(sys.executable).parent / "quietline")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(
    base: str,
    concurrency: int,
    seconds: float,
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as c:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await send(c)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
    }


WRK_SCRIPT = """
wrk.method = "%(method)s"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "errors": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration / 1e6, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_load(url: str, concurrency: int, seconds: float, body: str | None = None) -> dict[str, Any]:
    """``wrk`` on one URL (GET, or POST of ``body``), closed loop with ``concurrency`` connections."""
    script = WRK_SCRIPT % {"method": "POST" if body else "GET", "body": json.dumps(body) if body else "nil"}
    raw = run_wrk(script, url, connections=concurrency, seconds=seconds)
    return {
        "requests": raw["requests"],
        "errors": raw["errors"],
        "rps": round(raw["requests"] / raw["seconds"], 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "screening_http",
        "workers": args.workers,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        port = free_port()
        env = {
            **os.environ,
            "QUIETLINE_DATABASE_URL": url,
            "QUIETLINE_ENV": "development",
            "QUIETLINE_DEV_OPEN_SCREEN": "1",
            "QUIETLINE_SECRET_KEY": "bench",
        }
        server = subprocess.Popen(
            [CLI, "serve", "--port", str(port), "--workers", str(args.workers), "--no-jobs"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            params = {"caller": "13700137000", "callee": "13800138000", "category": "insurance"}
            for _ in range(args.workers * 4):  # start every worker's engine
                httpx.get(f"{base}/v1/screen", params=params, timeout=30)
            pairs = [{"caller": f"137{i:08d}", "callee": f"138{i:08d}"} for i in range(args.batch)]
            body = {"category": "insurance", "pairs": pairs}
            batch_connections = max(2, args.concurrency // 4)
            if shutil.which("wrk"):
                out["load_generator"] = "wrk (C, closed loop)"
                single_url = f"{base}/v1/screen?" + "&".join(f"{k}={v}" for k, v in params.items())
                out["healthz_baseline"] = wrk_load(f"{base}/healthz", args.concurrency, args.seconds)
                out["single"] = wrk_load(single_url, args.concurrency, args.seconds)
                batch = wrk_load(
                    f"{base}/v1/screen/batch", batch_connections, args.seconds, body=json.dumps(body)
                )
            else:
                out["load_generator"] = "asyncio + httpx in this process (closed loop)"
                out["healthz_baseline"] = asyncio.run(
                    load(base, args.concurrency, args.seconds, lambda c: c.get("/healthz"))
                )
                out["single"] = asyncio.run(
                    load(base, args.concurrency, args.seconds, lambda c: c.get("/v1/screen", params=params))
                )
                batch = asyncio.run(
                    load(
                        base,
                        batch_connections,
                        args.seconds,
                        lambda c: c.post("/v1/screen/batch", json=body),
                    )
                )
            batch["pairs_per_request"] = args.batch
            batch["decisions_per_s"] = round(batch["rps"] * args.batch)
            out["batch"] = batch
        finally:
            server.terminate()
            server.wait(timeout=30)
    out["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
