"""Complaint intake over HTTP on PostgreSQL: sustained complaints per second with webhooks on, and no
case lost when the server is killed mid-load.

One run, three phases against a real ``quietline serve`` process on a fresh PostgreSQL database:

1. baseline — intake with no webhook endpoints registered (validation, routing, portability lookup,
   the case, its report, three audit rows and the change feed, one transaction per report);
2. webhooks on — the same load with an endpoint for every carrier: each forwarded case also writes
   its outbox rows in the same transaction and is posted, signed, to a local receiver that verifies
   every signature (HMAC-SHA256); afterwards the outbox is drained and compared with what arrived;
3. crash — the same load, the server killed with SIGKILL mid-load; every acknowledged case must be in
   the database afterwards with its audit rows and outbox rows.

    .venv/bin/python benchmarks/bench_complaints_intake.py [--seconds 10] [--clients 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

from quietline.accounts import actions as accounts
from quietline.complaints import actions, webhooks
from quietline.complaints.orm import CaseRow, WebhookDeliveryRow
from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.vocabulary import Carrier

PG_ADMIN = os.environ.get("QUIETLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLI = str(Path(sys.executable).parent / "quietline")
SECRET = "bench-complaints"  # noqa: S105 - the throwaway server secret of a throwaway database
REPORTED = ["13012345678", "13800138000", "18912345678", "19212345678", "4008123456"]


class Receiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.seen = webhooks.ProcessedDeliveries()
        self.lags: list[float] = []
        self.bad = 0
        self.lock = threading.Lock()

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = datetime.now(UTC)
                try:
                    delivery = webhooks.verify(state.secrets, dict(self.headers.items()), body, now=now)
                except webhooks.SignatureInvalid:
                    with state.lock:
                        state.bad += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                forwarded = datetime.fromisoformat(delivery.payload["case"]["forwarded_at"])
                with state.lock:
                    if state.seen.handle(delivery, lambda d: None):
                        state.lags.append((now - forwarded).total_seconds())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/12321"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_SECRET_KEY": SECRET,
        "QUIETLINE_ENV": "test",
    }
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--workers", str(workers), "--no-jobs"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def load(
    base: str, key: str, clients: int, seconds: float, tag: int, kill: subprocess.Popen[bytes] | None = None
) -> dict[str, Any]:
    acked: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                body = {
                    # distinct reporters so reports do not merge (one reporter, one number, one day)
                    "reporter": f"13{tag}{worker:02d}{i:06d}",
                    "reported": REPORTED[i % len(REPORTED)],
                    "channel": "call",
                    "at": at,
                    "form": "recorded",
                    "duration_seconds": 12,
                    "category": "loan_finance",
                }
                t0 = time.perf_counter()
                try:
                    r = http.post("/v1/complaints", json=body)
                except httpx.HTTPError as exc:
                    if kill is None:
                        with lock:
                            errors.append(type(exc).__name__)
                    return
                with lock:
                    if r.status_code == 201:
                        acked.append(r.json()["id"])
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                        return

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    if kill is not None:
        time.sleep(seconds / 2)
        os.killpg(kill.pid, signal.SIGKILL)
        kill.wait(timeout=30)
    else:
        time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "acked": len(acked),
        "ids": acked,
        "errors": errors[:5],
        "error_count": len(errors),
        "per_second": round(len(acked) / elapsed, 1),
        "latency_ms_p50": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    name = f"ql_bench_complaints_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    receiver = Receiver()
    http_server, hook_url = receiver.start()
    result: dict[str, Any] = {
        "benchmark": "complaints_intake",
        "database": "postgresql",
        **vars(args),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        migrate.upgrade(url)
        rt = Runtime.build(Settings(env=Environment.TEST, database_url=url, secret_key=SECRET))  # type: ignore[call-arg]
        op = Actor.operator("bench")
        key = accounts.create_api_key(rt, op, role="operator", subject="ops", label="bench").plaintext

        server, base = start_server(url, args.workers)
        try:
            baseline = load(base, key, args.clients, args.seconds, tag=5)
            for carrier in Carrier:
                _, secret = actions.register_endpoint(
                    rt, op, party_kind="carrier", party_id=carrier.value, url=hook_url
                )
                receiver.secrets.append(secret)
            with_hooks = load(base, key, args.clients, args.seconds, tag=8)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        # Drain what the background tasks did not post (e.g. the last requests' tasks).
        transport = webhooks.HttpxTransport(timeout=10)
        try:
            while actions.deliver_webhooks(rt, transport, limit=1000).delivered:
                pass
        finally:
            transport.close()
        with rt.sessions() as session:
            outbox = dict(
                session.execute(
                    select(WebhookDeliveryRow.status, func.count()).group_by(WebhookDeliveryRow.status)
                ).all()
            )
        lags = sorted(receiver.lags)
        received = len(receiver.seen)

        server, base = start_server(url, args.workers)
        crash = load(base, key, args.clients, args.seconds, tag=9, kill=server)
        with rt.sessions() as session:
            states = dict(session.execute(select(CaseRow.id, CaseRow.state)).all())
            stored = set(states)
            audit_rows = dict(
                session.execute(
                    select(AuditEntry.subject, func.count())
                    .where(AuditEntry.subject_type == "complaint")
                    .group_by(AuditEntry.subject)
                ).all()
            )
        lost = [i for i in crash["ids"] if i not in stored]
        # received + accept (+ forward when routing named a carrier): a case is never half-written.
        expected = {"forwarded": 3, "accepted": 2}
        incomplete = [i for i, st in states.items() if audit_rows.get(str(i), 0) != expected.get(st)]
        rt.close()
        for phase in (baseline, with_hooks, crash):
            phase.pop("ids")
        result.update(
            {
                "baseline_no_webhooks": baseline,
                "webhooks_on": with_hooks,
                "webhooks": {
                    "outbox": outbox,
                    "received_verified": received,
                    "bad_signatures": receiver.bad,
                    "lag_ms_p50": round(1000 * statistics.median(lags), 1) if lags else None,
                    "lag_ms_p95": round(1000 * lags[int(0.95 * (len(lags) - 1))], 1) if lags else None,
                },
                "crash": {**crash, "lost_acknowledged": len(lost), "incomplete_cases": len(incomplete)},
                "webhooks_cost_percent": round(
                    100 * (1 - with_hooks["per_second"] / baseline["per_second"]), 1
                )
                if baseline["per_second"]
                else None,
            }
        )
    finally:
        http_server.shutdown()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if result["crash"]["lost_acknowledged"] or result["crash"]["incomplete_cases"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
