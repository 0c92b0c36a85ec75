"""No case is lost when the server is killed mid-load: every report the API acknowledged is in the
database afterwards, complete with its audit rows and its webhook outbox row (the outbox commits with
the case, so a crash cannot separate a case from its announcement)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from quietline.accounts import actions as accounts
from quietline.complaints import actions
from quietline.complaints.orm import CaseRow, WebhookDeliveryRow
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings

SERVER = str(Path(sys.executable).parent / "quietline")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # starts and kills a real server on each backend (~25 s each)
def test_killed_server_loses_no_acknowledged_case(db_url: str, tmp_path: Path) -> None:
    secret = "crash-test-secret"
    settings = Settings(env=Environment.TEST, database_url=db_url, secret_key=secret)  # type: ignore[call-arg]
    rt = Runtime.build(settings)
    op = Actor.operator("crash-test")
    key = accounts.create_api_key(rt, op, role="operator", subject="ops", label="crash").plaintext
    # An endpoint nobody listens on: outbox rows stay pending, so we can count them after the crash.
    actions.register_endpoint(
        rt, op, party_kind="carrier", party_id="china_unicom", url="http://127.0.0.1:9/x"
    )
    port = _free_port()
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": db_url,
        "QUIETLINE_SECRET_KEY": secret,
        "QUIETLINE_ENV": "test",
    }
    server = subprocess.Popen(
        [SERVER, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        acked: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()
        at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

        def load(worker: int) -> None:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
            ) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    body = {
                        "reporter": f"138{worker:02d}{i:06d}",
                        "reported": "13012345678",
                        "channel": "call",
                        "at": at,
                        "form": "recorded",
                    }
                    try:
                        r = client.post("/v1/complaints", json=body)
                    except httpx.HTTPError:
                        return  # the server is gone
                    with lock:
                        if r.status_code == 201:
                            acked.append(r.json()["id"])
                        else:
                            failures.append(f"{r.status_code} {r.text}")
                            return

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        while len(acked) < 40 and time.monotonic() < deadline + 30:
            time.sleep(0.05)
        os.killpg(server.pid, signal.SIGKILL)  # mid-load, no shutdown
        server.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    assert failures == []
    assert len(acked) >= 40
    with rt.sessions() as session:
        ids = set(session.scalars(select(CaseRow.id)))
        assert set(acked) <= ids  # nothing acknowledged was lost
        audit_counts = dict(
            session.execute(
                select(AuditEntry.subject, func.count())
                .where(AuditEntry.subject_type == "complaint")
                .group_by(AuditEntry.subject)
            ).all()
        )
        outbox = dict(
            session.execute(
                select(WebhookDeliveryRow.case_id, func.count()).group_by(WebhookDeliveryRow.case_id)
            ).all()
        )
    # Every stored case is whole: received + accept + forward audited, one outbox row.
    assert {audit_counts.get(str(i)) for i in ids} == {3}
    assert {outbox.get(i) for i in ids} == {1}
    rt.close()
