"""Reads of the marks context: a number's reputation, the high-risk list, appeals and reviews.

Reporter identities never leave this module in anything a caller-ID client sees: ``Reputation`` holds
counts and confidences only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from quietline.marks.model import (
    HighRiskSource,
    HighRiskState,
    Label,
    Mark,
    ReporterProfile,
    Reputation,
    ReputationPolicy,
    VerifiedIdentity,
    label_of,
    reputation,
)
from quietline.marks.orm import (
    AppealRow,
    HighRiskRow,
    IdentityRow,
    LabelStateRow,
    MarkRow,
    RecycleRow,
    ReporterRow,
    ReviewRow,
)
from quietline.marks.settings import get_marks_settings
from quietline.numbers import parse
from quietline.platform.errors import NotFound

T = TypeVar("T")
#: Keep IN lists well below every backend's bound-parameter limit.
CHUNK = 5000


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def one_of(session: Session, column: Any, values: Sequence[str]) -> Any:
    """``column IN values``; on PostgreSQL as ``= ANY(array)`` with one array parameter, which binds
    thousands of values far faster than as many separate parameters. (Not for ``marks_marks``: on that
    large table the generic plan of a prepared ``ANY`` statement measured slower than a plain ``IN``.)"""
    if session.get_bind().dialect.name == "postgresql":
        return column == func.any(bindparam("one_of_values", list(values), type_=ARRAY(String)))
    return column.in_(values)


def mark_from_row(row: MarkRow) -> Mark:
    return Mark(row.number, row.reporter, label_of(row.label), row.at, row.device)


def profile_from_row(row: ReporterRow) -> ReporterProfile:
    return ReporterProfile(
        row.reporter,
        row.first_seen,
        agreed=row.agreed,
        disagreed=row.disagreed,
        verified_complaints=row.verified_complaints,
        vouched=row.vouched,
    )


def identity_from_row(row: IdentityRow) -> VerifiedIdentity:
    return VerifiedIdentity(row.number, row.name, row.purpose, row.owner, row.proof)


def load_marks(session: Session, numbers: Collection[str]) -> dict[str, list[Mark]]:
    """Live marks of each number (plain column rows: the hot path of bulk ingestion)."""
    found: dict[str, list[Mark]] = defaultdict(list)
    columns = (MarkRow.number, MarkRow.reporter, MarkRow.label, MarkRow.at, MarkRow.device)
    for part in chunks(sorted(numbers)):
        for number, reporter, label, at, device in session.execute(
            select(*columns).where(MarkRow.number.in_(part))
        ):
            found[number].append(Mark(number, reporter, label_of(label), at, device))
    return found


def load_profiles(session: Session, reporters: Collection[str]) -> dict[str, ReporterProfile]:
    profiles: dict[str, ReporterProfile] = {}
    columns = (
        ReporterRow.reporter,
        ReporterRow.first_seen,
        ReporterRow.agreed,
        ReporterRow.disagreed,
        ReporterRow.verified_complaints,
        ReporterRow.vouched,
    )
    for part in chunks(sorted(reporters)):
        for reporter, first_seen, agreed, disagreed, complaints, vouched in session.execute(
            select(*columns).where(one_of(session, ReporterRow.reporter, part))
        ):
            profiles[reporter] = ReporterProfile(reporter, first_seen, agreed, disagreed, complaints, vouched)
    return profiles


def load_identities(session: Session, numbers: Collection[str]) -> dict[str, VerifiedIdentity]:
    found: dict[str, VerifiedIdentity] = {}
    for part in chunks(sorted(numbers)):
        for row in session.scalars(select(IdentityRow).where(one_of(session, IdentityRow.number, part))):
            found[row.number] = identity_from_row(row)
    return found


def last_recycled(session: Session, numbers: Collection[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for part in chunks(sorted(numbers)):
        query = (
            select(RecycleRow.number, func.max(RecycleRow.at))
            .where(one_of(session, RecycleRow.number, part))
            .group_by(RecycleRow.number)
        )
        for number, at in session.execute(query):
            found[number] = at
    return found


def label_states(session: Session, numbers: Collection[str]) -> dict[str, dict[str, bool]]:
    """The last announced displayed state of each label of ``numbers`` (number → label → displayed).

    On PostgreSQL one probe of the primary key per number, fenced (``OFFSET 0``) so the plan cannot
    become a scan: as ``number = ANY($1)`` the statement, prepared by psycopg on its fifth run while the
    table was small, kept a sequential scan that compares every row with every wanted number (a bound
    array is not hashed) — measured on ``benchmarks/bench_marks_ingest.py``: 9 ms per batch at 240,000
    marks, 247 ms at 1 M, as the table grew to 13,000 rows. Prepared as a generic plan on a 6-row table
    and run for 1,000 numbers once it holds 20,000 rows: 477 ms as ``= ANY``, 3.3 ms in this form
    (it stays a primary-key probe)."""
    states: dict[str, dict[str, bool]] = defaultdict(dict)
    if not numbers:
        return states
    wanted = sorted(numbers)
    if session.get_bind().dialect.name == "postgresql":
        query = text(
            "SELECT l.number, l.label, l.displayed FROM unnest(:numbers) AS s(number) CROSS JOIN LATERAL"
            " (SELECT * FROM marks_label_states AS l WHERE l.number = s.number OFFSET 0) AS l"
        ).bindparams(bindparam("numbers", wanted, type_=ARRAY(String)))
        for number, code, displayed in session.connection().execute(query):
            states[number][code] = displayed
        return states
    columns = (LabelStateRow.number, LabelStateRow.label, LabelStateRow.displayed)
    for part in chunks(wanted):
        for number, code, displayed in session.connection().execute(
            select(*columns).where(LabelStateRow.number.in_(part))
        ):
            states[number][code] = displayed
    return states


def reputations(
    session: Session,
    numbers: Collection[str],
    now: datetime,
    policy: ReputationPolicy | None = None,
    *,
    marks: dict[str, list[Mark]] | None = None,
    recycled: dict[str, datetime] | None = None,
    profiles: dict[str, ReporterProfile] | None = None,
    displayable_only: bool = False,
) -> dict[str, Reputation]:
    """Reputation of several (already normalised) numbers in a few queries.

    ``displayable_only`` (bulk ingestion): a number with fewer distinct live reporters than the policy's
    ``min_reporters`` cannot display any label, so it is left out of the answer without any computation
    — the caller only needs the numbers whose displayed states may have changed. (A number with fewer
    live marks than the threshold cannot have that many distinct reporters: no set is built for it.)
    ``profiles``: reporters the caller already holds (ingestion has just locked and updated them).
    """
    policy = policy or get_marks_settings().policy()
    marks = load_marks(session, numbers) if marks is None else marks
    recycled = last_recycled(session, numbers) if recycled is None else recycled
    found: dict[str, Reputation] = {}
    if displayable_only:
        least = policy.min_reporters
        judged = []
        for number in numbers:
            live = marks.get(number, ())
            if len(live) >= least and len({m.reporter for m in live}) >= least:
                judged.append(number)
    else:
        judged = list(numbers)
        found = {number: Reputation(number, (), None, False, now) for number in numbers}
    known = profiles or {}
    reporters = {m.reporter for n in judged for m in marks.get(n, ())}
    profiles = {**known, **load_profiles(session, [r for r in reporters if r not in known])}
    identities = load_identities(session, judged)
    for number in judged:
        found[number] = reputation(
            number,
            marks.get(number, ()),
            profiles,
            now,
            policy,
            verified=identities.get(number),
            recycled_at=recycled.get(number),
        )
    return found


def reputation_of(
    session: Session, number: str, now: datetime, policy: ReputationPolicy | None = None
) -> Reputation:
    """Reputation of one number in any usual spelling (parsed, so "138 0013 8000" works)."""
    e164 = parse(number, field="number").e164
    return reputations(session, [e164], now, policy)[e164]


@dataclass(frozen=True, slots=True)
class HighRiskEntry:
    number: str
    state: HighRiskState
    source: HighRiskSource
    reason: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state.value,
            "state_zh": self.state.label,
            "screening": self.state.screening_effect,
            "source": self.source.value,
            "source_zh": self.source.label,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def high_risk_from_row(row: HighRiskRow) -> HighRiskEntry:
    return HighRiskEntry(
        row.number,
        HighRiskState.parse(row.state),
        HighRiskSource.parse(row.source),
        row.reason,
        row.created_at,
        row.updated_at,
    )


def high_risk(session: Session, number: str) -> HighRiskEntry | None:
    row = session.get(HighRiskRow, number)
    return None if row is None else high_risk_from_row(row)


def list_high_risk(
    session: Session, state: HighRiskState | None = None, limit: int = 1000
) -> list[HighRiskEntry]:
    query = select(HighRiskRow).order_by(HighRiskRow.updated_at.desc()).limit(limit)
    if state is not None:
        query = query.where(HighRiskRow.state == state.value)
    return [high_risk_from_row(r) for r in session.scalars(query)]


@dataclass(frozen=True, slots=True)
class Appeal:
    id: int
    number: str
    label: Label
    reason: str
    owner: str
    proof: str
    opened_at: datetime
    due: date
    state: str
    outcome: str | None
    decided_at: datetime | None
    decided_late: bool | None
    marks_affected: int | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "label": self.label.value,
            "label_zh": self.label.label,
            "reason": self.reason,
            "owner": self.owner,
            "proof": self.proof,
            "opened_at": self.opened_at.isoformat(),
            "due": self.due.isoformat(),
            "state": self.state,
            "outcome": self.outcome,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_late": self.decided_late,
            "marks_affected": self.marks_affected,
            "note": self.note,
        }


def appeal_from_row(row: AppealRow) -> Appeal:
    return Appeal(
        row.id,
        row.number,
        label_of(row.label),
        row.reason,
        row.owner,
        row.proof,
        row.opened_at,
        row.due,
        row.state,
        row.outcome,
        row.decided_at,
        row.decided_late,
        row.marks_affected,
        row.note,
    )


def get_appeal(session: Session, appeal_id: int) -> Appeal:
    row = session.get(AppealRow, appeal_id)
    if row is None:
        raise NotFound(f"no appeal {appeal_id}", field="appeal")
    return appeal_from_row(row)


def list_appeals(session: Session, state: str | None = None, limit: int = 1000) -> list[Appeal]:
    query = select(AppealRow).order_by(AppealRow.id).limit(limit)
    if state is not None:
        query = query.where(AppealRow.state == state)
    return [appeal_from_row(r) for r in session.scalars(query)]


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    number: str
    labels: tuple[Label, ...]
    opened_at: datetime
    state: str
    outcome: str | None
    closed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "labels": [label.value for label in self.labels],
            "opened_at": self.opened_at.isoformat(),
            "state": self.state,
            "outcome": self.outcome,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


def review_from_row(row: ReviewRow) -> Review:
    labels = tuple(label_of(code) for code in row.labels.split(",") if code)
    return Review(row.id, row.number, labels, row.opened_at, row.state, row.outcome, row.closed_at)


def list_reviews(session: Session, state: str | None = None, limit: int = 1000) -> list[Review]:
    query = select(ReviewRow).order_by(ReviewRow.id).limit(limit)
    if state is not None:
        query = query.where(ReviewRow.state == state)
    return [review_from_row(r) for r in session.scalars(query)]


def open_review(session: Session, number: str) -> Review | None:
    row = session.scalar(select(ReviewRow).where(ReviewRow.number == number, ReviewRow.state == "open"))
    return None if row is None else review_from_row(row)


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """What the screening snapshot takes from marks for one number (DESIGN.md decision order 5 and 7)."""

    number: str
    labels: tuple[Label, ...]  # displayed crowd labels (warnings at step 7)
    high_risk: HighRiskState | None  # verified/acted → system block (step 5); suspected → warning


def snapshot(session: Session) -> list[SnapshotEntry]:
    """Every number with a displayed label or a live high-risk state, for a cold screening start; the
    ``marks.label`` and ``marks.high_risk`` change-feed topics carry the changes after it."""
    labels: dict[str, list[Label]] = defaultdict(list)
    for number, label in session.execute(
        select(LabelStateRow.number, LabelStateRow.label).where(LabelStateRow.displayed.is_(True))
    ):
        labels[number].append(label_of(label))
    risk = {
        row.number: HighRiskState.parse(row.state)
        for row in session.scalars(
            select(HighRiskRow).where(HighRiskRow.state != HighRiskState.CLEARED.value)
        )
    }
    return [
        SnapshotEntry(number, tuple(sorted(labels.get(number, ()))), risk.get(number))
        for number in sorted(set(labels) | set(risk))
    ]


def refresh_candidates(
    session: Session, now: datetime, policy: ReputationPolicy, *, catch_up: timedelta = timedelta(0)
) -> list[str]:
    """The numbers whose judgment can move with time alone (``actions.refresh``): those with a displayed
    label (evidence decays) and those with at least ``min_reporters`` live marks, one of them from a
    reporter whose weight still grows with its account's age (not vouched, first seen less than
    ``established_age_days`` ago, or ``catch_up`` more: the last run may be that old)."""
    since = now - timedelta(days=policy.established_age_days) - catch_up
    ramping = (
        select(MarkRow.number)
        .join(ReporterRow, ReporterRow.reporter == MarkRow.reporter)
        .where(ReporterRow.vouched.is_(False), ReporterRow.first_seen > since)
    )
    growing = (
        select(MarkRow.number)
        .where(MarkRow.number.in_(ramping))
        .group_by(MarkRow.number)
        .having(func.count() >= policy.min_reporters)
    )
    return sorted(set(displayed_numbers(session)) | set(session.scalars(growing)))


def displayed_numbers(session: Session) -> list[str]:
    """Numbers with at least one label announced as displayed (the refresh job re-judges them)."""
    query = select(LabelStateRow.number).where(LabelStateRow.displayed.is_(True)).distinct()
    return list(session.scalars(query))


#: PhoneBlock flags a block of ten numbers once four of them are spam (REFERENCE.md "Marks and
#: reputation"): spammers rotate through consecutive numbers faster than lists catch each one.
BLOCK_RED_NUMBERS = 4


@dataclass(frozen=True, slots=True)
class BlockStanding:
    """How many numbers of a number's 10- and 100-number block currently show a warning label."""

    block10: str
    red_in_10: int
    block100: str
    red_in_100: int

    @property
    def suspected(self) -> bool:
        return self.red_in_10 >= BLOCK_RED_NUMBERS

    def as_dict(self) -> dict[str, Any]:
        return {
            "block10": self.block10 + "x",
            "red_in_block10": self.red_in_10,
            "block100": self.block100 + "xx",
            "red_in_block100": self.red_in_100,
            "block_suspected": self.suspected,
        }


def block_standing(session: Session, number: str) -> BlockStanding:
    """Evidence per 10- and 100-number block (the lesson "aggregate evidence per block"), from the
    displayed warning labels; informational — it never turns a number red by itself."""
    block10, block100 = number[:-1], number[:-2]
    warning = [label.value for label in Label if label.is_unwanted]
    # A range on the primary key's leading column (an index scan on both backends; ``LIKE`` is not one
    # on SQLite, where it is case-insensitive): the numbers of the same length in the 100-block.
    query = (
        select(LabelStateRow.number)
        .where(
            LabelStateRow.number >= block100 + "00",
            LabelStateRow.number <= block100 + "99",
            func.length(LabelStateRow.number) == len(number),
            LabelStateRow.displayed.is_(True),
            LabelStateRow.label.in_(warning),
        )
        .distinct()
    )
    red = list(session.scalars(query))
    return BlockStanding(block10, sum(1 for n in red if n.startswith(block10)), block100, len(red))
