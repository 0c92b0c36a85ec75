"""Tables of the screening context: block records (拦截记录) and wash runs (for audit and the daily quota).

The decision itself never touches these tables: block records are queued by the engine and written by a
background writer, off the decision path (DESIGN.md: nothing on the per-call path touches SQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class BlockRecordRow(Base):
    """One blocked call or SMS, shown to the subscriber as 拦截记录 and counted in the daily digest."""

    __tablename__ = "screening_block_records"
    __table_args__ = (Index("ix_screening_block_records_callee_at", "callee", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    callee: Mapped[str] = mapped_column(String(24))
    caller: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(48))


class WashRunRow(Base):
    """One bulk wash: who washed how many lines for which category, and what came out (counts only)."""

    __tablename__ = "screening_wash_runs"
    __table_args__ = (Index("ix_screening_wash_runs_enterprise_day", "enterprise", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: The China calendar day (YYYY-MM-DD) the quota is counted on.
    day: Mapped[str] = mapped_column(String(10))
    enterprise: Mapped[str] = mapped_column(String(18))
    actor: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    lines: Mapped[int] = mapped_column(Integer)
    callable: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    no_consent: Mapped[int] = mapped_column(Integer)
    invalid: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
