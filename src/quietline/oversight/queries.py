"""Reads of the oversight context: the live (draft) review of a quarter and the published ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.complaints import queries as complaints_queries
from quietline.oversight.model import Quarter, QuarterlyReview, Tally
from quietline.oversight.orm import PublishedReviewRow


def _tally(session: Session, quarter: Quarter) -> Tally:
    return Tally.of(complaints_queries.iter_reports(session, quarter.start, quarter.end))


def draft_review(session: Session, quarter: Quarter, *, now: datetime) -> QuarterlyReview:
    """The review computed from the cases as they are now (for the regulator, before publishing)."""
    return QuarterlyReview.build(
        quarter,
        _tally(session, quarter),
        _tally(session, quarter.previous()),
        _tally(session, quarter.year_before()),
        at=now,
    )


def published(session: Session, quarter: Quarter) -> dict[str, Any] | None:
    row = session.get(PublishedReviewRow, quarter.code)
    if row is None:
        return None
    return {**row.body, "published_at": row.published_at.isoformat()}


def published_quarters(session: Session) -> list[dict[str, Any]]:
    """Every published review, newest quarter first: quarter, its Chinese name, headline, date."""
    rows = session.scalars(select(PublishedReviewRow).order_by(PublishedReviewRow.quarter.desc()))
    return [
        {
            "quarter": r.quarter,
            "quarter_zh": r.body.get("quarter_zh"),
            "headline": r.body.get("headline"),
            "published_at": r.published_at.isoformat(),
        }
        for r in rows
    ]
