"""Reads of the screening context. A subscriber sees only its own block records (拦截记录)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.screening.model import EXPLANATIONS, Reason
from quietline.screening.orm import BlockRecordRow, WashRunRow
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
