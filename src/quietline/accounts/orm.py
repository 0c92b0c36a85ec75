"""Tables of accounts (migration branch ``accounts``). Secrets are stored only as keyed HMAC digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class EnterpriseRow(Base):
    """An enterprise or call centre, keyed by its unified social credit code (GB 32100-2015)."""

    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    """An API key: ``ql_<id>_<secret>``; only HMAC(secret) is kept, the plaintext is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(120), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class OtpChallengeRow(Base):
    """The one live code of a number; a new request replaces it."""

    __tablename__ = "otp_challenges"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)


class OtpSendRow(Base):
    """One code sent: the sliding-hour rate limits per number and per client count these rows, so the
    limits hold across processes that share the database."""

    __tablename__ = "otp_sends"
    __table_args__ = (
        Index("ix_otp_sends_number_at", "number", "at"),
        Index("ix_otp_sends_client_at", "client", "at"),
        Index("ix_otp_sends_at", "at"),  # pruning of records older than a day
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    number: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(120))


class SubscriberSessionRow(Base):
    """A subscriber's signed-in session after proving the number with a code; the cookie carries the
    token, the table only its HMAC."""

    __tablename__ = "subscriber_sessions"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class StaffSessionRow(Base):
    """A staff member's portal session, opened by presenting an API key. The cookie carries the token,
    the table only its HMAC; the key itself is never stored or put in a cookie. The session is bound to
    the key (``api_key_id``): revoking the key ends it."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    client: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class StaffLoginFailureRow(Base):
    """One failed staff sign-in: the sliding-hour limit per client counts these rows, so it holds
    across processes that share the database (and an attacker's guesses cannot fill the audit log)."""

    __tablename__ = "accounts_staff_login_failures"
    __table_args__ = (
        Index("ix_accounts_staff_login_failures_client_at", "client", "at"),
        Index("ix_accounts_staff_login_failures_at", "at"),  # pruning
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    client: Mapped[str] = mapped_column(String(120))
