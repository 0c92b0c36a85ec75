"""The only write path of the marks context: marks, recycling, verified identities, the high-risk list,
reviews and corrections (号码标记纠错).

Each action is one transaction with its audit row(s) in it. Changes the screening engine must see go
on the change feed in the same transaction: ``marks.label`` {"number", "label", "displayed"} whenever
a label's displayed state changes, and ``marks.high_risk`` {"number", "state"} on every high-risk move;
``marks.identity`` {"number", "verified"} whenever a verified identity is registered, changed or
removed (the reputation look-up's cache drops the number's answer on each of them, ``lookup``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quietline.marks import queries
from quietline.marks.lookup import TOPIC_HIGH_RISK, TOPIC_IDENTITY, TOPIC_LABEL
from quietline.marks.model import (
    UNWANTED_LABELS,
    AppealOutcome,
    HighRiskSource,
    HighRiskState,
    Label,
    Mark,
    RateLimit,
    ReporterProfile,
    Reputation,
    ReputationPolicy,
    Severity,
    can_move,
    label_of,
)
from quietline.marks.orm import (
    AppealRow,
    CreditedComplaintRow,
    HighRiskRow,
    IdentityRow,
    JudgmentTimeRow,
    LabelStateRow,
    MarkRow,
    RecycleRow,
    ReporterRow,
    ReviewRow,
)
from quietline.marks.pgbulk import REPORTER_COLUMNS, PgStage, ReporterState
from quietline.marks.settings import get_marks_settings
from quietline.numbers import PhoneNumber, parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import as_utc
from quietline.platform.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import SmsMessage
from quietline.platform.sqlbulk import upsert_insert
from quietline.platform.workdays import add_working_days, china_date, end_of_china_day
from quietline.vocabulary import NumberType, Role

#: A mark may be dated a little ahead of the server clock (phone clocks drift), not more.
FUTURE_TOLERANCE = timedelta(minutes=5)
#: 号码标记纠错: a correction is decided within 3 working days (REFERENCE.md "Marks and reputation":
#: vendors take 1–3 working days; issue 6 sets 3 as the deadline).
APPEAL_WORKING_DAYS = 3


def _now(rt: Runtime) -> datetime:
    return rt.clock.now()


def _policy(policy: ReputationPolicy | None) -> ReputationPolicy:
    return policy or get_marks_settings().policy()


def _require(actor: Actor, *roles: Role, what: str) -> None:
    if actor.role not in roles:
        names = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"{what} is for {names}, not {actor.role.value}", field="role")


def _markable(text: str, field: str) -> PhoneNumber:
    """Parse a number a mark may name. Emergency and public-service numbers are never marked (they are
    never blocked either, DESIGN.md decision order step 1); ``parse`` already refuses bare prefixes
    (the lesson "reject prefix-only reports")."""
    number = parse(text, field=field)
    if number.never_block:
        raise InvalidInput(
            f"{number.e164} is an emergency or public-service number and cannot be marked", field=field
        )
    return number


# --- marks -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkInput:
    """One mark as submitted: raw text, parsed and checked by ``ingest``."""

    number: str
    label: str
    reporter: str
    at: datetime | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    field: str
    message: str


@dataclass
class IngestResult:
    accepted: int = 0
    replaced: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    label_changes: int = 0
    reputations: dict[str, Reputation] = field(default_factory=dict)
    #: The live marks a ``strict`` call wrote (single marks; bulk calls report counts and rejections).
    written: list[Mark] = field(default_factory=list)
    replaced_labels: dict[tuple[str, str], Label] = field(default_factory=dict)
    #: Busy numbers left pending instead of judged now (``_defer_busy``; ``judge_pending`` judges them).
    deferred: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MarkAdded:
    number: str
    reporter: str
    label: Label
    at: datetime
    replaced: Label | None
    reputation: Reputation

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "reporter": self.reporter,
            "label": self.label.value,
            "label_zh": self.label.label,
            "at": self.at.isoformat(),
            "replaced": self.replaced.value if self.replaced else None,
            "labels": [lr.as_dict() for lr in self.reputation.labels],
        }


def add_mark(
    rt: Runtime,
    actor: Actor,
    *,
    number: str,
    label: str,
    reporter: str,
    at: datetime | None = None,
    device: str | None = None,
    policy: ReputationPolicy | None = None,
    rate_limit: RateLimit | None = None,
) -> MarkAdded:
    """A subscriber marks a number (or the operator records one on a reporter's behalf).

    One live mark per reporter per number: a new mark replaces the old one. Refused with a clear error
    when the reporter is over the per-reporter rate limit, marks its own number, or dates the mark in
    the future or before the number was recycled.
    """
    result = ingest(
        rt,
        actor,
        [MarkInput(number, label, reporter, at, device)],
        policy=policy,
        rate_limit=rate_limit,
        strict=True,
    )
    [mark] = result.written
    return MarkAdded(
        mark.number,
        mark.reporter,
        mark.label,
        mark.at,
        result.replaced_labels.get((mark.number, mark.reporter)),
        result.reputations[mark.number],
    )


@dataclass(slots=True)
class _Parsed:
    index: int
    number: str
    reporter: str
    label: Label
    at: datetime
    device: str | None


def _plain_mobile(text: str) -> str:
    """``+86`` and an 11-digit mobile number (``1…``) → the 11 digits, the spelling ``parse`` takes on its
    fast path; the same number, since mainland mobile numbers are dialled without a trunk prefix (a
    fixed line is not: ``+86 510…`` is ``0510…``, so only numbers starting with 1 are shortened).
    Anything else is returned unchanged."""
    if len(text) == 14 and text.startswith("+861") and text.isascii() and text[3:].isdigit():
        return text[3:]
    return text


def _checked_time(at: datetime, latest: datetime) -> datetime:
    if at.tzinfo is None:
        raise InvalidInput("give the time with a UTC offset (ISO 8601)", field="at")
    if at > latest:
        raise InvalidInput(f"{at.isoformat()} is in the future", field="at")
    return at


def _device(text: str) -> str | None:
    device = text.strip() or None
    if device is not None and len(device) > 64:
        raise InvalidInput("at most 64 characters", field="device")
    return device


def _parse_items(
    items: Sequence[MarkInput], now: datetime, strict: bool, result: IngestResult
) -> list[_Parsed]:
    """Check and normalise each mark; a rejected one is reported with its index (or raised, ``strict``).

    A batch repeats the same numbers, reporters and labels many times, so each distinct text is parsed
    once and its outcome (the canonical form, or the error) reused for every item that spells it so."""
    parsed: list[_Parsed] = []
    # Each distinct text → its canonical form, or the error to report for it.
    numbers: dict[str, str | InvalidInput] = {}
    reporters: dict[str, str | InvalidInput] = {}
    labels: dict[str, Label] = {}
    latest = now + FUTURE_TOLERANCE

    def number_of(text: str) -> str | InvalidInput:
        try:
            return _markable(_plain_mobile(text), "number").e164
        except InvalidInput as exc:
            return exc

    def reporter_of(text: str) -> str | InvalidInput:
        try:
            phone = parse(_plain_mobile(text), field="reporter")
        except InvalidInput as exc:
            return exc
        if phone.type is not NumberType.MOBILE and phone.type is not NumberType.RESALE:
            return InvalidInput("a reporter is a verified mobile subscriber number", field="reporter")
        return phone.e164

    for index, item in enumerate(items):
        try:
            number = numbers.get(item.number)
            if number is None:
                number = numbers[item.number] = number_of(item.number)
            if isinstance(number, InvalidInput):
                raise number
            reporter = reporters.get(item.reporter)
            if reporter is None:
                reporter = reporters[item.reporter] = reporter_of(item.reporter)
            if isinstance(reporter, InvalidInput):
                raise reporter
            if reporter == number:
                raise InvalidInput("a subscriber cannot mark its own number", field="number")
            label = labels.get(item.label) or labels.setdefault(item.label, Label.parse(item.label, "label"))
            at = now if item.at is None else _checked_time(item.at, latest)
            device = None if item.device is None else _device(item.device)
        except InvalidInput as exc:
            if strict:
                raise
            result.rejected.append(Rejected(index, exc.field or "", exc.message))
            continue
        except ValueError as exc:  # VocabularyError for the label
            if strict:
                raise
            result.rejected.append(Rejected(index, "label", str(exc)))
            continue
        parsed.append(_Parsed(index, number, reporter, label, at, device))
    return parsed


@dataclass(slots=True)
class _Window:
    """A reporter's row as the rate limit sees it (plain values; written back in bulk)."""

    first_seen: datetime
    vouched: bool
    window_start: datetime
    window_count: int
    agreed: int = 0
    disagreed: int = 0
    verified_complaints: int = 0
    changed: bool = False

    @classmethod
    def of(cls, state: ReporterState) -> tuple[str, _Window]:
        reporter, first_seen, vouched, start, count, agreed, disagreed, complaints = state
        return reporter, cls(first_seen, vouched, start, count, agreed, disagreed, complaints)

    def profile(self, reporter: str) -> ReporterProfile:
        """The reporter as the reputation model weighs it, with this batch's update applied."""
        return ReporterProfile(
            reporter, self.first_seen, self.agreed, self.disagreed, self.verified_complaints, self.vouched
        )


def _lock_reporters(session: Session, reporters: Sequence[str], now: datetime) -> dict[str, _Window]:
    """SQLite: the reporters' rows, new reporters created first (``ON CONFLICT DO NOTHING``).

    SQLite write transactions hold the database's write lock from ``BEGIN`` (``sessions.begin``), so
    no concurrent batch can count a window in between; the rows need no lock of their own. PostgreSQL
    locks each row instead (``pgbulk.PgStage.lock_reporters``)."""

    def load(names: Sequence[str]) -> dict[str, _Window]:
        found: dict[str, _Window] = {}
        for part in queries.chunks(sorted(names)):
            query = select(*REPORTER_COLUMNS).where(ReporterRow.reporter.in_(part)).with_for_update()
            for reporter, first, vouched, start, count, agreed, against, complaints in session.execute(query):
                found[reporter] = _Window(first, vouched, start, count, agreed, against, complaints)
        return found

    rows = load(reporters)
    missing = [r for r in reporters if r not in rows]
    if missing:
        fresh = [
            {
                "reporter": reporter,
                "first_seen": now,
                "agreed": 0,
                "disagreed": 0,
                "verified_complaints": 0,
                "vouched": False,
                "window_start": now,
                "window_count": 0,
            }
            for reporter in missing
        ]
        statement = sqlite_insert(ReporterRow).on_conflict_do_nothing(index_elements=["reporter"])
        inserted = session.connection().execute(statement.returning(ReporterRow.reporter), fresh)
        created = set(inserted.scalars())
        rows.update({r: _Window(now, False, now, 0) for r in created})
        raced = [r for r in missing if r not in created]
        if raced:
            rows.update(load(raced))
    return rows


def _write_reporters(session: Session, windows: dict[str, _Window], stage: PgStage | None) -> None:
    """Write back the changed rate-limit windows (all of the rows exist and are locked)."""
    changed = [(reporter, w) for reporter, w in windows.items() if w.changed]
    if not changed:
        return
    if stage is not None:
        stage.write_reporters(
            [(r, w.first_seen, w.vouched, w.window_start, w.window_count) for r, w in changed]
        )
        return
    session.connection().execute(
        update(ReporterRow)
        .where(ReporterRow.reporter == bindparam("b_reporter"))
        .values(
            first_seen=bindparam("first_seen"),
            vouched=bindparam("vouched"),
            window_start=bindparam("window_start"),
            window_count=bindparam("window_count"),
        ),
        [
            {
                "b_reporter": r,
                "first_seen": w.first_seen,
                "vouched": w.vouched,
                "window_start": w.window_start,
                "window_count": w.window_count,
            }
            for r, w in changed
        ],
    )


def _upsert_marks(session: Session, rows: list[dict[str, Any]]) -> None:
    """SQLite: insert or replace live marks (one per reporter per number) in one executemany upsert.
    PostgreSQL upserts from its staging table (``pgbulk.PgStage.upsert``)."""
    if not rows:
        return
    lite = sqlite_insert(MarkRow)
    statement = lite.on_conflict_do_update(
        index_elements=["number", "reporter"],
        set_={"label": lite.excluded.label, "at": lite.excluded.at, "device": lite.excluded.device},
    )
    session.connection().execute(statement, rows)


def _admit(
    session: Session,
    parsed: Sequence[_Parsed],
    *,
    now: datetime,
    limit: RateLimit,
    strict: bool,
    vouch: bool,
    recycled: dict[str, datetime],
    result: IngestResult,
    stage: PgStage | None,
) -> tuple[dict[tuple[str, str], _Parsed], dict[str, _Window]]:
    """Apply the rules that need the database: no mark from before a recycling (二次放号), and the
    per-reporter rate limit (a fixed window counted on the reporter's row, locked for the update).
    Returns the accepted marks (the last one of each reporter on each number) and the reporters' rows."""
    if stage is not None:
        reporter_rows = dict(_Window.of(state) for state in stage.lock_reporters(now))
    else:
        reporter_rows = _lock_reporters(session, sorted({p.reporter for p in parsed}), now)
    accepted: dict[tuple[str, str], _Parsed] = {}

    def reject(item: _Parsed, field_name: str, message: str, error: type[InvalidInput | RateLimited]) -> None:
        if strict:
            raise error(message, field=field_name)
        result.rejected.append(Rejected(item.index, field_name, message))

    window = limit.window
    for item in parsed:
        since = recycled.get(item.number)
        if since is not None and item.at < since:
            reject(
                item,
                "at",
                f"{item.number} was reassigned to a new owner on {since.isoformat()}; "
                "marks from before belong to the previous owner",
                InvalidInput,
            )
            continue
        row = reporter_rows[item.reporter]
        row.changed = True
        # A dated mark proves the reporter's account existed then (account age weighs credibility).
        row.first_seen = min(row.first_seen, item.at)
        row.vouched = row.vouched or vouch
        if now - row.window_start >= window:
            row.window_start = now
            row.window_count = 0
        if row.window_count >= limit.limit:
            hours = int(window.total_seconds() // 3600)
            reject(
                item,
                "reporter",
                f"reporter {item.reporter} reached {limit.limit} marks per {hours} h; "
                f"try again after {(row.window_start + window).isoformat()}",
                RateLimited,
            )
            continue
        row.window_count += 1
        accepted[(item.number, item.reporter)] = item
    _write_reporters(session, reporter_rows, stage)
    return accepted, reporter_rows


def _new_reporter(reporter: str, now: datetime) -> ReporterRow:
    """A reporter first seen now: its account age (for credibility) counts from here."""
    return ReporterRow(
        reporter=reporter,
        first_seen=now,
        agreed=0,
        disagreed=0,
        verified_complaints=0,
        vouched=False,
        window_start=now,
        window_count=0,
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one batch, then restore it as it was.

    Why (measured with ``gc.callbacks`` on ``benchmarks/bench_marks_ingest.py``, 20,000-mark batches):
    a batch allocates a dozen short-lived objects per mark (parsed marks, mark tuples, COPY lines,
    profiles), none of them in a reference cycle, and every 700 allocations start a collection that
    walks the young objects — and, ever more often, the whole heap: 10 % of a batch's wall time went to
    collections that freed nothing. Reference counting still frees everything at once; the paused
    collector runs as usual at its next threshold after the batch."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def ingest(
    rt: Runtime,
    actor: Actor,
    items: Sequence[MarkInput],
    *,
    policy: ReputationPolicy | None = None,
    rate_limit: RateLimit | None = None,
    strict: bool = False,
) -> IngestResult:
    """Add many marks in one transaction (imports, the app's upload queue, the benchmark).

    Marks the operator records come through a trusted channel (imports of a partner's verified
    reporters, the 12321 desk): their reporters count as established accounts. A subscriber's own
    marks are dated now and weighed by the age of its account here.

    Every mark gets an audit row; each rejected mark is reported with its index and reason (never
    dropped silently); ``strict`` raises on the first rejection instead (single marks).

    ``result.reputations`` holds the numbers whose labels were re-judged: every touched number under
    ``strict``; otherwise those with enough distinct reporters to display a label at all (the others
    cannot have changed a displayed state, see ``queries.reputations``).

    On PostgreSQL the batch goes through one staging table (``pgbulk``): a few set-based statements
    whatever the batch size. On SQLite, executemany statements inside the write lock.
    """
    _require(actor, Role.SUBSCRIBER, Role.OPERATOR, what="marking a number")
    with _collector_paused():
        return _ingest(rt, actor, items, policy=policy, rate_limit=rate_limit, strict=strict)


def _ingest(
    rt: Runtime,
    actor: Actor,
    items: Sequence[MarkInput],
    *,
    policy: ReputationPolicy | None,
    rate_limit: RateLimit | None,
    strict: bool,
) -> IngestResult:
    """``ingest``'s work, with the collector paused around it."""
    policy = _policy(policy)
    limit = rate_limit or get_marks_settings().rate_limit()
    now = _now(rt)
    result = IngestResult()
    parsed = _parse_items(items, now, strict, result)
    if actor.role is Role.SUBSCRIBER:
        for item in parsed:
            if item.reporter != actor.subject:
                raise PermissionDenied("a subscriber marks only as itself", field="reporter")
            item.at = now  # a subscriber's own mark is dated by the server, never backdated
    with rt.sessions.begin() as session:
        stage = PgStage(session, parsed) if session.get_bind().dialect.name == "postgresql" else None
        counts, before, recycled = _before_batch(session, stage, parsed, _count_cap(policy))
        accepted, windows = _admit(
            session,
            parsed,
            now=now,
            limit=limit,
            strict=strict,
            vouch=actor.role is Role.OPERATOR,
            recycled=recycled,
            result=result,
            stage=stage,
        )
        for key in accepted:
            old = before.get(key)
            if old is not None:
                result.replaced += 1
                result.replaced_labels[key] = old.label
        if stage is not None:
            stage.keep(p.index for p in accepted.values())
            stage.audit(actor, now, ((p, before.get(key)) for key, p in accepted.items()))
            stage.upsert()
        else:
            _upsert_marks(
                session,
                [
                    {
                        "number": p.number,
                        "reporter": p.reporter,
                        "label": p.label.value,
                        "at": p.at,
                        "device": p.device,
                    }
                    for p in accepted.values()
                ],
            )
            _append_audit(session, _audit_rows(actor, now, accepted, before))
        result.accepted = len(accepted)
        # Re-judge the touched numbers on the marks now live (the new ones replaced the reporters' old).
        judge, due = _to_judge(session, counts, before, accepted, now, policy, strict=strict, result=result)
        merged = stage.existing(judge) if stage is not None else queries.load_marks(session, judge)
        # The busy numbers judged now wait in proportion to all their live marks, read just above (the
        # counts of ``_before_batch`` stop at ``_count_cap``).
        _stamp_judged(session, {n: len(merged.get(n, ())) for n in due}, now)
        if strict:
            result.written = [m for ms in merged.values() for m in ms if (m.number, m.reporter) in accepted]
        needed = {m.reporter for ms in merged.values() for m in ms}
        profiles = {r: windows[r].profile(r) for r in needed if r in windows}
        result.reputations = queries.reputations(
            session,
            sorted(merged),
            now,
            policy,
            marks=merged,
            recycled=recycled,
            profiles=profiles,
            displayable_only=not strict,
        )
        # Ingestion only adds or replaces marks, so a number left below the reporter threshold had no
        # displayed label before either: only the numbers actually judged can change.
        judged = {n: rep for n, rep in result.reputations.items() if rep.labels}
        result.label_changes = _sync(session, actor, judged, now)
    return result


def _count_cap(policy: ReputationPolicy) -> int:
    """The live-mark count past which a batch's decisions no longer change: ``_to_judge`` compares a
    number's count only with ``min_reporters`` and ``rejudge_hot_marks``, so a count capped at the larger
    of the two decides the same (``min(c, cap) + new ≥ t`` exactly when ``c + new ≥ t``, for ``t ≤ cap``)."""
    return max(policy.min_reporters, get_marks_settings().rejudge_hot_marks)


def _before_batch(
    session: Session, stage: PgStage | None, parsed: Sequence[_Parsed], cap: int
) -> tuple[dict[str, int], dict[tuple[str, str], Mark], dict[str, datetime]]:
    """What a batch needs before it writes: how many live marks each touched number holds (on
    PostgreSQL counted up to ``cap`` only, ``PgStage.live_counts``), the marks the new ones replace,
    and the numbers' last recycling. The touched numbers' marks themselves are read after the write,
    and only for the numbers judged now (a busy number's hundreds of marks are not read while it waits,
    see ``_defer_busy``)."""
    if stage is not None:
        return stage.live_counts(cap), stage.prior(), stage.recycled()
    numbers = sorted({p.number for p in parsed})
    existing = queries.load_marks(session, numbers)
    counts = {number: len(marks) for number, marks in existing.items()}
    before = {(m.number, m.reporter): m for ms in existing.values() for m in ms}
    return counts, before, queries.last_recycled(session, numbers)


def _to_judge(
    session: Session,
    counts: dict[str, int],
    before: dict[tuple[str, str], Mark],
    accepted: dict[tuple[str, str], _Parsed],
    now: datetime,
    policy: ReputationPolicy,
    *,
    strict: bool,
    result: IngestResult,
) -> tuple[list[str], list[str]]:
    """The touched numbers to judge now, and the busy ones among them (to stamp once judged). Live marks
    are one per reporter, so in bulk a number with fewer than the policy's ``min_reporters`` cannot
    display a label and is not judged (``queries.reputations`` would skip it); busy numbers judged a
    moment ago wait for the next chance (``_defer_busy``, listed in ``result.deferred``). ``counts``
    may be capped (``_count_cap``): they are only compared with thresholds here."""
    live = dict(counts)
    for key in accepted:
        if key not in before:
            live[key[0]] = live.get(key[0], 0) + 1
    least = 0 if strict else policy.min_reporters
    judge = sorted({number for number, _ in accepted if live[number] >= least})
    if strict:
        return judge, []
    result.deferred, due = _defer_busy(session, {number: live[number] for number in judge}, now)
    waiting = set(result.deferred)
    return [number for number in judge if number not in waiting], due


def _defer_busy(session: Session, live: dict[str, int], now: datetime) -> tuple[list[str], list[str]]:
    """Of the touched numbers, the busy ones (``rejudge_hot_marks`` live marks or more): those not yet
    due for judging again (``JudgmentTimeRow``) are left pending, not judged now (the first list); the
    due ones are judged now (the second list; the caller stamps their next due time, ``_stamp_judged``,
    from their marks once read)."""
    settings = get_marks_settings()
    busy = sorted(n for n, count in live.items() if count >= settings.rejudge_hot_marks)
    if not busy:
        return [], []
    due_at: dict[str, datetime] = {}
    for part in queries.chunks(busy):
        rows = session.execute(
            select(JudgmentTimeRow.number, JudgmentTimeRow.due_at).where(JudgmentTimeRow.number.in_(part))
        )
        due_at.update((number, as_utc(at)) for number, at in rows)
    deferred = [n for n in busy if n in due_at and due_at[n] > now]
    for part in queries.chunks(deferred):
        session.execute(update(JudgmentTimeRow).where(JudgmentTimeRow.number.in_(part)).values(pending=True))
    return deferred, [n for n in busy if n not in due_at or due_at[n] <= now]


def _stamp_judged(session: Session, live: dict[str, int], now: datetime) -> None:
    """Record that the busy numbers ``live`` (number → live marks) were judged at ``now``, nothing
    pending, and when each may be judged again (insert or update)."""
    if not live:
        return
    settings = get_marks_settings()
    statement = upsert_insert(session.get_bind().dialect.name, JudgmentTimeRow)
    statement = statement.on_conflict_do_update(
        index_elements=["number"],
        set_={
            "judged_at": statement.excluded.judged_at,
            "due_at": statement.excluded.due_at,
            "pending": False,
        },
    )
    rows = []
    for number, count in live.items():
        wait = settings.rejudge_interval_seconds * count / settings.rejudge_hot_marks
        due = now + timedelta(seconds=min(wait, settings.rejudge_max_wait_seconds))
        rows.append({"number": number, "judged_at": now, "due_at": due, "pending": False})
    session.connection().execute(statement, rows)


def judge_pending(rt: Runtime, actor: Actor, *, everything: bool = False) -> int:
    """Judge the busy numbers whose marks arrived while they waited (``JudgmentTimeRow.pending``) once
    they are due (``everything``: at once, e.g. before a report); a scheduled job runs this every
    second. Returns the number of label changes announced."""
    policy = _policy(None)
    now = _now(rt)
    with rt.sessions.begin() as session:
        query = select(JudgmentTimeRow.number).where(JudgmentTimeRow.pending.is_(True))
        if not everything:
            query = query.where(JudgmentTimeRow.due_at <= now)
        numbers = list(
            session.scalars(query.order_by(JudgmentTimeRow.number).with_for_update(skip_locked=True))
        )
        if not numbers:
            return 0
        marks = queries.load_marks(session, numbers)
        reps = queries.reputations(session, numbers, now, policy, marks=marks, displayable_only=True)
        _stamp_judged(session, {n: len(marks.get(n, ())) for n in numbers}, now)
        return _sync(session, actor, {n: rep for n, rep in reps.items() if rep.labels}, now)


def _audit_rows(
    actor: Actor, now: datetime, accepted: dict[tuple[str, str], _Parsed], before: dict[tuple[str, str], Mark]
) -> list[dict[str, Any]]:
    """SQLite: the ``marks.add`` audit row of each accepted mark, with the mark it replaces."""
    rows = []
    role, name = actor.role.value, str(actor)
    for key, p in accepted.items():
        old = before.get(key)
        rows.append(
            {
                "at": now,
                "actor_role": role,
                "actor": name,
                "action": "marks.add",
                "subject_type": "number",
                "subject": p.number,
                "before": None if old is None else {"label": old.label.value, "at": old.at.isoformat()},
                "after": {
                    "label": p.label.value,
                    "reporter": p.reporter,
                    "at": p.at.isoformat(),
                    "device": p.device,
                },
            }
        )
    return rows


def _append_audit(session: Session, rows: list[dict[str, Any]]) -> None:
    """SQLite: one audit row per mark into the platform's append-only audit table, in this transaction,
    by a Core executemany (the rows ``audit.record`` would add, without its ORM bulk path, which costs
    several times more per row)."""
    if rows:
        session.connection().execute(insert(audit.AuditEntry), rows)


def _sync(session: Session, actor: Actor, reps: dict[str, Reputation], now: datetime) -> int:
    """Store and announce every change of a label's displayed state; open reviews for verified numbers
    the crowd would turn red; put numbers the crowd shows as 疑似诈骗 on the high-risk list."""
    if not reps:
        return 0
    # Core statements, not ORM objects: a bulk batch re-judges thousands of numbers.
    states = queries.label_states(session, reps)
    fresh: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for number, rep in reps.items():
        shown = {lr.label.value: lr.displayed for lr in rep.labels}
        known = states.get(number, {})
        for code in sorted(set(shown) | set(known)):
            displayed = shown.get(code, False)
            was = known.get(code)
            if was is None:
                if not displayed:
                    continue
                fresh.append({"number": number, "label": code, "displayed": True, "updated_at": now})
            elif was == displayed:
                continue
            else:
                moved.append({"b_number": number, "b_label": code, "displayed": displayed, "updated_at": now})
            changes.append(
                {
                    "topic": TOPIC_LABEL,
                    "key": number,
                    "payload": {"number": number, "label": code, "displayed": displayed},
                    "at": now,
                }
            )
        if rep.review_needed:
            _open_review(session, actor, rep, now)
        fraud = rep.label(Label.FRAUD_SUSPECTED)
        if fraud is not None and fraud.displayed and session.get(HighRiskRow, number) is None:
            _enter_high_risk(
                session,
                actor,
                number,
                source=HighRiskSource.CROWD_FRAUD,
                reason=f"{fraud.count} 位用户标记为疑似诈骗，置信度 {fraud.confidence:.0%}",
                now=now,
            )
    _store_states(session, fresh, moved)
    changefeed.emit_many(session, changes)
    return len(changes)


def _store_states(session: Session, fresh: list[dict[str, Any]], moved: list[dict[str, Any]]) -> None:
    """Insert the first displayed states and update the ones that moved (executemany each)."""
    connection = session.connection()
    if fresh:
        connection.execute(insert(LabelStateRow), fresh)
    if moved:
        connection.execute(
            update(LabelStateRow)
            .where(LabelStateRow.number == bindparam("b_number"), LabelStateRow.label == bindparam("b_label"))
            .values(displayed=bindparam("displayed"), updated_at=bindparam("updated_at")),
            moved,
        )


def _open_review(session: Session, actor: Actor, rep: Reputation, now: datetime) -> None:
    if queries.open_review(session, rep.number) is not None:
        return
    labels = ",".join(
        lr.label.value for lr in rep.labels if lr.qualifies and lr.label.severity is Severity.WARNING
    )
    row = ReviewRow(number=rep.number, labels=labels, opened_at=now, state="open")
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="marks.review.open",
        subject_type="number",
        subject=rep.number,
        at=now,
        after={"review": row.id, "labels": labels},
    )


#: How far behind ``refresh`` may run: reporters that became established up to this long before a run
#: are still looked at, so a schedule at least this frequent never misses one.
REFRESH_CATCH_UP = timedelta(days=7)


def refresh(rt: Runtime, actor: Actor, *, policy: ReputationPolicy | None = None) -> int:
    """Re-judge the numbers whose displayed labels can change with time alone; a scheduled job runs it
    (``quietline worker``). Returns the number of label changes announced.

    Needed for correctness: without a new write, time moves a judgment two ways — evidence decays (a
    displayed label fades) and a reporter's account ages towards ``established_age_days`` (its marks
    weigh more and it becomes established, so a label can appear). Everything else that moves a
    judgment is a write, and the write re-judges what it affects in its own transaction: a mark its
    number, a recycling, identity or appeal its number, an outcome (appeal, review, high-risk move,
    verified complaint) every number its reporters marked (``_rejudge_marked_by``).

    Incremental: it judges only the numbers with a displayed label and the numbers with at least
    ``min_reporters`` live marks of which one comes from a reporter still ramping up (not vouched,
    first seen less than ``established_age_days`` + ``REFRESH_CATCH_UP`` ago) — not every marked
    number. Left out: a label
    held back only by older 'legitimate' marks that decay faster than it; the next mark on the number
    re-judges it. Idempotent: a second run at the same time announces nothing; an audit row records
    each run that changed something.
    """
    policy = _policy(policy)
    now = _now(rt)
    with rt.sessions.begin() as session:
        numbers = queries.refresh_candidates(session, now, policy, catch_up=REFRESH_CATCH_UP)
        reps = queries.reputations(session, numbers, now, policy)
        changes = _sync(session, actor, reps, now)
        if changes:
            audit.record(
                session,
                actor=actor,
                action="marks.refresh",
                subject_type="marks",
                subject="all",
                at=now,
                after={"numbers": len(numbers), "changes": changes},
            )
    return changes


def _rejudge_marked_by(
    session: Session,
    actor: Actor,
    reporters: Iterable[str],
    now: datetime,
    policy: ReputationPolicy,
    *,
    also: Sequence[str] = (),
) -> int:
    """An outcome changed these reporters' credibility, which weighs their marks on every number they
    marked: re-judge those numbers now (and ``also``, whose marks the outcome itself changed)."""
    session.flush()  # the updated reporter rows are what the re-judging reads
    marked: set[str] = set()
    for part in queries.chunks(sorted(set(reporters))):
        marked.update(session.scalars(select(MarkRow.number).where(MarkRow.reporter.in_(part)).distinct()))
    marked.difference_update(also)
    reps = queries.reputations(session, sorted(also), now, policy) if also else {}
    # Their marks did not change: a number with too few of them to display anything still cannot.
    reps.update(queries.reputations(session, sorted(marked), now, policy, displayable_only=True))
    return _sync(session, actor, reps, now)


# --- recycling (二次放号) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recycled:
    number: str
    at: datetime
    marks_cleared: int
    labels_cleared: tuple[str, ...]
    identity_removed: bool
    high_risk_cleared: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "recycled_at": self.at.isoformat(),
            "marks_cleared": self.marks_cleared,
            "labels_cleared": list(self.labels_cleared),
            "identity_removed": self.identity_removed,
            "high_risk_cleared": self.high_risk_cleared,
        }


def recycle(rt: Runtime, actor: Actor, number: str) -> Recycled:
    """A carrier reports that ``number`` was reassigned (二次放号): every mark, label, verified identity
    and high-risk state of the previous owner is cleared, so the new owner starts clean."""
    _require(actor, Role.CARRIER, Role.OPERATOR, what="reporting a recycled number")
    e164 = parse(number, field="number").e164
    now = _now(rt)
    with rt.sessions.begin() as session:
        cleared = len(list(session.scalars(select(MarkRow.id).where(MarkRow.number == e164))))
        session.execute(delete(MarkRow).where(MarkRow.number == e164))
        states = list(session.scalars(select(LabelStateRow).where(LabelStateRow.number == e164)))
        labels = tuple(sorted(s.label for s in states if s.displayed))
        for code in labels:
            changefeed.emit(
                session,
                topic=TOPIC_LABEL,
                key=e164,
                payload={"number": e164, "label": code, "displayed": False},
                at=now,
            )
        session.execute(delete(LabelStateRow).where(LabelStateRow.number == e164))
        # The new owner starts clean here too: no judgment pacing inherited from the old owner's marks.
        session.execute(delete(JudgmentTimeRow).where(JudgmentTimeRow.number == e164))
        identity = session.get(IdentityRow, e164)
        if identity is not None:
            session.delete(identity)
            _identity_changed(session, e164, verified=False, now=now)
        risk = session.get(HighRiskRow, e164)
        risk_cleared = risk is not None and risk.state != HighRiskState.CLEARED.value
        if risk is not None and risk_cleared:
            risk.state = HighRiskState.CLEARED.value
            risk.reason = f"{risk.reason}；号码已二次放号"
            risk.updated_at = now
            changefeed.emit(
                session,
                topic=TOPIC_HIGH_RISK,
                key=e164,
                payload={"number": e164, "state": HighRiskState.CLEARED.value},
                at=now,
            )
        for review in session.scalars(
            select(ReviewRow).where(ReviewRow.number == e164, ReviewRow.state == "open")
        ):
            review.state, review.outcome, review.closed_at = "closed", "recycled", now
        session.add(RecycleRow(number=e164, at=now, reported_by=str(actor), marks_cleared=cleared))
        result = Recycled(e164, now, cleared, labels, identity is not None, risk_cleared)
        audit.record(
            session,
            actor=actor,
            action="marks.recycle",
            subject_type="number",
            subject=e164,
            at=now,
            before={"marks": cleared, "labels": list(labels), "verified": identity is not None},
            after=result.as_dict(),
        )
    return result


# --- verified identities ---------------------------------------------------------------------------


def _identity_changed(session: Session, number: str, *, verified: bool, now: datetime) -> None:
    """Announce that ``number``'s verified name changed (the look-up cache shows it)."""
    changefeed.emit(
        session, topic=TOPIC_IDENTITY, key=number, payload={"number": number, "verified": verified}, at=now
    )


IDENTITY_PROOFS = ("ledger", "otp")


def register_identity(
    rt: Runtime,
    actor: Actor,
    *,
    number: str,
    name: str,
    purpose: str,
    proof: str,
    owner: str | None = None,
    policy: ReputationPolicy | None = None,
) -> Reputation:
    """An enterprise that proved it owns ``number`` (``ledger``: the caller-number ledger lists it;
    ``otp``: it read back a code sent to the number) registers its display name and purpose.

    From then on crowd marks alone never turn the number red: a review is opened instead. An enterprise
    registers for itself; the operator or a carrier registers on an enterprise's behalf (``owner``).
    """
    _require(actor, Role.ENTERPRISE, Role.OPERATOR, Role.CARRIER, what="registering a verified identity")
    e164 = parse(number, field="number").e164
    clean_name = " ".join(name.split())
    clean_purpose = " ".join(purpose.split())
    if not clean_name or len(clean_name) > 200:
        raise InvalidInput("give the display name, at most 200 characters", field="name")
    if len(clean_purpose) > 100:
        raise InvalidInput("at most 100 characters", field="purpose")
    if proof not in IDENTITY_PROOFS:
        raise InvalidInput(f"proof must be one of {', '.join(IDENTITY_PROOFS)}", field="proof")
    holder = actor.subject if actor.role is Role.ENTERPRISE else (owner or "").strip()
    if not holder:
        raise InvalidInput("name the enterprise that owns the number", field="owner")
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(IdentityRow, e164)
        before = None
        if row is not None:
            if actor.role is Role.ENTERPRISE and row.owner != holder:
                raise Conflict(f"{e164} is registered to another enterprise", field="number")
            before = {"name": row.name, "purpose": row.purpose, "owner": row.owner}
            row.name, row.purpose, row.owner, row.proof, row.verified_at = (
                clean_name,
                clean_purpose,
                holder,
                proof,
                now,
            )
        else:
            session.add(
                IdentityRow(
                    number=e164,
                    name=clean_name,
                    purpose=clean_purpose,
                    owner=holder,
                    proof=proof,
                    verified_at=now,
                )
            )
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.identity.register",
            subject_type="number",
            subject=e164,
            at=now,
            before=before,
            after={"name": clean_name, "purpose": clean_purpose, "owner": holder, "proof": proof},
        )
        _identity_changed(session, e164, verified=True, now=now)
        reps = queries.reputations(session, [e164], now, _policy(policy))
        _sync(session, actor, reps, now)
    return reps[e164]


@dataclass(frozen=True, slots=True)
class OwnershipClaim:
    """A number an enterprise owns according to an authoritative source (the caller-number ledger)."""

    number: str
    owner: str  # the enterprise (USCC)
    name: str  # display name
    purpose: str


@dataclass
class IdentitySync:
    registered: int = 0
    updated: int = 0
    removed: int = 0
    conflicts: list[str] = field(default_factory=list)  # numbers another owner registered by hand

    def as_dict(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "updated": self.updated,
            "removed": self.removed,
            "conflicts": self.conflicts,
        }


def sync_identities(
    rt: Runtime,
    actor: Actor,
    claims: Sequence[OwnershipClaim],
    *,
    proof: str = "ledger",
    policy: ReputationPolicy | None = None,
) -> IdentitySync:
    """Make the identities proved by ``proof`` match an authoritative list: the caller-number ledger
    proves ownership (issue 6, "Verified identities"), so every ledger number gets its enterprise's
    verified identity, and identities proved by the ledger whose number left it are withdrawn. A number
    registered by hand to a different enterprise is not overwritten: it is reported as a conflict."""
    _require(actor, Role.OPERATOR, Role.CARRIER, what="synchronising verified identities")
    if proof not in IDENTITY_PROOFS:
        raise InvalidInput(f"proof must be one of {', '.join(IDENTITY_PROOFS)}", field="proof")
    now = _now(rt)
    wanted: dict[str, OwnershipClaim] = {}
    for claim in claims:
        wanted[parse(claim.number, field="number").e164] = claim
    result = IdentitySync()
    touched: list[str] = []
    with rt.sessions.begin() as session:
        rows = {row.number: row for row in session.scalars(select(IdentityRow))}
        for number, claim in sorted(wanted.items()):
            name = " ".join(claim.name.split())[:200] or claim.owner
            purpose = " ".join(claim.purpose.split())[:100]
            row = rows.get(number)
            if row is None:
                session.add(
                    IdentityRow(
                        number=number,
                        name=name,
                        purpose=purpose,
                        owner=claim.owner,
                        proof=proof,
                        verified_at=now,
                    )
                )
                result.registered += 1
            elif row.owner != claim.owner and row.proof != proof:
                result.conflicts.append(number)
                continue
            elif (row.name, row.purpose, row.owner, row.proof) != (name, purpose, claim.owner, proof):
                row.name, row.purpose, row.owner, row.proof, row.verified_at = (
                    name,
                    purpose,
                    claim.owner,
                    proof,
                    now,
                )
                result.updated += 1
            else:
                continue
            touched.append(number)
        for number, row in rows.items():
            if row.proof == proof and number not in wanted:
                session.delete(row)
                result.removed += 1
                touched.append(number)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.identity.sync",
            subject_type="marks",
            subject=proof,
            at=now,
            after={**result.as_dict(), "numbers": touched[:1000]},
        )
        if touched:
            for number in touched:
                _identity_changed(session, number, verified=number in wanted, now=now)
            _sync(session, actor, queries.reputations(session, touched, now, _policy(policy)), now)
    return result


def remove_identity(
    rt: Runtime, actor: Actor, number: str, *, policy: ReputationPolicy | None = None
) -> None:
    _require(actor, Role.ENTERPRISE, Role.OPERATOR, Role.CARRIER, what="removing a verified identity")
    e164 = parse(number, field="number").e164
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(IdentityRow, e164)
        if row is None:
            raise NotFound(f"{e164} has no verified identity", field="number")
        if actor.role is Role.ENTERPRISE and row.owner != actor.subject:
            raise PermissionDenied("only the enterprise that registered it may remove it", field="number")
        before = {"name": row.name, "purpose": row.purpose, "owner": row.owner}
        session.delete(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.identity.remove",
            subject_type="number",
            subject=e164,
            at=now,
            before=before,
        )
        _identity_changed(session, e164, verified=False, now=now)
        _sync(session, actor, queries.reputations(session, [e164], now, _policy(policy)), now)


# --- high-risk numbers (高危号码) --------------------------------------------------------------------


def _enter_high_risk(
    session: Session, actor: Actor, number: str, *, source: HighRiskSource, reason: str, now: datetime
) -> HighRiskRow:
    row = HighRiskRow(
        number=number,
        state=HighRiskState.SUSPECTED.value,
        source=source.value,
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="marks.high_risk.suspected",
        subject_type="number",
        subject=number,
        at=now,
        after={"state": row.state, "source": source.value, "reason": reason},
    )
    changefeed.emit(
        session,
        topic=TOPIC_HIGH_RISK,
        key=number,
        payload={"number": number, "state": row.state},
        at=now,
    )
    return row


def flag_high_risk(
    rt: Runtime, actor: Actor, *, number: str, source: str, reason: str
) -> queries.HighRiskEntry:
    """Put a number on the high-risk list as suspected, on strong evidence (substantiated complaints,
    the traffic detectors, a police notice, crowd fraud marks). A cleared number may be flagged again."""
    _require(actor, Role.CARRIER, Role.REGULATOR, Role.OPERATOR, what="flagging a high-risk number")
    e164 = _markable(number, "number").e164
    kind = HighRiskSource.parse(source, "source")
    text = reason.strip()
    if not text:
        raise InvalidInput("say what the evidence is", field="reason")
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(HighRiskRow, e164)
        if row is None:
            row = _enter_high_risk(session, actor, e164, source=kind, reason=text, now=now)
        else:
            current = HighRiskState.parse(row.state)
            if not can_move(current, HighRiskState.SUSPECTED):
                raise Conflict(f"{e164} is already on the high-risk list ({current.value})", field="number")
            row.state, row.source, row.reason, row.updated_at = (
                HighRiskState.SUSPECTED.value,
                kind.value,
                text,
                now,
            )
            audit.record(
                session,
                actor=actor,
                action="marks.high_risk.suspected",
                subject_type="number",
                subject=e164,
                at=now,
                before={"state": current.value},
                after={"state": row.state, "source": kind.value, "reason": text},
            )
            changefeed.emit(
                session, topic=TOPIC_HIGH_RISK, key=e164, payload={"number": e164, "state": row.state}, at=now
            )
        session.flush()
        return queries.high_risk_from_row(row)


#: Who may move a high-risk number into each state: the responsible carrier verifies and acts.
_MOVERS: dict[HighRiskState, tuple[Role, ...]] = {
    HighRiskState.VERIFIED: (Role.CARRIER, Role.OPERATOR),
    HighRiskState.ACTED: (Role.CARRIER, Role.OPERATOR),
    HighRiskState.CLEARED: (Role.CARRIER, Role.REGULATOR, Role.OPERATOR),
    HighRiskState.SUSPECTED: (Role.CARRIER, Role.REGULATOR, Role.OPERATOR),
}


def move_high_risk(
    rt: Runtime, actor: Actor, *, number: str, state: str, reason: str = ""
) -> queries.HighRiskEntry:
    """Move a high-risk number along suspected → verified → acted → cleared.

    Outcomes feed reporter credibility: a carrier's verification confirms the reporters who marked the
    number 疑似诈骗 (agreed + 1); clearing a suspected number overturns them (disagreed + 1).
    """
    target = HighRiskState.parse(state, "state")
    _require(actor, *_MOVERS[target], what=f"moving a high-risk number to {target.value}")
    e164 = parse(number, field="number").e164
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(HighRiskRow, e164, with_for_update=True)
        if row is None:
            raise NotFound(f"{e164} is not on the high-risk list", field="number")
        current = HighRiskState.parse(row.state)
        if not can_move(current, target):
            raise Conflict(f"a {current.value} number cannot become {target.value}", field="state")
        row.state = target.value
        row.updated_at = now
        if reason.strip():
            row.reason = f"{row.reason}；{reason.strip()}"
        credited: list[str] = []
        if target is HighRiskState.VERIFIED:
            credited = _credit(session, e164, {Label.FRAUD_SUSPECTED}, agreed=True)
        elif current is HighRiskState.SUSPECTED and target is HighRiskState.CLEARED:
            credited = _credit(session, e164, {Label.FRAUD_SUSPECTED}, agreed=False)
        audit.record(
            session,
            actor=actor,
            action=f"marks.high_risk.{target.value}",
            subject_type="number",
            subject=e164,
            at=now,
            before={"state": current.value},
            after={"state": target.value, "reason": reason.strip()},
        )
        changefeed.emit(
            session, topic=TOPIC_HIGH_RISK, key=e164, payload={"number": e164, "state": target.value}, at=now
        )
        if credited:
            _rejudge_marked_by(session, actor, credited, now, _policy(None), also=[e164])
        session.flush()
        return queries.high_risk_from_row(row)


def _credit(session: Session, number: str, labels: Iterable[Label], *, agreed: bool) -> list[str]:
    """Record an outcome against the reporters whose live marks on ``number`` carry one of ``labels``."""
    wanted = [label.value for label in labels]
    reporters = list(
        session.scalars(select(MarkRow.reporter).where(MarkRow.number == number, MarkRow.label.in_(wanted)))
    )
    for row in _reporter_rows_for_update(session, reporters):
        if agreed:
            row.agreed += 1
        else:
            row.disagreed += 1
    return reporters


def _reporter_rows_for_update(session: Session, reporters: Sequence[str]) -> list[ReporterRow]:
    rows: list[ReporterRow] = []
    for part in queries.chunks(sorted(reporters)):
        rows.extend(
            session.scalars(select(ReporterRow).where(ReporterRow.reporter.in_(part)).with_for_update())
        )
    return rows


def record_verified_complaint(
    rt: Runtime, actor: Actor, reporter: str, *, complaint: str | None = None
) -> bool:
    """A 12321 complaint by ``reporter`` was substantiated: its marks weigh a little more.

    With ``complaint`` (its id), a complaint is credited once however often this is called for it (the
    reactions relay delivers at least once, and an appeal can substantiate the same complaint again).
    Returns whether this call credited it."""
    _require(actor, Role.OPERATOR, Role.REGULATOR, Role.CARRIER, what="crediting a verified complaint")
    e164 = parse(reporter, field="reporter").e164
    now = _now(rt)
    with rt.sessions.begin() as session:
        if complaint is not None:
            if session.get(CreditedComplaintRow, complaint) is not None:
                return False
            session.add(CreditedComplaintRow(complaint=complaint, reporter=e164, at=now))
        row = session.get(ReporterRow, e164, with_for_update=True)
        if row is None:
            row = _new_reporter(e164, now)
            session.add(row)
        row.verified_complaints += 1
        audit.record(
            session,
            actor=actor,
            action="marks.reporter.verified_complaint",
            subject_type="reporter",
            subject=e164,
            at=now,
            after={"verified_complaints": row.verified_complaints, "complaint": complaint},
        )
        _rejudge_marked_by(session, actor, [e164], now, _policy(None))
    return True


# --- reviews of verified numbers -------------------------------------------------------------------

REVIEW_OUTCOMES = ("dismissed", "confirmed")


def close_review(
    rt: Runtime, actor: Actor, review_id: int, outcome: str, *, policy: ReputationPolicy | None = None
) -> queries.Review:
    """Decide a review of a verified number the crowd marked.

    ``dismissed``: the marks were wrong — the warning marks are withdrawn and their reporters lose
    credibility. ``confirmed``: the crowd was right — the verified identity is withdrawn (so the labels
    show) and the reporters gain credibility.
    """
    _require(actor, Role.OPERATOR, Role.CARRIER, Role.REGULATOR, what="deciding a review")
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(REVIEW_OUTCOMES)}", field="outcome")
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(ReviewRow, review_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no review {review_id}", field="review")
        if row.state != "open":
            raise Conflict(f"review {review_id} is already closed ({row.outcome})", field="review")
        if outcome == "dismissed":
            credited = _credit(session, row.number, UNWANTED_LABELS, agreed=False)
            session.execute(
                delete(MarkRow).where(
                    MarkRow.number == row.number, MarkRow.label.in_([lb.value for lb in UNWANTED_LABELS])
                )
            )
        else:
            credited = _credit(session, row.number, UNWANTED_LABELS, agreed=True)
            identity = session.get(IdentityRow, row.number)
            if identity is not None:
                session.delete(identity)
                _identity_changed(session, row.number, verified=False, now=now)
        row.state, row.outcome, row.closed_at = "closed", outcome, now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.review.close",
            subject_type="number",
            subject=row.number,
            at=now,
            before={"state": "open"},
            after={"review": row.id, "outcome": outcome},
        )
        _rejudge_marked_by(session, actor, credited, now, _policy(policy), also=[row.number])
        return queries.review_from_row(row)


# --- corrections and appeals (号码标记纠错) ----------------------------------------------------------


def _appeal_labels(label: Label) -> set[Label]:
    """Disputing 骚扰电话 disputes the whole unwanted family it stands for."""
    return set(UNWANTED_LABELS) if label is Label.HARASSMENT else {label}


def open_appeal(
    rt: Runtime,
    actor: Actor,
    *,
    number: str,
    label: str,
    reason: str,
    proof: str | None = None,
) -> queries.Appeal:
    """The number's owner disputes a label. Ownership is proved by a subscriber session on that very
    number (a one-time code sent to it), by the verified identity of the enterprise, or — when the
    operator files on the owner's behalf — by the proof the operator names (e.g. a carrier statement).
    The case is due within 3 working days of the statutory calendar (调休 included)."""
    e164 = parse(number, field="number").e164
    item_label = Label.parse(label, "label")
    if item_label is Label.LEGITIMATE:
        raise InvalidInput("'legitimate' is not a label anyone needs corrected", field="label")
    text = reason.strip()
    if not text or len(text) > 2000:
        raise InvalidInput("give the reason, at most 2000 characters", field="reason")
    now = _now(rt)
    with rt.sessions.begin() as session:
        if actor.role is Role.SUBSCRIBER:
            if actor.subject != e164:
                raise PermissionDenied(
                    "prove ownership: sign in with a code sent to this number", field="number"
                )
            how = "otp_session"
        elif actor.role is Role.ENTERPRISE:
            identity = session.get(IdentityRow, e164)
            if identity is None or identity.owner != actor.subject:
                raise PermissionDenied(
                    "only the enterprise holding the verified identity of the number may appeal",
                    field="number",
                )
            how = "verified_identity"
        elif actor.role is Role.OPERATOR:
            how = (proof or "").strip()
            if not how or len(how) > 40:
                raise InvalidInput(
                    "name the proof of ownership you checked (at most 40 characters)", field="proof"
                )
        else:
            raise PermissionDenied("appeals are filed by the number's owner or the operator", field="role")
        labels = [lb.value for lb in _appeal_labels(item_label)]
        marked = session.scalars(
            select(MarkRow.id).where(MarkRow.number == e164, MarkRow.label.in_(labels)).limit(1)
        ).first()
        if marked is None:
            raise InvalidInput(f"{e164} carries no mark '{item_label.value}'", field="label")
        pending = session.scalars(
            select(AppealRow.id).where(
                AppealRow.number == e164, AppealRow.label == item_label.value, AppealRow.state == "open"
            )
        ).first()
        if pending is not None:
            raise Conflict(f"appeal {pending} on this label is still open", field="label")
        due = add_working_days(china_date(now), APPEAL_WORKING_DAYS)
        row = AppealRow(
            number=e164,
            label=item_label.value,
            reason=text,
            owner=str(actor),
            proof=how,
            opened_at=now,
            due=due,
            state="open",
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.appeal.open",
            subject_type="number",
            subject=e164,
            at=now,
            after={"appeal": row.id, "label": item_label.value, "due": due.isoformat(), "proof": how},
        )
        return queries.appeal_from_row(row)


@dataclass(frozen=True, slots=True)
class AppealDecision:
    appeal: queries.Appeal
    notified: bool
    notice: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.appeal.as_dict(), "owner_notified": self.notified, "notice": self.notice}


def decide_appeal(
    rt: Runtime,
    actor: Actor,
    appeal_id: int,
    *,
    outcome: str,
    note: str = "",
    policy: ReputationPolicy | None = None,
) -> AppealDecision:
    """Record the outcome. Upheld: the disputed marks are withdrawn and every reporter who made one
    loses credibility (disagreed + 1). Rejected: the marks stay and their reporters gain (agreed + 1).
    A decision after the due day is recorded as late. The owner is told by SMS when the number is a
    mobile number; the outcome is in the appeal record either way."""
    _require(actor, Role.OPERATOR, Role.CARRIER, Role.REGULATOR, what="deciding an appeal")
    result = AppealOutcome.parse(outcome, "outcome")
    now = _now(rt)
    with rt.sessions.begin() as session:
        row = session.get(AppealRow, appeal_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no appeal {appeal_id}", field="appeal")
        if row.state != "open":
            raise Conflict(f"appeal {appeal_id} was already decided ({row.outcome})", field="appeal")
        labels = _appeal_labels(label_of(row.label))
        reporters = _credit(session, row.number, labels, agreed=result is AppealOutcome.REJECTED)
        if result is AppealOutcome.UPHELD:
            session.execute(
                delete(MarkRow).where(
                    MarkRow.number == row.number, MarkRow.label.in_([lb.value for lb in labels])
                )
            )
        row.state = "decided"
        row.outcome = result.value
        row.decided_at = now
        row.decided_late = now > end_of_china_day(row.due)
        row.marks_affected = len(reporters)
        row.note = note.strip() or None
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="marks.appeal.decide",
            subject_type="number",
            subject=row.number,
            at=now,
            before={"state": "open"},
            after={
                "appeal": row.id,
                "outcome": result.value,
                "late": row.decided_late,
                "marks_affected": len(reporters),
            },
        )
        _rejudge_marked_by(session, actor, reporters, now, _policy(policy), also=[row.number])
        appeal = queries.appeal_from_row(row)
    notice = (
        f"【quietline】您对号码 {appeal.number} 标记“{appeal.label.label}”的纠错申请已处理：{result.label}。"
    )
    notified = False
    if parse(appeal.number).type in (NumberType.MOBILE, NumberType.RESALE):
        try:
            rt.sms.send(SmsMessage(to=appeal.number, text=notice, at=now, purpose="marks_appeal"))
            notified = True
        except RuntimeError:
            notified = False  # no SMS gateway configured; the decision stands and is in the record
    return AppealDecision(appeal, notified, notice)
