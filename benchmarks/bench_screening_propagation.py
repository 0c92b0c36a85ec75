"""Propagation: a refusal committed by this process reaches a separately running ``quietline serve``.

For each change: commit a refusal through ``registry.actions.refuse`` here, then ask the running
server's ``GET /v1/screen`` until it answers ``refused_category``; the latency is commit → first such
answer (it includes one HTTP round trip of polling granularity). Target: p99 < 1 s over 100 changes,
on SQLite and on PostgreSQL. Baseline for the same run: the server's round-trip time for one decision.

    .venv/bin/python benchmarks/bench_screening_propagation.py [--changes 100] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from quietline.numbers import parse
from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.registry import actions as registry
from quietline.vocabulary import Category, Channel

CLI = str(Path(sys.executable).parent / "quietline")
PG_ADMIN = os.environ.get("QUIETLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(url: str, workdir: Path, *, jobs: bool) -> Iterator[tuple[httpx.Client, Runtime]]:
    """A migrated database, a ``quietline serve`` on it (screening open, as in development) and a runtime
    in this process for committing changes; yields an HTTP client to the server and that runtime."""
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
        [CLI, "serve", "--port", str(port), "--jobs" if jobs else "--no-jobs"],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rt = Runtime.build(
        Settings(env=Environment.TEST, database_url=url, secret_key="bench"), sms=RecordingSmsSender()
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield client, rt
    finally:
        server.terminate()
        server.wait(timeout=30)
        rt.close()


def measure(url: str, workdir: Path, changes: int) -> dict[str, Any]:
    with served(url, workdir, jobs=False) as (client, rt):
        params = {"caller": "13700137000", "channel": "call", "category": "insurance"}
        client.get("/v1/screen", params={**params, "callee": "13800138000"})  # starts the engine
        rtt = []
        for _ in range(50):
            t = time.perf_counter()
            client.get("/v1/screen", params={**params, "callee": "13800138000"})
            rtt.append(time.perf_counter() - t)
        latencies = []
        operator = Actor.operator("bench")
        for i in range(changes):
            callee = parse(f"1390013{i:04d}")
            registry.refuse(rt, operator, callee, [Category.INSURANCE], (Channel.CALL,), notify=False)
            committed = time.perf_counter()
            while client.get("/v1/screen", params={**params, "callee": callee.e164}).json()["reason"] != (
                "refused_category"
            ):
                if time.perf_counter() - committed > 10:
                    raise RuntimeError("a change did not arrive within 10 s")
            latencies.append(time.perf_counter() - committed)
    lat = np.array(latencies) * 1000
    return {
        "changes": changes,
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(lat.max()), 1),
        "target_p99_ms": 1000,
        "baseline_http_rtt_p50_ms": round(float(np.percentile(np.array(rtt) * 1000, 50)), 2),
        "poll_interval_ms": 100,
    }


def on_databases(
    measure_fn: Callable[[str, Path, int], dict[str, Any]], changes: int, db: str, out: dict[str, Any]
) -> dict[str, Any]:
    """Run ``measure_fn`` on a fresh SQLite file and/or a fresh PostgreSQL database; results into ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if db in ("sqlite", "both"):
            out["sqlite"] = measure_fn(f"sqlite:///{work / 'bench.db'}", work, changes)
        if db in ("postgres", "both"):
            import psycopg

            name = f"ql_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                out["postgres"] = measure_fn(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, work, changes)
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    out = on_databases(measure, args.changes, args.db, {"benchmark": "screening_propagation"})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
