"""The only write path of the screening context: block records, washes, wash jobs, daily digests.

Every action is one transaction; washes, wash jobs and digests write their audit row in it. Block
records are written in batches by the engine's writer thread (they record what the engine did, the
audit log records who changed what).

Wash jobs (the API's background washes) live in the database (``WashJobRow``), not in the memory of the
process that received them: any server process or ``quietline worker`` claims them with
``run_wash_jobs``, a restart loses nothing, and every process can report their status and serve their
result.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quietline.accounts.model import parse_uscc
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, PermissionDenied, QuietlineError, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import SmsMessage
from quietline.platform.workdays import CHINA_TZ, china_date
from quietline.screening import wash as washing
from quietline.screening.model import Reason, WashJobState
from quietline.screening.orm import BlockRecordRow, DigestSentRow, WashJobBlobRow, WashJobRow, WashRunRow
from quietline.screening.snapshot import Snapshot
from quietline.vocabulary import Category, Channel, Role

if TYPE_CHECKING:
    from quietline.screening.engine import BlockEvent

log = logging.getLogger(__name__)

#: The issue: a wash takes up to 10 million lines.
MAX_WASH_LINES = 10_000_000
#: An upload larger than this is refused before it is stored (10 million lines of the longest usual
#: spellings, "+86 138-0013-8000,name", fit comfortably).
MAX_WASH_BYTES = 512 << 20
#: How long a claimed job is its worker's alone. A wash of 10 million lines takes well under a
#: minute; a job still "running" after this lost its worker (crash, restart) and is claimed again.
WASH_JOB_LEASE = timedelta(minutes=15)
#: How long a finished job's result (the callable numbers) is kept for download; the counts stay.
WASH_RESULT_RETENTION = timedelta(days=3)
#: A job whose worker died (or failed unexpectedly) this many times ends as failed.
MAX_WASH_ATTEMPTS = 3
#: After an unexpected failure a job waits this long before it is claimed again.
WASH_RETRY_DELAY = timedelta(seconds=30)
#: Bytes per stored chunk of an upload or a result.
BLOB_CHUNK = 8 << 20
UPLOAD, RESULT = "upload", "result"
#: Reasons the daily digest counts as "营销来电" (marketing the subscriber refused or never agreed to).
MARKETING_REASONS = (Reason.REFUSED_CATEGORY.value, Reason.NO_CONSENT.value)


def record_blocks(rt: Runtime, events: Sequence[BlockEvent]) -> None:
    """Insert queued block records in one transaction (called by the engine's writer thread)."""
    if not events:
        return
    with rt.sessions.begin() as session:
        # The table, not the ORM entity: a Core executemany skips the ORM's per-row bulk bookkeeping
        # (measured: 17 → 12 ms per 1,000 records on SQLite), and this writer runs beside the decisions.
        session.execute(
            insert(cast(Table, BlockRecordRow.__table__)),
            [
                {
                    "at": e.at,
                    "callee": e.callee,
                    "caller": e.caller,
                    "channel": e.channel,
                    "category": e.category,
                    "reason": e.reason,
                    "rule": e.rule,
                }
                for e in events
            ],
        )


def _check_wash_actor(actor: Actor, enterprise: str) -> None:
    if actor.role is Role.OPERATOR:
        return
    if actor.role is Role.ENTERPRISE and actor.subject == enterprise:
        return
    raise PermissionDenied("an enterprise washes lists only in its own name", field="enterprise")


def used_today(rt: Runtime, enterprise: str, day: date) -> int:
    with rt.sessions() as session:
        return _used(session, enterprise, day)


def _used(session: Session, enterprise: str, day: date) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(WashRunRow.lines), 0)).where(
                WashRunRow.enterprise == enterprise, WashRunRow.day == day.isoformat()
            )
        )
        or 0
    )


def _check_lines(data: bytes) -> int:
    lines = washing.count_lines(data)
    if lines > MAX_WASH_LINES:
        raise InvalidInput(f"{lines} lines; a wash takes at most {MAX_WASH_LINES}", field="file")
    return lines


def _check_quota(used: int, lines: int, quota: int, day: date) -> None:
    if used + lines > quota:
        raise RateLimited(
            f"daily wash quota exceeded: {used} of {quota} lines used today ({day}), this list has {lines}",
            field="quota",
        )


def _record_wash(
    session: Session,
    rt: Runtime,
    actor: Actor,
    *,
    uscc: str,
    category: str,
    channel: str,
    lines: int,
    result: washing.WashResult,
    now: datetime,
) -> dict[str, Any]:
    """Charge the quota, record the run and its audit row (in the caller's transaction); the summary.

    The quota is checked again here, under a per-enterprise lock (SQLite's write lock is already held:
    ``BEGIN IMMEDIATE``; PostgreSQL takes a transaction advisory lock), so two washes finishing at
    once cannot both slip under it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"wash-quota:{uscc}"})
    day = china_date(now)
    used = _used(session, uscc, day)
    quota = rt.settings.wash_daily_quota
    _check_quota(used, lines, quota, day)
    summary = {**result.summary(), "enterprise": uscc, "category": category, "channel": channel}
    session.add(
        WashRunRow(
            at=now,
            day=day.isoformat(),
            enterprise=uscc,
            actor=str(actor),
            category=category,
            channel=channel,
            lines=lines,  # what the quota counts: every non-blank line uploaded
            callable=result.callable,
            refused=result.refused,
            no_consent=result.no_consent,
            invalid=result.invalid,
            duplicates=result.duplicates,
        )
    )
    summary = {**summary, "quota_used": used + lines, "quota": quota}
    audit.record(
        session,
        actor=actor,
        action="screening.wash",
        subject_type="enterprise",
        subject=uscc,
        at=now,
        after=summary,
    )
    return summary


def wash_file(
    rt: Runtime,
    actor: Actor,
    snapshot: Snapshot,
    *,
    source: Path,
    enterprise: str,
    category: Category,
    channel: Channel,
    out: Path,
    progress: washing.Progress | None = None,
) -> dict[str, Any]:
    """Wash an uploaded list into ``out`` (callable numbers, E.164, one per line) and return the summary.

    Counted against the enterprise's daily quota (``settings.wash_daily_quota`` lines per China day)
    and audited with the counts only, never the numbers.
    """
    uscc = parse_uscc(enterprise, field="enterprise")
    _check_wash_actor(actor, uscc)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot be read ({exc.strerror})", field="file") from None
    lines = _check_lines(data)
    now = rt.clock.now()
    day = china_date(now)
    _check_quota(used_today(rt, uscc, day), lines, rt.settings.wash_daily_quota, day)
    result = washing.wash(
        snapshot, data, enterprise=uscc, category=category, channel=channel, progress=progress
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(washing.e164_lines(result.callable_numbers))
        tmp.replace(out)
    except OSError as exc:
        raise InvalidInput(f"{out}: cannot be written ({exc.strerror})", field="out") from None
    with rt.sessions.begin() as session:
        summary = _record_wash(
            session,
            rt,
            actor,
            uscc=uscc,
            category=category.value,
            channel=channel.value,
            lines=lines,
            result=result,
            now=now,
        )
    return {**summary, "out": str(out)}


# --- wash jobs (the API's background washes) ---------------------------------------------------------


def _write_blob(session: Session, job_id: str, kind: str, payload: bytes) -> None:
    for seq, begin in enumerate(range(0, max(len(payload), 1), BLOB_CHUNK)):
        session.add(
            WashJobBlobRow(job_id=job_id, kind=kind, seq=seq, data=payload[begin : begin + BLOB_CHUNK])
        )


def _read_blob(session: Session, job_id: str, kind: str) -> bytes | None:
    chunks = session.scalars(
        select(WashJobBlobRow.data)
        .where(WashJobBlobRow.job_id == job_id, WashJobBlobRow.kind == kind)
        .order_by(WashJobBlobRow.seq)
    ).all()
    return b"".join(chunks) if chunks else None


def _drop_blob(session: Session, job_id: str, kind: str) -> None:
    session.execute(
        delete(WashJobBlobRow).where(WashJobBlobRow.job_id == job_id, WashJobBlobRow.kind == kind)
    )


def submit_wash_job(
    rt: Runtime,
    actor: Actor,
    *,
    data: bytes,
    enterprise: str,
    category: Category,
    channel: Channel,
) -> str:
    """Queue a wash of ``data`` (the uploaded list) and return the job's id.

    Size, permission and today's quota are checked now, so an impossible job is refused at once;
    the quota is charged when the job finishes (and checked again then)."""
    uscc = parse_uscc(enterprise, field="enterprise")
    _check_wash_actor(actor, uscc)
    if len(data) > MAX_WASH_BYTES:
        raise InvalidInput(f"{len(data)} bytes; an upload is at most {MAX_WASH_BYTES}", field="file")
    lines = _check_lines(data)
    now = rt.clock.now()
    day = china_date(now)
    _check_quota(used_today(rt, uscc, day), lines, rt.settings.wash_daily_quota, day)
    job_id = secrets.token_urlsafe(12)
    packed = zlib.compress(data, 1)
    with rt.sessions.begin() as session:
        session.add(
            WashJobRow(
                id=job_id,
                owner=str(actor),
                enterprise=uscc,
                category=category.value,
                channel=channel.value,
                state=WashJobState.QUEUED.value,
                submitted_at=now,
                attempts=0,
                lines=lines,
                upload_bytes=len(data),
            )
        )
        session.flush()
        _write_blob(session, job_id, UPLOAD, packed)
        audit.record(
            session,
            actor=actor,
            action="screening.wash_submitted",
            subject_type="enterprise",
            subject=uscc,
            at=now,
            after={"job": job_id, "lines": lines, "category": category.value, "channel": channel.value},
        )
    return job_id


@dataclass(frozen=True, slots=True)
class _Claim:
    id: str
    attempts: int
    owner: str
    enterprise: str
    category: str
    channel: str
    lines: int


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _owner_actor(owner: str) -> Actor:
    role, _, subject = owner.partition(":")
    return Actor(Role(role), subject)


def _claimable(now: datetime) -> Any:
    """Queued (and not waiting out a retry delay), or running past its lease: its worker is gone."""
    return and_(
        WashJobRow.state.in_((WashJobState.QUEUED.value, WashJobState.RUNNING.value)),
        or_(WashJobRow.lease_until.is_(None), WashJobRow.lease_until <= now),
    )


def _claim_wash_job(rt: Runtime, worker: str, lease: timedelta) -> _Claim | None:
    """Take the oldest claimable job for ``worker``, atomically: PostgreSQL locks the row and other
    workers skip it (``FOR UPDATE SKIP LOCKED``); SQLite holds its write lock from ``BEGIN IMMEDIATE``.
    A job out of attempts is failed on the way (and the next one tried)."""
    with rt.sessions() as session:  # a read first: an idle worker never takes the write lock
        if session.scalar(select(WashJobRow.id).where(_claimable(rt.clock.now())).limit(1)) is None:
            return None
    while True:
        with rt.sessions.begin() as session:
            now = rt.clock.now()
            query = (
                select(WashJobRow)
                .where(_claimable(now))
                .order_by(WashJobRow.submitted_at, WashJobRow.id)
                .limit(1)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = session.scalars(query).first()
            if row is None:
                return None
            if row.attempts >= MAX_WASH_ATTEMPTS:
                _fail(
                    session,
                    row,
                    now,
                    {
                        "error": "WashFailed",
                        "field": None,
                        "message": f"the wash could not be completed in {row.attempts} attempts",
                    },
                )
                continue
            row.state = WashJobState.RUNNING.value
            row.attempts += 1
            row.lease_until = now + lease
            row.started_at = now
            row.worker = worker[:120]
            return _Claim(
                row.id, row.attempts, row.owner, row.enterprise, row.category, row.channel, row.lines
            )


def _fail(session: Session, row: WashJobRow, now: datetime, error: dict[str, Any]) -> None:
    row.state = WashJobState.FAILED.value
    row.error = error
    row.finished_at = now
    row.lease_until = None
    _drop_blob(session, row.id, UPLOAD)
    audit.record(
        session,
        actor=_owner_actor(row.owner),
        action="screening.wash_failed",
        subject_type="enterprise",
        subject=row.enterprise,
        at=now,
        after={"job": row.id, "error": error},
    )


def _held(session: Session, claim: _Claim) -> WashJobRow | None:
    """The job row if ``claim`` still holds it (nobody re-claimed it after our lease ran out)."""
    query = select(WashJobRow).where(
        WashJobRow.id == claim.id,
        WashJobRow.state == WashJobState.RUNNING.value,
        WashJobRow.attempts == claim.attempts,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


def _process(rt: Runtime, claim: _Claim, snapshot: Callable[[], Snapshot], retention: timedelta) -> bool:
    """Wash a claimed job and record the outcome; False when the claim was lost meanwhile."""
    with rt.sessions() as session:
        packed = _read_blob(session, claim.id, UPLOAD)
    error: dict[str, Any] | None = None
    result: washing.WashResult | None = None
    if packed is None:
        error = {"error": "WashFailed", "field": "file", "message": "the uploaded list is missing"}
    else:
        try:
            result = washing.wash(
                snapshot(),
                zlib.decompress(packed),
                enterprise=claim.enterprise,
                category=Category(claim.category),
                channel=Channel(claim.channel),
            )
        except QuietlineError as exc:
            error = exc.as_dict()
    with rt.sessions.begin() as session:
        row = _held(session, claim)
        if row is None:
            return False
        now = rt.clock.now()
        if result is not None:
            try:  # the quota is checked before anything is written, so nothing needs undoing
                summary = _record_wash(
                    session,
                    rt,
                    _owner_actor(claim.owner),
                    uscc=claim.enterprise,
                    category=claim.category,
                    channel=claim.channel,
                    lines=claim.lines,
                    result=result,
                    now=now,
                )
            except QuietlineError as exc:
                error = exc.as_dict()
        if error is not None or result is None:
            _fail(session, row, now, error or {"error": "WashFailed", "field": None, "message": "no result"})
            return True
        _drop_blob(session, claim.id, UPLOAD)
        _write_blob(session, claim.id, RESULT, washing.encode_numbers(result.callable_numbers))
        row.state = WashJobState.DONE.value
        row.summary = {**summary, "job": claim.id}
        row.finished_at = now
        row.lease_until = None
        row.expires_at = now + retention
    return True


def _release(rt: Runtime, claim: _Claim) -> None:
    """Put a job back after an unexpected failure (it is retried after a delay, up to the limit)."""
    with rt.sessions.begin() as session:
        row = _held(session, claim)
        if row is not None:
            row.state = WashJobState.QUEUED.value
            row.lease_until = rt.clock.now() + WASH_RETRY_DELAY


def purge_expired_wash_jobs(rt: Runtime) -> int:
    """Delete the results of jobs past their retention (the job row and its counts stay, for audit)."""
    now = rt.clock.now()
    expired = (
        WashJobRow.state == WashJobState.DONE.value,
        WashJobRow.expires_at.is_not(None),
        WashJobRow.expires_at <= now,
    )
    with rt.sessions() as session:  # a read first: nothing to delete takes no write lock
        if session.scalar(select(WashJobRow.id).where(*expired).limit(1)) is None:
            return 0
    with rt.sessions.begin() as session:
        rows = session.scalars(select(WashJobRow).where(*expired)).all()
        for row in rows:
            _drop_blob(session, row.id, RESULT)
            row.expires_at = None
            row.summary = {**(row.summary or {}), "result_deleted_at": now.isoformat()}
            audit.record(
                session,
                actor=Actor.system("screening.wash_jobs"),
                action="screening.wash_result_deleted",
                subject_type="enterprise",
                subject=row.enterprise,
                at=now,
                after={"job": row.id},
            )
    return len(rows)


#: One engine per runtime for ``run_wash_jobs`` called without a snapshot (the scheduler): loaded on
#: the first job, then only caught up from the change feed.
_ENGINES: dict[int, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_snapshot(rt: Runtime) -> Callable[[], Snapshot]:
    def current() -> Snapshot:
        from quietline.screening.engine import ScreeningEngine  # the engine imports this module

        with _ENGINES_LOCK:
            engine = _ENGINES.get(id(rt))
            if engine is None or engine.rt is not rt:
                engine = ScreeningEngine.open(rt)
                _ENGINES[id(rt)] = engine
            else:
                engine.poll()
        snap: Snapshot = engine.snapshot
        return snap

    return current


def run_wash_jobs(
    rt: Runtime,
    *,
    limit: int = 1,
    snapshot: Callable[[], Snapshot] | None = None,
    worker: str | None = None,
    lease: timedelta = WASH_JOB_LEASE,
    retention: timedelta = WASH_RESULT_RETENTION,
) -> int:
    """Run up to ``limit`` queued wash jobs (and delete expired results); the number of jobs finished.

    Safe to call from any number of processes and threads at once: each job is claimed by exactly one
    of them, and a claim that outlived its lease (its worker crashed) is taken over by the next call.
    ``snapshot`` gives the screening snapshot to wash against (a running API passes its engine's);
    without it the first job loads one (``ScreeningEngine.open``) and later calls catch it up.
    """
    purge_expired_wash_jobs(rt)
    name = worker or default_worker_name()
    current = snapshot or _engine_snapshot(rt)
    finished = 0
    while finished < limit:
        claim = _claim_wash_job(rt, name, lease)
        if claim is None:
            break
        try:
            if _process(rt, claim, current, retention):
                finished += 1
        except Exception:  # a bug or a database hiccup: retried later, never lost, never silent
            log.exception("wash job %s failed unexpectedly; it will be retried", claim.id)
            _release(rt, claim)
            break
    return finished


#: Days a digest claim is kept (long enough for any retry of a day's digest).
DIGEST_CLAIM_DAYS = 7


def send_daily_digests(rt: Runtime, actor: Actor, day: date) -> int:
    """Send each subscriber with marketing blocks on ``day`` one SMS: "今日为您拦截 N 个营销来电".

    At most one digest per subscriber and day, however often this runs for the day: each SMS is
    claimed (``DigestSentRow``) in a committed transaction before it goes out, and a claim whose send
    fails is withdrawn so the next run retries it. Returns how many were sent by this run."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)
    end = datetime.fromordinal(day.toordinal() + 1).replace(tzinfo=CHINA_TZ)
    key = day.isoformat()
    with rt.sessions() as session:
        rows = session.execute(
            select(BlockRecordRow.callee, BlockRecordRow.channel, func.count())
            .where(
                BlockRecordRow.at >= start,
                BlockRecordRow.at < end,
                BlockRecordRow.reason.in_(MARKETING_REASONS),
            )
            .group_by(BlockRecordRow.callee, BlockRecordRow.channel)
        ).all()
        already = set(session.scalars(select(DigestSentRow.callee).where(DigestSentRow.day == key)))
    counts: dict[str, dict[str, int]] = {}
    for callee, channel, n in rows:
        if callee not in already:
            counts.setdefault(callee, {})[channel] = int(n)
    now = rt.clock.now()
    sent = 0
    for callee, by_channel in sorted(counts.items()):
        if not _claim_digest(rt, key, callee, now):
            continue  # another run claimed it meanwhile
        parts = []
        if by_channel.get("call"):
            parts.append(f"{by_channel['call']} 个营销来电")
        if by_channel.get("sms"):
            parts.append(f"{by_channel['sms']} 条营销短信")
        text = f"【quietline】{day.month}月{day.day}日为您拦截 {'、'.join(parts)}，详情可在拦截记录中查看。"
        try:
            rt.sms.send(SmsMessage(to=callee, text=text, at=now, purpose="screening.digest"))
        except Exception:
            with rt.sessions.begin() as session:  # withdrawn: the next run sends it
                session.execute(
                    delete(DigestSentRow).where(DigestSentRow.day == key, DigestSentRow.callee == callee)
                )
            raise
        sent += 1
    with rt.sessions.begin() as session:
        cutoff = (day - timedelta(days=DIGEST_CLAIM_DAYS)).isoformat()
        session.execute(delete(DigestSentRow).where(DigestSentRow.day < cutoff))
        audit.record(
            session,
            actor=actor,
            action="screening.daily_digest",
            subject_type="day",
            subject=key,
            at=now,
            after={"subscribers": sent, "already_sent": len(already)},
        )
    return sent


def _claim_digest(rt: Runtime, day: str, callee: str, at: datetime) -> bool:
    """Claim one subscriber's digest for ``day``; ``False`` when some run already claimed it."""
    try:
        with rt.sessions.begin() as session:
            session.add(DigestSentRow(day=day, callee=callee, sent_at=at))
    except IntegrityError:
        return False
    return True
