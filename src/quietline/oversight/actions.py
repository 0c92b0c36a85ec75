"""Writes of the oversight context: publishing a quarterly review (audited, announced)."""

from __future__ import annotations

from typing import Any

from quietline.oversight import queries
from quietline.oversight.model import Quarter
from quietline.oversight.orm import PublishedReviewRow
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

TOPIC_REVIEW_PUBLISHED = "oversight.review_published"


def publish_review(rt: Runtime, actor: Actor, quarter: Quarter) -> dict[str, Any]:
    """Freeze and publish the review of a finished quarter (the regulator or the 12321 centre).

    Publishing again replaces the public figures (a correction); the audit row keeps what was replaced.
    """
    if actor.role not in (Role.REGULATOR, Role.OPERATOR):
        raise PermissionDenied("only the regulator or the 12321 centre publishes reviews")
    now = rt.clock.now()
    if not quarter.is_over(now):
        raise InvalidInput(
            f"{quarter.code} has not ended yet; a review covers a whole quarter", field="quarter"
        )
    with rt.sessions.begin() as session:
        body = queries.draft_review(session, quarter, now=now).as_dict()
        row = session.get(PublishedReviewRow, quarter.code)
        before = None if row is None else {"published_at": row.published_at.isoformat(), "body": row.body}
        if row is None:
            row = PublishedReviewRow(quarter=quarter.code)
            session.add(row)
        row.published_at, row.published_by, row.body = now, str(actor), body
        audit.record(
            session,
            actor=actor,
            action="oversight.review.publish",
            subject_type="quarter",
            subject=quarter.code,
            at=now,
            before=before,
            after={
                "calls": body["calls"]["total"],
                "sms": body["sms"]["total"],
                "headline": body["headline"],
            },
        )
        changefeed.emit(
            session, topic=TOPIC_REVIEW_PUBLISHED, key=quarter.code, payload={"quarter": quarter.code}, at=now
        )
    return {**body, "published_at": now.isoformat()}
