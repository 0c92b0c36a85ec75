"""Reputation look-up latency over HTTP under load (issue 6 target: p99 ≤ 2 ms).

A real server (uvicorn running ``quietline.api.app:create_app``, ``--workers`` processes, in its own
process group) on a SQLite database holding marks on 20,000 numbers. The load generator is ``wrk`` (C,
event-driven: its own cost stays small beside the server's on a 2-core machine) with a Lua script that
draws numbers from a Pareto distribution over the 2,000 hottest numbers (caller-ID traffic repeats
numbers) and paces each connection to the offered rate; without ``wrk`` on PATH, Python threads with
keep-alive connections (closed loop; their own overhead counts in the figures, which the output says).

Same-run baselines, on the same server and load, so the ratios mean something on a loaded machine:
``/healthz`` (the full FastAPI stack and a trivial SQL query), and the same look-ups on a server with
the cache off (every answer computed from the database). ``server_cpu_us_per_request`` is the server's
own CPU time per request (``/proc``), which the machine's load does not inflate the way it inflates
latency percentiles.

    .venv/bin/python benchmarks/bench_marks_lookup.py [--rate 1000] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
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
HOT = 2_000
CONNECTIONS = 4


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
def server(url: str, cache_seconds: float, workers: int) -> Iterator[tuple[str, list[int]]]:
    """Serve the app; yields its base URL and the pids whose CPU time is the server's."""
    port = free_port()
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "bench",
        "QUIETLINE_MARKS_API_CACHE_SECONDS": str(cache_seconds),
        "QUIETLINE_MARKS_API_RATE_PER_MINUTE": str(10**9),
        "WEB_CONCURRENCY": str(workers),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "quietline.api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)],
        env=env,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)  # waiting for the server process, not testing time
        yield base, [proc.pid, *children(proc.pid)]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def children(pid: int) -> list[int]:
    """Worker processes of a multi-worker uvicorn (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux ``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = """
local n = %(hot)d
local gap = %(gap_ms)f
local path = "%(path)s"
local threads = {}
math.randomseed(%(seed)d)
setup = function(thread) table.insert(threads, thread) end
init = function() misses = 0 end
request = function()
  if path ~= "" then return wrk.format("GET", path) end
  local i = math.floor((1 - math.random()) ^ (-1 / 1.5)) %% n
  return wrk.format("GET", string.format("/v1/numbers/+86139%%08d/reputation", i))
end
delay = function() return gap end
response = function(status, headers) if headers["x-cache"] == "miss" then misses = misses + 1 end end
done = function(summary, latency, requests)
  local misses = 0
  for _, thread in ipairs(threads) do misses = misses + thread:get("misses") end
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%.3f, "errors": %%d, "misses": %%d, "p50_us": %%d,'
    .. ' "p90_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d}\\n', summary.requests,
    summary.duration / 1e6, e.status + e.connect + e.read + e.write + e.timeout, misses,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
"""


def wrk_load(base: str, seconds: float, rate: float, path: str = "") -> dict[str, float]:
    """``wrk`` with ``CONNECTIONS`` keep-alive connections, each paced to ``rate / CONNECTIONS``
    requests per second (``rate`` 0: as fast as the server answers)."""
    gap_ms = CONNECTIONS * 1000.0 / rate if rate > 0 else 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"hot": HOT, "gap_ms": gap_ms, "path": path, "seed": 6})
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "-s", script.name, base],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / raw["seconds"]),
        "errors": raw["errors"],
        "cache_misses": raw["misses"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p99_9_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def python_load(
    base: str, numbers: list[str], requests: int, threads: int, path: str = ""
) -> dict[str, float]:
    """The fallback generator: Python threads, closed loop (no pacing)."""
    samples: list[float] = []
    misses: list[int] = []
    lock = threading.Lock()
    per_thread = requests // threads

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        missed = 0
        with httpx.Client(base_url=base) as client:
            for _ in range(per_thread):
                number = numbers[int(rng.paretovariate(1.5)) % HOT]
                t0 = time.perf_counter()
                r = client.get(path or f"/v1/numbers/{number}/reputation")
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
                if r.headers.get("x-cache") == "miss":
                    missed += 1
        with lock:
            samples.extend(mine)
            misses.append(missed)

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
        "errors": 0,
        "cache_misses": sum(misses),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(samples[-1] * 1000, 3),
    }


def warm_up(base: str, numbers: list[str], workers: int) -> None:
    """Cache every hot number in every worker. Each worker has its own cache and a connection is served
    by one worker, so passes over fresh connections repeat until ``2 × workers`` passes in a row find
    no miss (or 20 × workers passes were made)."""
    clean = 0
    for _ in range(20 * workers):
        with httpx.Client(base_url=base) as client:
            misses = 0
            for number in numbers:
                r = client.get(f"/v1/numbers/{number}/reputation")
                r.raise_for_status()
                misses += r.headers["x-cache"] == "miss"
        clean = clean + 1 if not misses else 0
        if clean >= 2 * workers:
            return


def measure(
    base: str, pids: list[int], args: argparse.Namespace, numbers: list[str], **kw: object
) -> dict[str, float]:
    """One run of the generator with the server's CPU time per request."""
    path = str(kw.get("path", ""))
    rate = float(kw.get("rate", args.rate))  # type: ignore[arg-type]
    before = cpu_seconds(pids)
    if shutil.which("wrk"):
        result = wrk_load(base, args.seconds, rate, path)
    else:
        result = python_load(base, numbers, args.requests, CONNECTIONS, path)
    used = cpu_seconds(pids) - before
    result["server_cpu_us_per_request"] = round(used / max(1, result["requests"]) * 1e6, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000, help="Offered requests per second (wrk).")
    parser.add_argument("--seconds", type=float, default=10, help="Length of each wrk run.")
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes.")
    parser.add_argument("--requests", type=int, default=20_000, help="Requests per run without wrk.")
    args = parser.parse_args()
    generator = (
        "wrk (C, paced keep-alive connections)" if shutil.which("wrk") else "Python threads (closed loop)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        numbers = populate(url)
        with server(url, 300, args.workers) as (base, pids):
            warm_up(base, numbers[:HOT], args.workers)
            cached = measure(base, pids, args, numbers)
            healthz = measure(base, pids, args, numbers, path="/healthz")
            saturated = measure(base, pids, args, numbers, rate=0)
        with server(url, 0, args.workers) as (base, pids):
            uncached = measure(base, pids, args, numbers)
    load_average = os.getloadavg()
    print(
        json.dumps(
            {
                "benchmark": "marks_reputation_lookup_http",
                "server": f"uvicorn, {args.workers} worker(s), SQLite, 20,000 marked numbers",
                "load_generator": generator,
                "connections": CONNECTIONS,
                "offered_rate_per_second": args.rate,
                "cached": cached,
                "cached_saturated": {"note": "same, unpaced: as fast as the server answers", **saturated},
                "baseline_healthz": {"name": "/healthz, same load", **healthz},
                "baseline_uncached": {"name": "same look-ups, cache off", **uncached},
                "p99_ratio_to_healthz": round(cached["p99_ms"] / healthz["p99_ms"], 3),
                "p99_ratio_to_uncached": round(cached["p99_ms"] / uncached["p99_ms"], 3),
                "machine_load_average_1m_5m": [round(load_average[0], 2), round(load_average[1], 2)],
                "target_p99_ms": TARGET_P99_MS,
                "meets_target": cached["p99_ms"] <= TARGET_P99_MS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
