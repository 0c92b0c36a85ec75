"""Reads of the screening context. A subscriber sees only its own block records (拦截记录); a wash job
is visible only to the party that submitted it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.platform.actor import Actor
from quietline.platform.errors import Conflict, NotFound
from quietline.screening.model import EXPLANATIONS, Reason, WashJobState, may_see_wash_job
from quietline.screening.orm import BlockRecordRow, WashJobBlobRow, WashJobRow, WashRunRow
from quietline.screening.wash import decode_numbers
from quietline.vocabulary import Category


@dataclass(frozen=True, slots=True)
class BlockRecord:
    at: datetime
    caller: str
    channel: str
    category: str | None
    reason: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        try:
            explanation = EXPLANATIONS[Reason(self.reason)][2]
        except ValueError:
            explanation = ""
        return {
            "at": self.at.isoformat(),
            "caller": self.caller,
            "channel": self.channel,
            "category": self.category,
            "category_label": Category.parse(self.category).label if self.category else None,
            "reason": self.reason,
            "rule": self.rule,
            "explanation": explanation,
        }


def block_records(session: Session, callee: str, limit: int = 100) -> list[BlockRecord]:
    """The subscriber's own 拦截记录, newest first."""
    rows = session.scalars(
        select(BlockRecordRow)
        .where(BlockRecordRow.callee == callee)
        .order_by(BlockRecordRow.at.desc(), BlockRecordRow.id.desc())
        .limit(limit)
    )
    return [BlockRecord(r.at, r.caller, r.channel, r.category, r.reason, r.rule) for r in rows]


def wash_runs(session: Session, enterprise: str, limit: int = 50) -> list[dict[str, Any]]:
    """An enterprise's own washes (counts only), newest first."""
    rows = session.scalars(
        select(WashRunRow)
        .where(WashRunRow.enterprise == enterprise)
        .order_by(WashRunRow.id.desc())
        .limit(limit)
    )
    return [
        {
            "at": r.at.isoformat(),
            "category": r.category,
            "channel": r.channel,
            "lines": r.lines,
            "callable": r.callable,
            "refused": r.refused,
            "no_consent": r.no_consent,
            "invalid": r.invalid,
            "duplicates": r.duplicates,
        }
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class WashJob:
    """What the submitter of a wash job may see: its state, and once done the summary (counts only)."""

    id: str
    state: str
    enterprise: str
    category: str
    channel: str
    submitted_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None
    error: dict[str, Any] | None
    result_available: bool

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "enterprise": self.enterprise,
            "category": self.category,
            "channel": self.channel,
            "submitted_at": self.submitted_at.isoformat(),
        }
        if self.finished_at is not None:
            data["finished_at"] = self.finished_at.isoformat()
        if self.state == WashJobState.DONE.value and self.summary is not None:
            data["summary"] = {k: v for k, v in self.summary.items() if k not in ("job", "result_deleted_at")}
            data["result_available"] = self.result_available
        if self.error:
            data["error"] = self.error
        return data


def wash_job(session: Session, actor: Actor, job_id: str) -> WashJob:
    """The job, if ``actor`` submitted it. Anyone else's job is reported missing, not forbidden: job
    ids are not to be probed."""
    row = session.get(WashJobRow, job_id) if len(job_id) <= 24 else None
    if row is None or not may_see_wash_job(row.owner, str(actor)):
        raise NotFound(f"no wash job {job_id!r}", field="job")
    return WashJob(
        id=row.id,
        state=row.state,
        enterprise=row.enterprise,
        category=row.category,
        channel=row.channel,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
        summary=row.summary,
        error=row.error,
        result_available=row.state == WashJobState.DONE.value and row.expires_at is not None,
    )


def wash_job_result(session: Session, actor: Actor, job_id: str) -> npt.NDArray[np.int64]:
    """The callable numbers (sorted E.164 integers) of a finished job the actor submitted."""
    job = wash_job(session, actor, job_id)
    if job.state != WashJobState.DONE.value:
        raise Conflict(f"wash job {job_id} is {job.state}, not done", field="job")
    chunks = session.scalars(
        select(WashJobBlobRow.data)
        .where(WashJobBlobRow.job_id == job.id, WashJobBlobRow.kind == "result")
        .order_by(WashJobBlobRow.seq)
    ).all()
    if not job.result_available or not chunks:
        raise NotFound(f"the result of wash job {job_id} was deleted after its retention period", field="job")
    return decode_numbers(b"".join(chunks))
