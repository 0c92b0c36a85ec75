"""Tables of the screening context: block records (拦截记录), wash runs (for audit and the daily quota)
and wash jobs (API washes, durable: any server process can run, report and serve them).

The decision itself never touches these tables: block records are queued by the engine and written by a
background writer, off the decision path (DESIGN.md: nothing on the per-call path touches SQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String
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


class WashJobRow(Base):
    """One wash submitted through the API: queued → running → done | failed (``model.WashJobState``).

    The row is the job's whole state, so any server process can claim it, report it and serve its
    result: a worker claims a queued job (or a running one whose lease ran out: its worker died) by
    setting ``state``, ``lease_until`` and ``attempts`` in one locked transaction; ``attempts`` is the
    fencing token a worker must still hold when it records the outcome.
    """

    __tablename__ = "screening_wash_jobs"
    __table_args__ = (Index("ix_screening_wash_jobs_state_lease", "state", "lease_until"),)

    #: Unguessable (``secrets.token_urlsafe``): it names the job in URLs.
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: The submitting actor (``role:subject``): the only one who may read the status and the result.
    owner: Mapped[str] = mapped_column(String(120))
    enterprise: Mapped[str] = mapped_column(String(18))
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: After this the result is deleted (the counts stay).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(120), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Non-blank lines of the upload (what the quota counts).
    lines: Mapped[int] = mapped_column(Integer)
    upload_bytes: Mapped[int] = mapped_column(BigInteger)
    #: The summary counts (callable, refused, no_consent, invalid, duplicates, quota …) once done.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class WashJobBlobRow(Base):
    """The upload (until the job ends) and the result (until it expires) of a wash job, in chunks.

    Kept in the database, not on a local disk, so every server process (on any host) reads the same
    bytes; zlib-compressed, and the result as delta-encoded sorted integers (10 million callable
    numbers take about 20 MB). Chunks keep each value far below the backends' limits.
    """

    __tablename__ = "screening_wash_job_blobs"

    job_id: Mapped[str] = mapped_column(ForeignKey("screening_wash_jobs.id"), primary_key=True)
    #: ``upload`` or ``result``.
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DigestSentRow(Base):
    """A daily digest SMS claimed for one subscriber and one day, written before the SMS goes out.

    Why: the digest job may run again for the same day (a retry after a crash, a second worker, an
    operator's ``quietline screening digest``); a subscriber must get at most one digest a day. The
    claim commits before the send, so a crash between the two loses that one SMS rather than repeating
    it (an unwanted repeated SMS is the very thing this system exists to stop). Rows are kept for
    ``DIGEST_CLAIM_DAYS`` days.
    """

    __tablename__ = "screening_digests_sent"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    callee: Mapped[str] = mapped_column(String(24), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
