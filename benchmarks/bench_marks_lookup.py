"""Reputation look-up latency over HTTP under load (issue 6 target: p99 ≤ 2 ms).

A real server (uvicorn running ``quietline.api.app:create_app``, ``--workers`` processes, in its own
process group) on a SQLite database holding marks on 20,000 numbers. The load generator is ``wrk`` (C,
event-driven: its own cost stays small beside the server's on a 2-core machine) with a Lua script that
draws numbers from a Pareto distribution over the 2,000 hottest numbers (caller-ID traffic repeats
numbers) and paces each connection to the offered rate; without ``wrk`` on PATH, Python threads with
keep-alive connections (closed loop; their own overhead counts in the figures, which the output says).

Same-run baselines, so the ratios mean something on a loaded machine:

* ``/healthz`` on the same server (the full FastAPI stack and a trivial SQL query);
* ``floor``: the same uvicorn (same loop, HTTP parser, worker count and logging) serving a constant
  answer of the same bytes from a bare ASGI callable — the least any look-up served by this server
  stack can cost on this machine at this moment; what the look-up adds over it is the app's part;
* the same look-ups on a server with the cache off (every answer computed from the database).

The look-ups, ``/healthz`` and the floor are measured interleaved — ``--rounds`` rounds of one slice
each, their latency histograms merged — so that all three see the same machine: on a shared 2-core
machine the other tenants' load drifts within seconds, and a tail measured ten seconds after another
compares machines, not servers. ``server_cpu_us_per_request`` is the server's own CPU time per request
and ``server_run_queue_wait_us_per_request`` the time its threads were runnable but not running
(``/proc/<pid>/task/*/schedstat``): the part of the latency the machine's other load adds, not the
server.

    .venv/bin/python benchmarks/bench_marks_lookup.py [--rate 1000] [--seconds 10] [--rounds 5]
        [--connections 4] [--workers 1]
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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from quietline.marks import actions
from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from wrkload import run_wrk

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
def server(
    url: str, cache_seconds: float, workers: int, *, floor_body: bytes | None = None
) -> Iterator[tuple[str, list[int]]]:
    """Serve the app (or, given ``floor_body``, the bare floor app answering it); yields its base URL
    and the pids whose CPU time is the server's."""
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
    target = ["quietline.api.app:create_app", "--factory"]
    if floor_body is not None:
        env[FLOOR_BODY_ENV] = floor_body.decode()
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
        target = [f"{Path(__file__).stem}:floor_app"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1",
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


FLOOR_BODY_ENV = "QUIETLINE_BENCH_FLOOR_BODY"


async def floor_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The floor baseline: a constant answer (the bytes of a real cached look-up, with the fast path's
    headers) from a bare ASGI callable — no routing, no cache, no limiter."""
    del receive
    if scope["type"] != "http":
        return
    body = _FLOOR_BODY
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-cache", b"hit"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: Set in the floor server's process (``server(floor_body=…)``); empty where the benchmark itself runs.
_FLOOR_BODY = os.environ.get(FLOOR_BODY_ENV, "").encode()


def sched_snapshot(pids: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """(CPU ns, run-queue wait ns) of every thread of these processes (``/proc/<pid>/task/*/schedstat``)."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                fields = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()
            except OSError:
                continue
            found[(pid, int(task))] = (int(fields[0]), int(fields[1]))
    return found


def sched_delta(
    before: dict[tuple[int, int], tuple[int, int]], after: dict[tuple[int, int], tuple[int, int]]
) -> tuple[float, float]:
    """Seconds of CPU and of run-queue wait between two snapshots, over the threads in both."""
    cpu = wait = 0
    for key, (c1, w1) in after.items():
        c0, w0 = before.get(key, (c1, w1))
        cpu += c1 - c0
        wait += w1 - w0
    return cpu / 1e9, wait / 1e9


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
  local buckets = {}
  for i = 1, #latency do
    local value, count = latency(i)
    buckets[#buckets + 1] = string.format("[%%d,%%d]", value, count)
  end
  io.write(string.format('{"requests": %%d, "seconds": %%.3f, "errors": %%d, "misses": %%d, "p50_us": %%d,'
    .. ' "p90_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d, "histogram": [%%s]}\\n',
    summary.requests, summary.duration / 1e6, e.status + e.connect + e.read + e.write + e.timeout, misses,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, table.concat(buckets, ",")))
end
"""


def wrk_load(
    base: str, seconds: float, rate: float, path: str = "", connections: int = CONNECTIONS
) -> dict[str, Any]:
    """``wrk`` with ``connections`` keep-alive connections, each paced to ``rate / connections``
    requests per second (``rate`` 0: as fast as the server answers). ``histogram``: (µs, count) pairs."""
    gap_ms = connections * 1000.0 / rate if rate > 0 else 0.0
    script = WRK_SCRIPT % {"hot": HOT, "gap_ms": gap_ms, "path": path, "seed": 6}
    raw = run_wrk(script, base, connections=connections, seconds=seconds)
    return {
        "requests": raw["requests"],
        "seconds": raw["seconds"],
        "requests_per_second": round(raw["requests"] / raw["seconds"]),
        "errors": raw["errors"],
        "cache_misses": raw["misses"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p99_9_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "histogram": raw["histogram"],
    }


def percentile(histogram: dict[int, int], share: float) -> int:
    """The smallest latency (µs) at or below which ``share`` of the requests were answered."""
    total = sum(histogram.values())
    need = share * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= need:
            return value
    return max(histogram, default=0)


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
) -> dict[str, Any]:
    """One run of the generator with the server's CPU time per request."""
    path = str(kw.get("path", ""))
    rate = float(kw.get("rate", args.rate))  # type: ignore[arg-type]
    before = cpu_seconds(pids)
    if shutil.which("wrk"):
        result = wrk_load(base, args.seconds, rate, path, args.connections)
        del result["histogram"], result["seconds"]
    else:
        result = python_load(base, numbers, args.requests, args.connections, path)
    used = cpu_seconds(pids) - before
    result["server_cpu_us_per_request"] = round(used / max(1, result["requests"]) * 1e6, 1)
    return result


@dataclass
class Target:
    """One interleaved measurement: a server and the path wrk asks it for ("" = the look-ups)."""

    base: str
    pids: list[int]
    path: str
    histogram: dict[int, int] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    misses: int = 0
    cpu: float = 0.0
    wait: float = 0.0

    def add(self, run: dict[str, Any], cpu: float, wait: float) -> None:
        for value, count in run["histogram"]:
            self.histogram[value] = self.histogram.get(value, 0) + count
        self.requests += run["requests"]
        self.seconds += run["seconds"]
        self.errors += run["errors"]
        self.misses += run["cache_misses"]
        self.cpu += cpu
        self.wait += wait

    def summary(self) -> dict[str, Any]:
        per = 1e6 / max(1, self.requests)
        return {
            "requests": self.requests,
            "requests_per_second": round(self.requests / self.seconds) if self.seconds else 0,
            "errors": self.errors,
            "cache_misses": self.misses,
            "p50_ms": percentile(self.histogram, 0.50) / 1000,
            "p90_ms": percentile(self.histogram, 0.90) / 1000,
            "p99_ms": percentile(self.histogram, 0.99) / 1000,
            "p99_9_ms": percentile(self.histogram, 0.999) / 1000,
            "max_ms": max(self.histogram, default=0) / 1000,
            "server_cpu_us_per_request": round(self.cpu * per, 1),
            "server_run_queue_wait_us_per_request": round(self.wait * per, 1),
        }


def interleaved(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``args.rounds`` rounds, each one slice of ``args.seconds / args.rounds`` per target in turn (the
    order rotating each round), histograms merged: every target sees the same stretch of machine."""
    names = list(targets)
    slice_seconds = max(1.0, args.seconds / args.rounds)
    for round_no in range(args.rounds):
        for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
            target = targets[name]
            before = sched_snapshot(target.pids)
            run = wrk_load(target.base, slice_seconds, args.rate, target.path, args.connections)
            cpu, wait = sched_delta(before, sched_snapshot(target.pids))
            target.add(run, cpu, wait)
    return {name: target.summary() for name, target in targets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000, help="Offered requests per second (wrk).")
    parser.add_argument("--seconds", type=float, default=10, help="Seconds of load per measured target.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved slices per target (wrk).")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="Keep-alive connections.")
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes.")
    parser.add_argument("--requests", type=int, default=20_000, help="Requests per run without wrk.")
    args = parser.parse_args()
    with_wrk = shutil.which("wrk") is not None
    generator = "wrk (C, paced keep-alive connections)" if with_wrk else "Python threads (closed loop)"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        numbers = populate(url)
        with server(url, 300, args.workers) as (base, pids):
            warm_up(base, numbers[:HOT], args.workers)
            answer = httpx.get(f"{base}/v1/numbers/{numbers[1]}/reputation").content
            if with_wrk:
                with server(url, 300, args.workers, floor_body=answer) as (floor_base, floor_pids):
                    figures = interleaved(
                        {
                            "cached": Target(base, pids, ""),
                            "healthz": Target(base, pids, "/healthz"),
                            "floor": Target(floor_base, floor_pids, "/v1/numbers/+8613900000001/reputation"),
                        },
                        args,
                    )
                cached, healthz, floor = figures["cached"], figures["healthz"], figures["floor"]
            else:
                cached = measure(base, pids, args, numbers)
                healthz = measure(base, pids, args, numbers, path="/healthz")
                floor = None
            saturated = measure(base, pids, args, numbers, rate=0)
        with server(url, 0, args.workers) as (base, pids):
            uncached = measure(base, pids, args, numbers)
    load_average = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "marks_reputation_lookup_http",
        "server": f"uvicorn, {args.workers} worker(s), SQLite, 20,000 marked numbers",
        "load_generator": generator,
        "connections": args.connections,
        "offered_rate_per_second": args.rate,
        "interleaved_rounds": args.rounds if with_wrk else None,
        "cached": cached,
        "cached_saturated": {"note": "same, unpaced: as fast as the server answers", **saturated},
        "baseline_healthz": {"name": "/healthz, same server, interleaved with the look-ups", **healthz},
        "baseline_uncached": {"name": "same look-ups, cache off", **uncached},
        "p99_ratio_to_healthz": round(cached["p99_ms"] / healthz["p99_ms"], 3),
        "p99_ratio_to_uncached": round(cached["p99_ms"] / uncached["p99_ms"], 3),
    }
    if floor is not None:
        report["baseline_floor"] = {
            "name": "the same uvicorn serving the same answer bytes from a bare ASGI callable, interleaved",
            **floor,
        }
        report["p99_ratio_to_floor"] = round(cached["p99_ms"] / floor["p99_ms"], 3)
        report["p99_over_floor_ms"] = round(cached["p99_ms"] - floor["p99_ms"], 3)
    report |= {
        "machine_load_average_1m_5m": [round(load_average[0], 2), round(load_average[1], 2)],
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": cached["p99_ms"] <= TARGET_P99_MS,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
