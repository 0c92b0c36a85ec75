"""Tables of the complaint centre: cases, the reports merged into them, alerts, the calendar overrides
and the webhook endpoints and outbox."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from quietline.platform.db import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class CaseRow(Base):
    """One complaint case (the reports of one reporter about one number within a day merge into it)."""

    __tablename__ = "complaint_case"
    __table_args__ = (
        Index("ix_complaint_case_reporter_reported", "reporter", "reported", "received_at"),
        Index("ix_complaint_case_carrier_state", "responsible_carrier", "state"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[str] = mapped_column(String(20))
    reporter: Mapped[str] = mapped_column(String(32))
    reporter_carrier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reported: Mapped[str] = mapped_column(String(32), index=True)
    reported_type: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_report_at: Mapped[datetime] = mapped_column(UtcDateTime)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    form: Mapped[str | None] = mapped_column(String(20), nullable=True)
    category: Mapped[str | None] = mapped_column(String(30), nullable=True)
    nature: Mapped[str | None] = mapped_column(String(20), nullable=True)
    sms_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # routing
    responsible_carrier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    responsible_company: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    assisting_carrier: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    route_basis: Mapped[str] = mapped_column(String(30))
    route_explanation: Mapped[str] = mapped_column(Text)
    # the clock of the current cycle
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    clock_start: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    forwarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    forward_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    feedback_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    answer_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    # outcome
    result: Mapped[str | None] = mapped_column(String(20), nullable=True)
    measure: Mapped[str | None] = mapped_column(String(30), nullable=True)
    action_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    appeal_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    appealed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notify_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReportRow(Base):
    """Every report as received, including those merged into an existing case."""

    __tablename__ = "complaint_report"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("complaint_case.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(10))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)


class EvidenceRow(Base):
    """A screenshot, recording or document attached to a case by its reporter or its company."""

    __tablename__ = "complaint_evidence"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("complaint_case.id"), index=True)
    party: Mapped[str] = mapped_column(String(20))  # reporter, company or centre
    uploaded_by: Mapped[str] = mapped_column(String(120))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertRow(Base):
    """A breach, an early warning or a calendar gap, flagged once per case, cycle and stage."""

    __tablename__ = "complaint_alert"
    __table_args__ = (UniqueConstraint("case_id", "cycle", "stage", "kind"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("complaint_case.id"), index=True)
    cycle: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    due: Mapped[date | None] = mapped_column(Date, nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    flagged_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WorkdayOverrideRow(Base):
    """An operator's correction or addition to the statutory calendar (one day)."""

    __tablename__ = "workday_override"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WorkdayYearRow(Base):
    """A year whose holidays and make-up working days have all been entered as overrides."""

    __tablename__ = "workday_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookEndpointRow(Base):
    """Where a carrier or an enterprise receives its cases (signed with its own shared secret)."""

    __tablename__ = "complaint_webhook_endpoint"
    __table_args__ = (UniqueConstraint("party_kind", "party_id", "url"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    party_kind: Mapped[str] = mapped_column(String(20))
    party_id: Mapped[str] = mapped_column(String(60), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    #: During a rotation the old secret also signs (a second ``v1=`` value) until ``previous_until``.
    previous_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDeliveryRow(Base):
    """The webhook outbox: written in the transaction that creates the event, delivered afterwards."""

    __tablename__ = "complaint_webhook_delivery"
    __table_args__ = (Index("ix_complaint_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the delivery id header
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("complaint_webhook_endpoint.id"), index=True)
    event: Mapped[str] = mapped_column(String(60))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("complaint_case.id"), nullable=True, index=True)
    body: Mapped[str] = mapped_column(Text)  # exact bytes signed (UTF-8 JSON)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


def lock_key(session: Session, *parts: str) -> None:
    """Serialise transactions about one key (e.g. one reporter and one reported number) so the
    merge rule holds under concurrency: PostgreSQL transaction-scoped advisory lock on a 64-bit hash
    of the key; SQLite already serialises writers (``Sessions.begin`` takes its write lock at BEGIN)."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest[:8], "big", signed=True)}
        )
