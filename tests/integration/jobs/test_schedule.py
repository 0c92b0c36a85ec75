"""The platform's job table on a real database: every job runs cleanly, the relay and the digest are
wired to their contexts, and the CLI runs and lists them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from quietline.jobs import schedule
from quietline.marks import queries as marks_queries
from quietline.platform import changefeed
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.scheduler import CHINA_TZ
from quietline.platform.sms import RecordingSmsSender
from quietline.screening import actions as screening_actions
from quietline.screening.engine import BlockEvent


class NoWebhooks:
    """No endpoint is registered in these tests; any post would be a bug."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        raise AssertionError(f"unexpected webhook to {url}")


def test_every_job_runs_cleanly_on_a_fresh_database(any_runtime: Runtime) -> None:
    sched = schedule.scheduler(any_runtime, owner="test", webhook_transport=NoWebhooks)
    outcomes = sched.run_pending()
    failed = {o.job: o.error for o in outcomes if not o.ok}
    assert failed == {}
    ran = {o.job for o in outcomes}
    # Interval jobs are due at once; daily jobs wait for their hour.
    assert ran == {j.name for j in sched.jobs.values() if j.every is not None}
    assert "screening.daily_digest" not in ran
    # The wash lane is its own, so a long wash never holds up the one-second jobs.
    assert {name for name, job in sched.jobs.items() if job.lane != "main"} == {"screening.wash_jobs"}


def test_relay_job_turns_a_traffic_finding_into_a_high_risk_candidate(any_runtime: Runtime) -> None:
    rt = any_runtime
    with rt.sessions.begin() as session:
        changefeed.emit(
            session,
            topic="traffic.finding",
            key="+8617012345678",
            payload={"number": "+8617012345678", "pattern": "one_ring", "score": 0.97, "evidence": {}},
            at=rt.clock.now(),
        )
    sched = schedule.scheduler(rt, owner="test", webhook_transport=NoWebhooks).select(["reactions.relay"])
    [outcome] = sched.run_pending()
    assert outcome.ok and outcome.result["handled"] == 1
    with rt.sessions() as session:
        entry = marks_queries.high_risk(session, "+8617012345678")
    assert entry is not None and entry.state.value == "suspected"


def test_daily_digest_goes_out_once_in_the_evening(runtime: Runtime, sms: RecordingSmsSender) -> None:
    rt = runtime
    clock = rt.clock
    assert isinstance(clock, FakeClock)
    morning = datetime(2026, 1, 5, 10, 0, tzinfo=CHINA_TZ)
    callee = "+8613800138000"
    screening_actions.record_blocks(
        rt,
        [
            BlockEvent(
                morning + timedelta(minutes=i),
                "+8613012345678",
                callee,
                "call",
                "loan_finance",
                "refused_category",
                "6",
            )
            for i in range(2)
        ],
    )
    sched = schedule.scheduler(rt, owner="test", webhook_transport=NoWebhooks).select(
        ["screening.daily_digest"]
    )
    assert sched.run_pending() == []  # 17:00 in Beijing: not yet
    clock.set(datetime(2026, 1, 5, 20, 0, 5, tzinfo=CHINA_TZ))
    [outcome] = sched.run_pending()
    assert outcome.ok and outcome.result == {"day": "2026-01-05", "subscribers": 1}
    digests = [m for m in sms.sent if m.purpose == "screening.digest"]
    assert [(m.to, m.text) for m in digests] == [
        (callee, "【quietline】1月5日为您拦截 2 个营销来电，详情可在拦截记录中查看。")
    ]
    clock.advance(hours=2)
    assert sched.run_pending() == []  # once a day


def test_worker_cli_runs_due_jobs_once_and_lists_them(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": sqlite_url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "s",
    }
    cli = [str(Path(sys.executable).parent / "quietline")]
    run = subprocess.run(
        [*cli, "worker", "run", "--once", "--only", "registry.expire_refusals", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    [line] = run.stdout.strip().splitlines()
    assert json.loads(line) | {"due_at": None} == {
        "job": "registry.expire_refusals",
        "due_at": None,
        "ok": True,
        "result": {"expired": 0},
        "error": None,
    }
    listed = subprocess.run(
        [*cli, "worker", "jobs", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode == 0, listed.stderr
    jobs = {j["name"]: j for j in json.loads(listed.stdout)}
    assert jobs["registry.expire_refusals"]["runs"] == 1
    assert jobs["complaints.scan"]["runs"] == 0
    bad = subprocess.run(
        [*cli, "worker", "run", "--once", "--only", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "no job named 'nope'" in bad.stderr
