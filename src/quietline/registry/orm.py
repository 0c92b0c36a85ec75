"""Tables of the registry context: refusals, personal lists, system lists and the consent ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class RefusalRow(Base):
    """The current refusal state per (number, category, channel); history lives in the audit log.

    The unique constraint's index (number first) serves lookups by number; no second index is kept.
    """

    __tablename__ = "registry_refusals"
    __table_args__ = (UniqueConstraint("number", "category", "channel"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(16))


class PersonalListRow(Base):
    """A subscriber's own block or allow list entry (number, prefix, or "all international")."""

    __tablename__ = "registry_personal_lists"
    __table_args__ = (UniqueConstraint("owner", "list_name", "kind", "value"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(24), index=True)
    list_name: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SystemListRow(Base):
    """System allow list (verified enterprise numbers) and block list (confirmed high-risk numbers …)."""

    __tablename__ = "registry_system_lists"
    __table_args__ = (UniqueConstraint("list_name", "number"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    list_name: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsentRow(Base):
    """One expression of consent; a withdrawal closes the row, a new grant opens a new one."""

    __tablename__ = "registry_consents"
    __table_args__ = (
        Index("ix_registry_consents_lookup", "enterprise", "number", "category", "channel"),
        Index("ix_registry_consents_number", "number"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enterprise: Mapped[str] = mapped_column(String(18))
    number: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    evidence_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    evidence_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent_text_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    retain_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(120))
