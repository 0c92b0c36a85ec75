"""Tables of the marks context. Written only by ``quietline.marks.actions``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class MarkRow(Base):
    """A reporter's live mark on a number: one per (number, reporter); a new mark replaces it."""

    __tablename__ = "marks_marks"
    # The unique (number, reporter) index also serves look-ups by number (its leading column), so no
    # separate index on number is kept: one index fewer to maintain on every ingested mark.
    __table_args__ = (UniqueConstraint("number", "reporter"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    reporter: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ReporterRow(Base):
    """What weighs a reporter's marks, and its rate-limit window."""

    __tablename__ = "marks_reporters"

    reporter: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    agreed: Mapped[int] = mapped_column(Integer, default=0)
    disagreed: Mapped[int] = mapped_column(Integer, default=0)
    verified_complaints: Mapped[int] = mapped_column(Integer, default=0)
    vouched: Mapped[bool] = mapped_column(Boolean, default=False)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_count: Mapped[int] = mapped_column(Integer, default=0)


class JudgmentTimeRow(Base):
    """When bulk ingestion last re-judged a busy number, when it may be judged again (``due_at``), and
    whether marks arrived since (``pending``).

    Why: re-judging reads every live mark of the number, so a number that collects marks in every
    batch (a busy spam number: hundreds of marks) would be judged again and again on nearly the same
    evidence, and ingestion would slow down as its marks pile up. A busy number with ``k`` live marks
    waits ``rejudge_interval_seconds × k / rejudge_hot_marks`` (at most ``rejudge_max_wait_seconds``)
    between judgments: one more mark among ``k`` moves its evidence by about ``1/k``, and judging costs
    about ``k``, so the judging a busy number costs per second stays the same however many marks it
    collects. What arrives in between is judged at the next chance (the next batch once it is due, or
    the ``marks.judge_pending`` job)."""

    __tablename__ = "marks_judgment_times"
    __table_args__ = (Index("ix_marks_judgment_times_pending", "pending", "due_at"),)

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    judged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)


class CreditedComplaintRow(Base):
    """A substantiated complaint already credited to its reporter: the credit arrives from the change
    feed, which delivers at least once, and must count once (``record_verified_complaint``)."""

    __tablename__ = "marks_credited_complaints"

    complaint: Mapped[str] = mapped_column(String(40), primary_key=True)
    reporter: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class LabelStateRow(Base):
    """The displayed state of each label last announced on the change feed (so only changes go out)."""

    __tablename__ = "marks_label_states"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(40), primary_key=True)
    displayed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdentityRow(Base):
    """A verified enterprise identity on a number (its owner proved it)."""

    __tablename__ = "marks_identities"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(120))
    proof: Mapped[str] = mapped_column(String(40))
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RecycleRow(Base):
    """A carrier's report that a number was reassigned (二次放号); marks before ``at`` are void."""

    __tablename__ = "marks_recycles"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reported_by: Mapped[str] = mapped_column(String(120))
    marks_cleared: Mapped[int] = mapped_column(Integer)


class ReviewRow(Base):
    """A review opened because crowd marks would turn a verified enterprise number red."""

    __tablename__ = "marks_reviews"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    labels: Mapped[str] = mapped_column(String(400))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class HighRiskRow(Base):
    """A number on the high-risk list (高危号码) and where it stands."""

    __tablename__ = "marks_high_risk"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    source: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AppealRow(Base):
    """A correction request (号码标记纠错) by the number's owner, due within 3 working days."""

    __tablename__ = "marks_appeals"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    label: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(120))
    proof: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), index=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_late: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    marks_affected: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
