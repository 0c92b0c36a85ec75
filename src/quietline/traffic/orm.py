"""Tables of the traffic context: stored detection runs and their findings (migration branch ``traffic``).

A run is one batch detection over a carrier's call records (``kind = batch``) or one streaming
detector's alerts (``kind = stream``: a file tail's or NATS consumer's life, or a carrier's API
stream). Its ``summary`` keeps what the carrier's report page charts (call volume over time, top
callers, findings per pattern, per-pattern confusion when labels were present), so the page never
re-reads the call records. Findings are kept as found; an
analyst's decision on a number lives in the marks context's high-risk list, which the findings feed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class RunRow(Base):
    __tablename__ = "traffic_runs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: Public identifier (``tr-`` and 16 hex digits), named in every finding's change-feed row.
    run_id: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    #: The carrier whose call records these are: only that carrier's staff see the run.
    carrier: Mapped[str] = mapped_column(String(40), index=True)
    source: Mapped[str] = mapped_column(String(300))
    backend: Mapped[str] = mapped_column(String(12))
    rows: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[dict[str, int]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class FindingRow(Base):
    __tablename__ = "traffic_findings"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("traffic_runs.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(24), index=True)
    pattern: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    #: ``review`` or ``temporary_block`` (a bombing in progress, never for an allow-listed number).
    action: Mapped[str] = mapped_column(String(20))
    #: On the carrier's allow list or the system allow list: kept for the analyst, never a candidate.
    allow_listed: Mapped[bool] = mapped_column(Boolean)
    #: Announced as a high-risk candidate on the change feed (``traffic.finding``).
    candidate: Mapped[bool] = mapped_column(Boolean)
    in_progress: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    also_matched: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StreamCallRow(Base):
    """A call record posted to the API's streaming detector, kept only while it can still fall in a
    bombing window (``live.RETAIN_SECONDS`` of event time behind the carrier's newest record).

    The detector's state lives here rather than in one server process, so every API worker sees
    every record of a carrier, however its requests are spread (``quietline serve --workers N``).
    """

    __tablename__ = "traffic_stream_calls"
    # Two indexes that no query can mistake for each other: the detector's look-ups name a pair, the
    # clean-up names a minute. On a table this busy PostgreSQL's statistics are often stale, and
    # an index on (carrier, ts) looked as good as the pair index to the planner, which then read a
    # minute of the carrier's traffic for every pair (measured: 100 s instead of 2 s for 60 batches).
    __table_args__ = (
        Index("ix_traffic_stream_calls_pair", "carrier", "caller", "callee", "ts"),
        Index("ix_traffic_stream_calls_minute", "carrier", "minute"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(40))
    caller: Mapped[str] = mapped_column(String(24))
    callee: Mapped[str] = mapped_column(String(24))
    #: Event time (the call's start), epoch seconds: replays give the same alerts as live traffic.
    ts: Mapped[float] = mapped_column(Float)
    #: Whole minutes of ``ts`` since 1970: what the clean-up deletes by.
    minute: Mapped[int] = mapped_column(Integer)


class StreamEpisodeRow(Base):
    """A bombing episode the API's detector has alerted on, so it is alerted once: it lasts until
    the caller leaves the callee alone for ``StreamConfig.idle_seconds`` (as ``BombingDetector``).

    A row is also the lock that serialises two workers judging the same pair at the same time: one
    is kept for every pair that came near the threshold (``last_ts`` NULL until it is alerted), and
    deleted once its newest judged call is older than the records kept plus ``idle_seconds``."""

    __tablename__ = "traffic_stream_episodes"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    caller: Mapped[str] = mapped_column(String(24), primary_key=True)
    callee: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: The last call of the alerted episode (event time), NULL while none is going on.
    last_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The newest call of the pair judged so far (event time): when the row may go.
    judged_ts: Mapped[float] = mapped_column(Float)


class StreamStateRow(Base):
    """Per carrier: records posted to its API stream, and the stream run its alerts are stored in."""

    __tablename__ = "traffic_stream_state"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    records: Mapped[int] = mapped_column(BigInteger)
    #: Wall-clock time of the carrier's last batch: a stream silent for long is forgotten
    #: (``live.forget_idle_streams``), whatever its records' event times.
    last_post_at: Mapped[datetime] = mapped_column(UtcDateTime)
    run_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traffic_runs.id", ondelete="SET NULL"), nullable=True
    )
