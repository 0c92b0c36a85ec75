"""HTTP routes of the oversight context: the quarterly complaint reviews (盘点).

Published reviews are public (they hold only aggregate counts: the 12321 centre publishes them for
everyone); the live draft and publishing are for the regulator and the 12321 centre.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from quietline.api.auth import require
from quietline.oversight import actions, queries
from quietline.oversight.model import Quarter
from quietline.platform.actor import Actor
from quietline.platform.errors import NotFound
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1/oversight", tags=["oversight"])
Centre = Annotated[Actor, Depends(require(Role.REGULATOR, Role.OPERATOR))]
QuarterPath = Annotated[str, Path(description="A quarter such as 2026Q3.")]


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


@router.get("/reviews", summary="Published quarterly complaint reviews, newest first (anyone)")
def list_reviews(request: Request) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return queries.published_quarters(session)


@router.get("/reviews/{quarter}", summary="One published quarterly review (anyone)")
def show_review(request: Request, quarter: QuarterPath) -> dict[str, Any]:
    q = Quarter.parse(quarter)
    with _rt(request).sessions() as session:
        body = queries.published(session, q)
    if body is None:
        raise NotFound(f"the review of {q.code} has not been published", field="quarter")
    return body


@router.get(
    "/reviews/{quarter}/draft", summary="A quarter's review computed now, unpublished (regulator, operator)"
)
def draft_review(request: Request, quarter: QuarterPath, actor: Centre) -> dict[str, Any]:
    rt = _rt(request)
    with rt.sessions() as session:
        return queries.draft_review(session, Quarter.parse(quarter), now=rt.clock.now()).as_dict()


@router.post(
    "/reviews/{quarter}/publish",
    summary="Freeze and publish a finished quarter's review (regulator, operator)",
)
def publish_review(request: Request, quarter: QuarterPath, actor: Centre) -> dict[str, Any]:
    return actions.publish_review(_rt(request), actor, Quarter.parse(quarter))
