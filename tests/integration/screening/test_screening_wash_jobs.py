"""Durable wash jobs on SQLite and PostgreSQL: claimed once, resumed after a crash, seen only by their
submitter, results deleted after the retention period, and the API flow on top of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import make_settings

from quietline.accounts import actions as accounts
from quietline.api.app import create_app
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.clock import FakeClock
from quietline.platform.errors import Conflict, NotFound, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.registry import actions as registry
from quietline.screening import actions, queries
from quietline.screening.engine import ScreeningEngine
from quietline.screening.model import WashJobState
from quietline.screening.orm import WashJobBlobRow, WashJobRow, WashRunRow
from quietline.screening.snapshot import Snapshot
from quietline.vocabulary import Category, Channel, Role

OPERATOR = Actor.operator("test")
USCC = "91350100M000100Y43"
OTHER_USCC = "91110000100000000R"
ENTERPRISE = Actor(Role.ENTERPRISE, USCC)
OTHER = Actor(Role.ENTERPRISE, OTHER_USCC)
CONSENTED = "13900139003"
LIST = b"number\n13900139001\n13900139002\n+86 139-0013-9003\n13900139002\nnope\n"


@pytest.fixture
def rt(any_runtime: Runtime) -> Runtime:
    for uscc in (USCC, OTHER_USCC):
        accounts.register_enterprise(any_runtime, OPERATOR, uscc=uscc, name="测试营销有限公司")
    registry.refuse(any_runtime, OPERATOR, parse("13900139001"), [Category.INSURANCE], (Channel.CALL,))
    registry.grant_consent(
        any_runtime,
        OPERATOR,
        enterprise=USCC,
        number=parse(CONSENTED),
        category=Category.INSURANCE,
        channels=(Channel.CALL,),
        evidence_ref="form-7",
    )
    return any_runtime


@pytest.fixture
def snapshot(rt: Runtime) -> Callable[[], Snapshot]:
    engine = ScreeningEngine.open(rt)
    return lambda: engine.snapshot


def _submit(rt: Runtime, actor: Actor = ENTERPRISE, data: bytes = LIST) -> str:
    return actions.submit_wash_job(
        rt, actor, data=data, enterprise=USCC, category=Category.INSURANCE, channel=Channel.CALL
    )


def _count(rt: Runtime, model: Any, *where: Any) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _job(rt: Runtime, job_id: str, actor: Actor = ENTERPRISE) -> queries.WashJob:
    with rt.sessions() as session:
        return queries.wash_job(session, actor, job_id)


def test_a_job_runs_once_and_keeps_its_result_in_the_database(
    rt: Runtime, snapshot: Callable[[], Snapshot]
) -> None:
    job_id = _submit(rt)
    assert _job(rt, job_id).state == WashJobState.QUEUED.value
    assert _count(rt, WashJobBlobRow, WashJobBlobRow.kind == "upload") == 1
    assert actions.run_wash_jobs(rt, snapshot=snapshot) == 1
    assert actions.run_wash_jobs(rt, snapshot=snapshot) == 0
    job = _job(rt, job_id)
    assert job.state == WashJobState.DONE.value
    assert job.summary is not None
    assert {k: job.summary[k] for k in ("lines", "callable", "no_consent", "invalid", "duplicates")} == {
        "lines": 5,
        "callable": 1,
        "no_consent": 2,
        "invalid": 1,
        "duplicates": 1,
    }
    with rt.sessions() as session:
        assert queries.wash_job_result(session, ENTERPRISE, job_id).tolist() == [8613900139003]
    # The upload is gone once the job ended; the run counts against the quota and is audited.
    assert _count(rt, WashJobBlobRow, WashJobBlobRow.kind == "upload") == 0
    assert _count(rt, WashRunRow, WashRunRow.enterprise == USCC) == 1
    assert _count(rt, AuditEntry, AuditEntry.action == "screening.wash_submitted") == 1
    assert _count(rt, AuditEntry, AuditEntry.action == "screening.wash") == 1


def test_without_a_snapshot_the_runner_loads_one(rt: Runtime) -> None:
    job_id = _submit(rt)
    assert actions.run_wash_jobs(rt) == 1  # how the scheduler calls it
    with rt.sessions() as session:
        assert queries.wash_job_result(session, ENTERPRISE, job_id).tolist() == [8613900139003]


def test_two_workers_at_once_process_each_job_exactly_once(
    rt: Runtime, snapshot: Callable[[], Snapshot]
) -> None:
    jobs = [_submit(rt) for _ in range(5)]
    start = threading.Barrier(2)
    done: list[int] = []

    def worker(name: str) -> None:
        start.wait()
        done.append(actions.run_wash_jobs(rt, limit=10, snapshot=snapshot, worker=name))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(done) == len(jobs)
    assert all(_job(rt, j).state == WashJobState.DONE.value for j in jobs)
    assert _count(rt, WashRunRow) == len(jobs)
    assert _count(rt, AuditEntry, AuditEntry.action == "screening.wash") == len(jobs)
    assert _count(rt, WashJobRow, WashJobRow.attempts != 1) == 0


def test_a_single_job_claimed_by_two_workers_at_once_goes_to_one(rt: Runtime) -> None:
    _submit(rt)
    start = threading.Barrier(2)
    claims: list[Any] = []

    def claim(name: str) -> None:
        start.wait()
        claims.append(actions._claim_wash_job(rt, name, actions.WASH_JOB_LEASE))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(c is None for c in claims) == [False, True]


def test_a_job_whose_worker_died_is_resumed_after_its_lease_by_a_restarted_process(
    rt: Runtime, db_url: str, tmp_path: Path, clock: FakeClock, snapshot: Callable[[], Snapshot]
) -> None:
    job_id = _submit(rt)
    dead = actions._claim_wash_job(rt, "crashed-worker", actions.WASH_JOB_LEASE)  # and then it crashed
    assert dead is not None
    assert _job(rt, job_id).state == WashJobState.RUNNING.value
    assert actions.run_wash_jobs(rt, snapshot=snapshot) == 0  # its lease still holds
    clock.advance(seconds=actions.WASH_JOB_LEASE.total_seconds() + 1)
    restarted = Runtime.build(make_settings(db_url, tmp_path), clock=clock, sms=RecordingSmsSender())
    try:
        assert actions.run_wash_jobs(restarted, snapshot=snapshot) == 1
        job = _job(restarted, job_id)
        assert job.state == WashJobState.DONE.value
        with restarted.sessions() as session:
            assert session.get(WashJobRow, job_id).attempts == 2  # type: ignore[union-attr]
        # The dead worker coming back late cannot record a second outcome (its claim is stale).
        assert actions._process(rt, dead, snapshot, actions.WASH_RESULT_RETENTION) is False
        assert _count(restarted, WashRunRow) == 1
    finally:
        restarted.close()


def test_a_job_that_keeps_losing_its_worker_ends_as_failed(rt: Runtime, clock: FakeClock) -> None:
    job_id = _submit(rt)
    for _ in range(actions.MAX_WASH_ATTEMPTS):
        assert actions._claim_wash_job(rt, "crashing", actions.WASH_JOB_LEASE) is not None
        clock.advance(seconds=actions.WASH_JOB_LEASE.total_seconds() + 1)
    assert actions._claim_wash_job(rt, "next", actions.WASH_JOB_LEASE) is None
    job = _job(rt, job_id)
    assert job.state == WashJobState.FAILED.value
    assert job.error is not None
    assert "attempts" in job.error["message"]
    assert _count(rt, WashJobBlobRow) == 0


def test_only_the_submitter_sees_a_job_or_its_result(rt: Runtime, snapshot: Callable[[], Snapshot]) -> None:
    job_id = _submit(rt)
    actions.run_wash_jobs(rt, snapshot=snapshot)
    for stranger in (OTHER, Actor.operator("ops"), Actor(Role.CARRIER, "china_mobile")):
        with rt.sessions() as session:
            with pytest.raises(NotFound):
                queries.wash_job(session, stranger, job_id)
            with pytest.raises(NotFound):
                queries.wash_job_result(session, stranger, job_id)
    with rt.sessions() as session, pytest.raises(NotFound):
        queries.wash_job(session, ENTERPRISE, "no-such-job")


def test_results_are_deleted_after_the_retention_period(
    rt: Runtime, clock: FakeClock, snapshot: Callable[[], Snapshot]
) -> None:
    job_id = _submit(rt)
    actions.run_wash_jobs(rt, snapshot=snapshot)
    clock.advance(seconds=actions.WASH_RESULT_RETENTION.total_seconds() - 60)
    actions.run_wash_jobs(rt, snapshot=snapshot)
    assert _job(rt, job_id).result_available
    clock.advance(seconds=120)
    actions.run_wash_jobs(rt, snapshot=snapshot)
    job = _job(rt, job_id)
    assert (job.state, job.result_available) == (WashJobState.DONE.value, False)
    assert job.summary is not None and job.summary["callable"] == 1  # the counts stay
    assert _count(rt, WashJobBlobRow) == 0
    assert _count(rt, AuditEntry, AuditEntry.action == "screening.wash_result_deleted") == 1
    with rt.sessions() as session, pytest.raises(NotFound, match="retention"):
        queries.wash_job_result(session, ENTERPRISE, job_id)


def test_quota_is_checked_at_submission_and_charged_when_the_job_ends(
    rt: Runtime, clock: FakeClock, snapshot: Callable[[], Snapshot]
) -> None:
    rt.settings.wash_daily_quota = 8
    first = _submit(rt)
    clock.advance(seconds=1)  # jobs run oldest first
    second = _submit(rt)  # 5 + 5 > 8, but nothing is charged before a job ends
    with rt.sessions() as session, pytest.raises(Conflict):
        queries.wash_job_result(session, ENTERPRISE, first)
    assert actions.run_wash_jobs(rt, limit=5, snapshot=snapshot) == 2
    assert _job(rt, first).state == WashJobState.DONE.value
    failed = _job(rt, second)
    assert failed.state == WashJobState.FAILED.value
    assert failed.error is not None and failed.error["field"] == "quota"
    with pytest.raises(RateLimited):
        _submit(rt)
    assert _count(rt, WashRunRow) == 1


# --- the API flow, on both databases ------------------------------------------------------------------


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt)) as test_client:
        yield test_client


def _key(rt: Runtime, uscc: str) -> dict[str, str]:
    created = accounts.create_api_key(rt, OPERATOR, role=Role.ENTERPRISE, subject=uscc, label="test")
    return {"Authorization": f"Bearer {created.plaintext}"}


def _wait(client: TestClient, job: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):  # a background thread: wait for it, this is not testing time
        status = client.get(f"/v1/wash/{job}", headers=headers).json()
        if status["state"] in ("done", "failed"):
            return dict(status)
        time.sleep(0.025)
    raise AssertionError("wash job did not finish")


def test_api_submit_status_download_and_another_enterprise_gets_404(rt: Runtime, client: TestClient) -> None:
    mine, theirs = _key(rt, USCC), _key(rt, OTHER_USCC)
    r = client.post(
        "/v1/wash",
        data={"enterprise": USCC, "category": "保险推销"},
        files={"file": ("list.csv", LIST, "text/csv")},
        headers=mine,
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] in ("queued", "running", "done")
    job = r.json()["id"]
    status = _wait(client, job, mine)
    assert status["state"] == "done", status
    assert status["summary"]["callable"] == 1
    download = client.get(status["download"], headers=mine)
    assert download.status_code == 200
    assert download.text == "+8613900139003\n"
    for path in (f"/v1/wash/{job}", f"/v1/wash/{job}/download"):
        other = client.get(path, headers=theirs)
        assert other.status_code == 404, other.text
        assert other.json()["field"] == "job"
    # Another enterprise cannot wash in this one's name either.
    r = client.post(
        "/v1/wash",
        data={"enterprise": USCC, "category": "insurance"},
        files={"file": ("l.txt", b"13800138000\n")},
        headers=theirs,
    )
    assert r.status_code == 403


def test_api_status_is_served_by_any_process(
    rt: Runtime, client: TestClient, snapshot: Callable[[], Snapshot]
) -> None:
    """A job submitted elsewhere (another server process) is reported and downloaded by this one."""
    job_id = _submit(rt)
    actions.run_wash_jobs(rt, snapshot=snapshot)  # a separate worker ran it
    mine = _key(rt, USCC)
    status = client.get(f"/v1/wash/{job_id}", headers=mine).json()
    assert status["state"] == "done"
    assert client.get(status["download"], headers=mine).text == "+8613900139003\n"
