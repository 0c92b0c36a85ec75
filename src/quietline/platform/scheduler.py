"""Periodic jobs run by any number of worker processes, each job by one process at a time.

The platform has jobs that must run on their own: flag 12321 deadline breaches, deliver webhooks, relay
events between contexts, expire refusals, purge consent proofs past retention, refresh reputations, send
the daily 拦截 digest, process wash jobs. ``quietline worker`` runs them, and ``quietline serve`` runs
the same loop in a background thread for the embedded install, so ``make run`` is the whole platform.

Why a lease table rather than cron: several processes (workers, serve threads, machines) may run the
loop at once, and a job must still run once per period. Each job has one ``scheduler_jobs`` row; a
process claims it with a single conditional ``UPDATE … WHERE next_due_at <= now AND (lease expired)``
(atomic on SQLite and PostgreSQL alike), runs it, then sets the next due time. A process that dies
mid-job leaves a lease that expires, so another process picks the job up again. Jobs are therefore run
at least once per period; each job is written to be safe to repeat.

Time comes from the runtime's clock, so tests drive the scheduler with a fake clock.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime

log = logging.getLogger(__name__)

#: China Standard Time: daily jobs (the digest at 20:00) are set in the subscribers' local time.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


class JobRow(Base):
    """One row per job: when it is next due and who holds it now."""

    __tablename__ = "scheduler_jobs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    next_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


JobResult = dict[str, Any] | int | None


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job: every ``every``, or once a day at ``daily_at`` China time.

    ``run`` receives the runtime and the scheduled time (the due time it was claimed for), so a daily job
    knows which day it is for even when it runs late. ``lease`` bounds how long one run may hold the job
    before another process may assume it died.
    """

    name: str
    run: Callable[[Runtime, datetime], JobResult]
    description: str
    every: timedelta | None = None
    daily_at: time | None = None
    lease: timedelta = timedelta(minutes=10)
    #: Jobs of one lane run one after another in one loop; a long job (a 10-million-line wash) gets its
    #: own lane so it never delays the one-second jobs (the relay, webhooks).
    lane: str = "main"

    def __post_init__(self) -> None:
        if (self.every is None) == (self.daily_at is None):
            raise ValueError(f"job {self.name}: give exactly one of every= and daily_at=")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"job {self.name}: every= must be positive")

    def next_due(self, after: datetime) -> datetime:
        """The first due time strictly after ``after``."""
        if self.every is not None:
            return after + self.every
        if self.daily_at is None:  # pragma: no cover - __post_init__ guarantees one of the two
            raise ValueError(f"job {self.name} has no period")
        local = after.astimezone(CHINA_TZ)
        candidate = datetime.combine(local.date(), self.daily_at, tzinfo=CHINA_TZ)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(UTC)

    def first_due(self, now: datetime) -> datetime:
        """A new interval job is due at once; a new daily job at its next daily time."""
        return now if self.every is not None else self.next_due(now)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of a job did."""

    job: str
    due_at: datetime
    ok: bool
    result: dict[str, Any]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "due_at": self.due_at.isoformat(),
            "ok": self.ok,
            "result": self.result,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class JobStatus:
    name: str
    description: str
    next_due_at: datetime | None
    running: bool
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_result: dict[str, Any] | None
    last_error: str | None
    runs: int
    failures: int

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "name": self.name,
            "description": self.description,
            "next_due_at": iso(self.next_due_at),
            "running": self.running,
            "last_started_at": iso(self.last_started_at),
            "last_finished_at": iso(self.last_finished_at),
            "last_status": self.last_status,
            "last_result": self.last_result,
            "last_error": self.last_error,
            "runs": self.runs,
            "failures": self.failures,
        }


def _as_result(value: JobResult) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, int):
        return {"count": value}
    return value


class Scheduler:
    """Runs the due jobs of one process; many schedulers may share one database."""

    def __init__(self, rt: Runtime, jobs: Sequence[Job], *, owner: str) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        self.rt = rt
        self.jobs = {job.name: job for job in jobs}
        self.owner = owner[:120]
        self._known: set[str] = set()

    def select(self, names: Sequence[str]) -> Scheduler:
        """A scheduler over some of the jobs (``quietline worker --only``), naming an unknown one."""
        for name in names:
            if name not in self.jobs:
                raise InvalidInput(
                    f"no job named {name!r}; jobs: {', '.join(sorted(self.jobs))}", field="only"
                )
        return Scheduler(self.rt, [self.jobs[n] for n in names], owner=self.owner)

    def lanes(self) -> dict[str, Scheduler]:
        """One scheduler per lane (each run by its own loop or thread)."""
        names: dict[str, list[Job]] = {}
        for job in self.jobs.values():
            names.setdefault(job.lane, []).append(job)
        return {lane: Scheduler(self.rt, jobs, owner=self.owner) for lane, jobs in names.items()}

    def _ensure_rows(self) -> None:
        missing = [name for name in self.jobs if name not in self._known]
        if not missing:
            return
        now = self.rt.clock.now()
        for name in missing:
            try:
                with self.rt.sessions.begin() as session:
                    if session.get(JobRow, name) is None:
                        session.add(
                            JobRow(name=name, next_due_at=self.jobs[name].first_due(now), runs=0, failures=0)
                        )
            except IntegrityError:
                pass  # another process inserted it first: fine.
            self._known.add(name)

    def _due_now(self, now: datetime) -> dict[str, datetime]:
        """Jobs that look due and free, read without a write lock (on SQLite a write transaction locks
        the whole database, so an idle loop must not take one every tick)."""
        with self.rt.sessions() as session:
            rows = session.execute(
                select(JobRow.name, JobRow.next_due_at, JobRow.lease_until).where(
                    JobRow.name.in_(list(self.jobs))
                )
            ).all()
        return {name: due for name, due, lease in rows if due <= now and (lease is None or lease < now)}

    def _claim(self, job: Job, now: datetime, due: datetime) -> bool:
        """Take the job's lease for the run due at ``due``; False when another process got there first."""
        with self.rt.sessions.begin() as session:
            claimed = session.execute(
                update(JobRow)
                .where(
                    JobRow.name == job.name,
                    JobRow.next_due_at == due,
                    (JobRow.lease_until.is_(None)) | (JobRow.lease_until < now),
                )
                .values(lease_owner=self.owner, lease_until=now + job.lease, last_started_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    def _finish(self, job: Job, due: datetime, outcome: Outcome) -> None:
        now = self.rt.clock.now()
        # A job that ran long is next due one period after it finished, never in the past, so a slow
        # run does not trigger a burst of catch-up runs; a daily job moves to its next day.
        next_due = job.next_due(max(now, due))
        with self.rt.sessions.begin() as session:
            row = session.get(JobRow, job.name)
            if row is None or row.lease_owner != self.owner:
                return  # our lease expired and someone else took the job over; they will record it.
            row.next_due_at = next_due
            row.lease_owner = None
            row.lease_until = None
            row.last_finished_at = now
            row.last_status = "ok" if outcome.ok else "failed"
            row.last_result = outcome.result
            row.last_error = outcome.error
            row.runs = (row.runs or 0) + 1
            if not outcome.ok:
                row.failures = (row.failures or 0) + 1

    def run_pending(self) -> list[Outcome]:
        """Run every job that is due now and not held by another process; one pass."""
        self._ensure_rows()
        outcomes: list[Outcome] = []
        candidates = self._due_now(self.rt.clock.now())
        for job in self.jobs.values():
            due = candidates.get(job.name)
            if due is None or not self._claim(job, self.rt.clock.now(), due):
                continue
            try:
                outcome = Outcome(job.name, due, True, _as_result(job.run(self.rt, due)))
            except Exception as exc:  # a failing job must not stop the others; it is recorded and retried.
                log.exception("job %s failed", job.name)
                text = "".join(traceback.format_exception_only(exc)).strip()[:2000]
                outcome = Outcome(job.name, due, False, {}, text)
            self._finish(job, due, outcome)
            outcomes.append(outcome)
        return outcomes

    def run_forever(
        self,
        stop: threading.Event,
        *,
        tick: float = 0.5,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        """Poll for due jobs every ``tick`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                for outcome in self.run_pending():
                    if on_outcome is not None:
                        on_outcome(outcome)
            except Exception:  # the database may be briefly unavailable: keep the loop alive.
                log.exception("scheduler pass failed")
            stop.wait(tick)

    def status(self) -> list[JobStatus]:
        """Every job with its next due time and its last run."""
        now = self.rt.clock.now()
        with self.rt.sessions() as session:
            rows = {
                r.name: r for r in session.scalars(select(JobRow).where(JobRow.name.in_(list(self.jobs))))
            }
        out = []
        for name, job in self.jobs.items():
            row = rows.get(name)
            out.append(
                JobStatus(
                    name=name,
                    description=job.description,
                    next_due_at=row.next_due_at if row else None,
                    running=bool(row and row.lease_until and row.lease_until >= now),
                    last_started_at=row.last_started_at if row else None,
                    last_finished_at=row.last_finished_at if row else None,
                    last_status=row.last_status if row else None,
                    last_result=row.last_result if row else None,
                    last_error=row.last_error if row else None,
                    runs=row.runs if row else 0,
                    failures=row.failures if row else 0,
                )
            )
        return out


def start_in_threads(
    scheduler: Scheduler,
    stop: threading.Event,
    *,
    tick: float = 0.5,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[threading.Thread]:
    """Run each lane of the scheduler in its own daemon thread until ``stop`` is set (``quietline
    worker run``, and ``quietline serve`` for the embedded install)."""
    threads = []
    for lane, part in scheduler.lanes().items():
        thread = threading.Thread(
            target=part.run_forever,
            args=(stop,),
            kwargs={"tick": tick, "on_outcome": on_outcome},
            name=f"quietline-jobs-{lane}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads
