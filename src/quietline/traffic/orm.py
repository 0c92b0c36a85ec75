"""Tables of the traffic context: stored detection runs and their findings (migration branch ``traffic``).

A run is one batch detection over a carrier's call records (``kind = batch``) or one streaming
detector's life in a process (``kind = stream``). Its ``summary`` keeps what the carrier's report
page charts (call volume over time, top callers, findings per pattern, per-pattern confusion when
labels were present), so the page never re-reads the call records. Findings are kept as found; an
analyst's decision on a number lives in the marks context's high-risk list, which the findings feed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String
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
