"""The scheduler on SQLite and PostgreSQL: each due job runs once per period across processes, a dead
process's lease expires, a failing job is recorded and does not stop the others."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.scheduler import CHINA_TZ, Job, JobRow, Scheduler


class Calls:
    def __init__(self) -> None:
        self.due: list[datetime] = []

    def __call__(self, _rt: Runtime, due: datetime) -> dict[str, int]:
        self.due.append(due)
        return {"n": len(self.due)}


def _clock(rt: Runtime) -> FakeClock:
    assert isinstance(rt.clock, FakeClock)
    return rt.clock


def test_due_job_runs_once_per_period(any_runtime: Runtime) -> None:
    rt, clock = any_runtime, _clock(any_runtime)
    calls = Calls()
    sched = Scheduler(rt, [Job("tick", calls, "t", every=timedelta(minutes=5))], owner="a")
    start = clock.now()
    [outcome] = sched.run_pending()
    assert outcome.ok and outcome.result == {"n": 1}
    assert sched.run_pending() == []  # not due again yet
    clock.advance(minutes=4)
    assert sched.run_pending() == []
    clock.advance(minutes=1)
    assert [o.job for o in sched.run_pending()] == ["tick"]
    assert calls.due == [start, start + timedelta(minutes=5)]
    [status] = sched.status()
    assert (status.runs, status.failures, status.last_status) == (2, 0, "ok")
    assert status.next_due_at == start + timedelta(minutes=10)


def test_two_processes_never_run_the_same_due_job_twice(any_runtime: Runtime) -> None:
    rt = any_runtime
    calls = Calls()
    jobs = [Job("tick", calls, "t", every=timedelta(minutes=5))]
    a, b = Scheduler(rt, jobs, owner="a"), Scheduler(rt, jobs, owner="b")
    a._ensure_rows()
    [due] = a._due_now(rt.clock.now()).values()
    assert a._claim(jobs[0], rt.clock.now(), due)  # a holds the lease, as if mid-run
    assert not b._claim(jobs[0], rt.clock.now(), due)  # b, racing for the same run, does not get it
    assert b.run_pending() == []  # b sees it held
    assert calls.due == []
    assert [s.running for s in b.status()] == [True]


def test_a_dead_process_lease_expires_and_another_takes_the_job(any_runtime: Runtime) -> None:
    rt, clock = any_runtime, _clock(any_runtime)
    calls = Calls()
    jobs = [Job("tick", calls, "t", every=timedelta(minutes=1), lease=timedelta(minutes=10))]
    dead, alive = Scheduler(rt, jobs, owner="dead"), Scheduler(rt, jobs, owner="alive")
    dead._ensure_rows()
    [due] = dead._due_now(clock.now()).values()
    assert dead._claim(jobs[0], clock.now(), due)  # claimed, then the process died
    clock.advance(minutes=9)
    assert alive.run_pending() == []
    clock.advance(minutes=2)
    assert [o.job for o in alive.run_pending()] == ["tick"]
    with rt.sessions() as session:
        row = session.scalar(select(JobRow).where(JobRow.name == "tick"))
        assert row is not None
        assert (row.lease_owner, row.runs) == (None, 1)


def test_a_failing_job_is_recorded_and_the_others_still_run(any_runtime: Runtime) -> None:
    rt, clock = any_runtime, _clock(any_runtime)

    def boom(_rt: Runtime, _due: datetime) -> None:
        raise RuntimeError("webhook receiver exploded")

    calls = Calls()
    sched = Scheduler(
        rt,
        [
            Job("boom", boom, "b", every=timedelta(minutes=1)),
            Job("fine", calls, "f", every=timedelta(minutes=1)),
        ],
        owner="a",
    )
    outcomes = {o.job: o for o in sched.run_pending()}
    assert not outcomes["boom"].ok
    assert "webhook receiver exploded" in (outcomes["boom"].error or "")
    assert outcomes["fine"].ok
    status = {s.name: s for s in sched.status()}
    assert (status["boom"].failures, status["boom"].last_status) == (1, "failed")
    # A failed job is retried next period, not in a tight loop.
    assert sched.run_pending() == []
    clock.advance(minutes=1)
    assert {o.job for o in sched.run_pending()} == {"boom", "fine"}


def test_daily_job_runs_for_the_day_it_was_due_even_when_late(any_runtime: Runtime) -> None:
    rt, clock = any_runtime, _clock(any_runtime)  # starts Mon 2026-01-05 17:00 Beijing
    calls = Calls()
    sched = Scheduler(rt, [Job("digest", calls, "d", daily_at=time(20, 0))], owner="a")
    assert sched.run_pending() == []
    clock.set(datetime(2026, 1, 6, 9, 0, tzinfo=CHINA_TZ))  # the worker was down all evening
    [outcome] = sched.run_pending()
    assert outcome.ok
    assert calls.due == [datetime(2026, 1, 5, 20, 0, tzinfo=CHINA_TZ)]
    [status] = sched.status()
    assert status.next_due_at == datetime(2026, 1, 6, 20, 0, tzinfo=CHINA_TZ)


def test_select_names_an_unknown_job(any_runtime: Runtime) -> None:
    import pytest

    from quietline.platform.errors import InvalidInput

    sched = Scheduler(any_runtime, [Job("a", Calls(), "a", every=timedelta(seconds=1))], owner="x")
    with pytest.raises(InvalidInput, match="no job named 'b'"):
        sched.select(["b"])
    assert list(sched.select(["a"]).jobs) == ["a"]


def test_long_jobs_run_in_their_own_lane(any_runtime: Runtime) -> None:
    import threading

    rt = any_runtime
    quick, slow = Calls(), Calls()
    sched = Scheduler(
        rt,
        [
            Job("quick", quick, "q", every=timedelta(seconds=1)),
            Job("slow", slow, "s", every=timedelta(seconds=1), lane="wash"),
        ],
        owner="a",
    )
    lanes = sched.lanes()
    assert {lane: list(part.jobs) for lane, part in lanes.items()} == {"main": ["quick"], "wash": ["slow"]}
    stop = threading.Event()
    from quietline.platform.scheduler import start_in_threads

    threads = start_in_threads(sched, stop, tick=0.05)
    assert {t.name for t in threads} == {"quietline-jobs-main", "quietline-jobs-wash"}
    for _ in range(200):  # both lanes run their due job (the fake clock stands still: once each)
        if quick.due and slow.due:
            break
        stop.wait(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert (len(quick.due), len(slow.due)) == (1, 1)
