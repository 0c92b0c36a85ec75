"""Tables of the caller-number ledger: enterprise lines and the caller numbers each may present."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class LineRow(Base):
    """An enterprise line or trunk (95/96/400 number, voice private line, call-centre access)."""

    __tablename__ = "callerauth_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    enterprise: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(24))
    #: The carrier providing the line, who alone (with operators) may change its ledger.
    carrier: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallerNumberRow(Base):
    """A caller number a line may present, its purpose, and the outbound undertaking (承诺书) if any:
    without one the number is inbound-only."""

    __tablename__ = "callerauth_caller_numbers"
    __table_args__ = (UniqueConstraint("line_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("callerauth_lines.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(24), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    undertaking_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    undertaking_signed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    undertaking_signatory: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
