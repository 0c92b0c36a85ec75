"""HTTP screening under a local load generator: requests/s and latency for ``GET /v1/screen`` and
``POST /v1/screen/batch`` (1,000 pairs), against ``quietline serve --workers W`` on SQLite.

The load generator is asyncio + httpx with ``--concurrency`` connections for ``--seconds`` per endpoint,
in this process (it shares the machine's cores with the server: the figures are a floor). Baseline in
the same run: ``GET /healthz`` (the framework's own cost for a trivial endpoint that does one SQL query).

    .venv/bin/python benchmarks/bench_screening_http.py [--workers 2] [--concurrency 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
            out["healthz_baseline"] = asyncio.run(
                load(base, args.concurrency, args.seconds, lambda c: c.get("/healthz"))
            )
            out["single"] = asyncio.run(
                load(base, args.concurrency, args.seconds, lambda c: c.get("/v1/screen", params=params))
            )
            batch = asyncio.run(
                load(
                    base,
                    max(2, args.concurrency // 4),
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
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
