"""The regulator's and 12321 centre's overview page (监管总览) in the staff portal.

Issue 5 ("Oversee"): open cases by company and state, breaches, median and 90th-percentile time per
stage, repeat offenders, and CSV/XLSX export of each list (the export links are the API's, which accept
the staff cookie). It also shows the high-risk list by state (issue 6) and the health of the periodic
jobs, because a stalled deadline scan or webhook job is exactly what the centre must notice. Everything
here is read through the contexts' queries; the page holds no rules.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from contextlib import suppress
from datetime import timedelta, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quietline.complaints import queries as complaints_queries
from quietline.complaints.model import STAGE_LABELS, CaseState, Stage
from quietline.jobs import schedule
from quietline.marks import queries as marks_queries
from quietline.marks.model import HighRiskState
from quietline.oversight import actions as oversight_actions
from quietline.oversight import queries as oversight_queries
from quietline.oversight.model import Quarter
from quietline.platform.errors import QuietlineError
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Carrier, Role, VocabularyError
from quietline.web import staff
from quietline.web.portal import templates
from quietline.web.requests import runtime_of

CHINA_TIME = timezone(timedelta(hours=8), "CST")
PATH = "/staff/oversight"
router = APIRouter(include_in_schema=False)
staff.add_nav(PATH, "监管总览", Role.REGULATOR, Role.OPERATOR)
staff.add_nav("/staff/reviews", "季度盘点", Role.REGULATOR, Role.OPERATOR)

#: The lists the API exports (complaints.export), with their Chinese names.
EXPORTS = (
    ("open", "待办投诉"),
    ("breaches", "超时与预警"),
    ("offenders", "屡被投诉号码"),
    ("stats", "按企业与状态统计"),
    ("stage_times", "各环节用时"),
)


def _carrier(code: str | None) -> str:
    if not code:
        return "未确定"
    with suppress(VocabularyError):
        return Carrier.parse(code).label
    return code


def _state(code: str) -> str:
    with suppress(ValueError, VocabularyError):
        return CaseState.parse(code).label
    return code


def _by_company(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """A company × state matrix for the table (states in their life-cycle order)."""
    present = {r["state"] for r in rows}
    states = [s.value for s in CaseState if s.value in present]
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        matrix[r["carrier"] or ""][r["state"]] += r["count"]
    table = [
        {
            "company": _carrier(company),
            "counts": [counts.get(s, 0) for s in states],
            "total": sum(counts.values()),
        }
        for company, counts in sorted(matrix.items(), key=lambda item: -sum(item[1].values()))
    ]
    return [_state(s) for s in states], table


@router.get(PATH, response_class=HTMLResponse)
def overview(request: Request) -> Response:
    actor = staff.staff_actor(request, Role.REGULATOR, Role.OPERATOR)
    if isinstance(actor, Response):
        return actor
    rt = runtime_of(request)
    now = rt.clock.now()
    with rt.sessions() as session:
        counts = complaints_queries.counts_by_company_and_state(session)
        breaches = complaints_queries.breaches(session, now, include_warnings=True)
        stage_times = complaints_queries.stage_times(session)
        offenders = complaints_queries.repeat_offenders(session, min_cases=3, limit=20)
        high_risk = marks_queries.list_high_risk(session, limit=10_000)
    states, companies = _by_company(counts)
    by_state = Counter(entry.state for entry in high_risk)
    jobs = schedule.scheduler(rt, owner="portal").status()
    return staff.render(
        request,
        "staff_oversight.html",
        actor,
        states=states,
        companies=companies,
        breaches=[
            {
                "id": b.case_id,
                "stage": STAGE_LABELS.get(b.stage, b.stage.value),
                "due": b.due,
                "kind": b.alert.value,
                "carrier": _carrier(b.responsible_carrier),
                "reported": b.reported,
            }
            for b in breaches[:50]
        ],
        breach_total=len(breaches),
        stage_times=[
            {**s, "label": STAGE_LABELS.get(Stage(s["stage"]), s["stage"])}
            for s in stage_times
            if s["stage"] != "calendar_gap"
        ],
        calendar_gaps=next((s["finished"] for s in stage_times if s["stage"] == "calendar_gap"), 0),
        offenders=[{**o, "carrier": _carrier(o["responsible_carrier"])} for o in offenders],
        high_risk=[(state.label, by_state.get(state, 0)) for state in HighRiskState],
        recent_high_risk=[e for e in high_risk if e.state is not HighRiskState.CLEARED][:10],
        jobs=jobs,
        exports=EXPORTS,
        as_of=now.astimezone(CHINA_TIME),
        china=CHINA_TIME,
    )


# --- quarterly reviews (盘点): public pages, and the centre's draft and publish -----------------------


@router.get("/reviews", response_class=HTMLResponse)
def public_reviews(request: Request) -> Response:
    """Published reviews, for everyone (aggregate counts only)."""
    with runtime_of(request).sessions() as session:
        rows = oversight_queries.published_quarters(session)
    return templates.TemplateResponse(request, "reviews.html", {"reviews": rows, "actor": None})


@router.get("/reviews/{quarter}", response_class=HTMLResponse)
def public_review(request: Request, quarter: str) -> Response:
    try:
        q = Quarter.parse(quarter)
    except QuietlineError:
        q = None
    body = None
    if q is not None:
        with runtime_of(request).sessions() as session:
            body = oversight_queries.published(session, q)
    if body is None:
        return templates.TemplateResponse(
            request,
            "reviews.html",
            {"reviews": [], "actor": None, "error": "该季度的盘点尚未发布。"},
            status_code=404,
        )
    return templates.TemplateResponse(request, "review.html", {"r": body, "actor": None})


def _last_finished(rt: Runtime) -> Quarter:
    return Quarter.containing(rt.clock.now()).previous()


@router.get("/staff/reviews", response_class=HTMLResponse)
def staff_reviews(request: Request) -> Response:
    actor = staff.staff_actor(request, Role.REGULATOR, Role.OPERATOR)
    if isinstance(actor, Response):
        return actor
    return RedirectResponse(f"/staff/reviews/{_last_finished(runtime_of(request)).code}", status_code=303)


def _draft_page(request: Request, actor: Any, q: Quarter, **extra: Any) -> Response:
    rt = runtime_of(request)
    now = rt.clock.now()
    with rt.sessions() as session:
        draft = oversight_queries.draft_review(session, q, now=now).as_dict()
        published = oversight_queries.published(session, q)
    current = Quarter.containing(now)
    nearby = [
        current.previous().previous().previous(),
        current.previous().previous(),
        current.previous(),
        current,
    ]
    return staff.render(
        request,
        "staff_review.html",
        actor,
        r=draft,
        published_at=published["published_at"] if published else None,
        can_publish=q.is_over(now),
        nearby=nearby,
        **extra,
    )


@router.get("/staff/reviews/{quarter}", response_class=HTMLResponse)
def staff_review(request: Request, quarter: str) -> Response:
    actor = staff.staff_actor(request, Role.REGULATOR, Role.OPERATOR)
    if isinstance(actor, Response):
        return actor
    try:
        q = Quarter.parse(quarter)
    except QuietlineError as exc:
        return staff.render(request, "staff_denied.html", actor, status_code=422, error=exc.message)
    return _draft_page(request, actor, q)


@router.post("/staff/reviews/{quarter}/publish", response_class=HTMLResponse)
def staff_publish(request: Request, quarter: str) -> Response:
    actor = staff.staff_actor(request, Role.REGULATOR, Role.OPERATOR)
    if isinstance(actor, Response):
        return actor
    try:
        q = Quarter.parse(quarter)
        oversight_actions.publish_review(runtime_of(request), actor, q)
    except QuietlineError as exc:
        return staff.render(request, "staff_denied.html", actor, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/reviews/{q.code}", status_code=303)
