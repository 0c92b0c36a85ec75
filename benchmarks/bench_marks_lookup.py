"""Reputation look-up latency over HTTP under load (issue 6 target: p99 ≤ 2 ms).

A real server (``quietline serve``, one uvicorn worker, in its own process) on a SQLite database holding
marks on 20,000 numbers; client threads with keep-alive connections look up numbers drawn from the
whole set (most of them cached after their first look-up, as caller-ID traffic repeats numbers).

Baseline, measured in the same run against the same server data: the same load with the cache off
(``QUIETLINE_MARKS_API_CACHE_SECONDS=0``), i.e. every look-up computed from the database.

    .venv/bin/python benchmarks/bench_marks_lookup.py [--requests 20000] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from quietline.marks import actions
from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings

TARGET_P99_MS = 2.0
NUMBERS = 20_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def populate(url: str) -> list[str]:
    migrate.upgrade(url)
    rt = Runtime.build(
        Settings(env=Environment.TEST, database_url=url, secret_key="bench"),  # type: ignore[call-arg]
        clock=FakeClock(datetime.now(UTC)),
    )
    rng = random.Random(6)
    numbers = [f"+86139{i:08d}" for i in range(NUMBERS)]
    items = []
    start = datetime.now(UTC) - timedelta(days=3)
    for i, number in enumerate(numbers):
        for j in range(rng.randrange(1, 9)):
            label = "real_estate" if i % 3 else "delivery_ride_hailing"
            items.append(actions.MarkInput(number, label, f"+86138{(i * 7 + j) % 400_000:08d}", start))
    actor = Actor.operator("bench")
    limit = actions.RateLimit(limit=10**9)
    for s in range(0, len(items), 5_000):
        actions.ingest(rt, actor, items[s : s + 5_000], rate_limit=limit)
    rt.close()
    return numbers


@contextmanager
def server(url: str, cache_seconds: float) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "bench",
        "QUIETLINE_MARKS_API_CACHE_SECONDS": str(cache_seconds),
        "QUIETLINE_MARKS_API_RATE_PER_MINUTE": str(10**9),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "quietline.api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)  # waiting for the server process, not testing time
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def load(base: str, numbers: list[str], requests: int, threads: int) -> dict[str, float]:
    samples: list[float] = []
    lock = threading.Lock()
    per_thread = requests // threads

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        with httpx.Client(base_url=base) as client:
            for _ in range(per_thread):
                number = numbers[int(rng.paretovariate(1.5)) % len(numbers)]
                t0 = time.perf_counter()
                r = client.get(f"/v1/numbers/{number}/reputation")
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        with lock:
            samples.extend(mine)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    samples.sort()

    def pct(p: float) -> float:
        return round(samples[int(p * (len(samples) - 1))] * 1000, 3)

    return {
        "requests": len(samples),
        "requests_per_second": round(len(samples) / elapsed),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(samples[-1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        numbers = populate(url)
        with server(url, cache_seconds=300) as base:
            load(base, numbers, min(2_000, args.requests), args.threads)  # warm-up
            cached = load(base, numbers, args.requests, args.threads)
        with server(url, cache_seconds=0) as base:
            uncached = load(base, numbers, args.requests // 4, args.threads)
    print(
        json.dumps(
            {
                "benchmark": "marks_reputation_lookup_http",
                "server": "quietline serve (1 uvicorn worker), SQLite, 20,000 marked numbers",
                "client_threads": args.threads,
                "cached": cached,
                "baseline": {"name": "same load, cache off", **uncached},
                "machine_load_average_1m": round(os.getloadavg()[0], 2),
                "target_p99_ms": TARGET_P99_MS,
                "meets_target": cached["p99_ms"] <= TARGET_P99_MS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
