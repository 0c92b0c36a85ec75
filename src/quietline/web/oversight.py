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
from fastapi.responses import HTMLResponse, Response

from quietline.complaints import queries as complaints_queries
from quietline.complaints.model import STAGE_LABELS, CaseState, Stage
from quietline.jobs import schedule
from quietline.marks import queries as marks_queries
from quietline.marks.model import HighRiskState
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Carrier, Role, VocabularyError
from quietline.web import staff

CHINA_TIME = timezone(timedelta(hours=8), "CST")
PATH = "/staff/oversight"
router = APIRouter(include_in_schema=False)
staff.add_nav(PATH, "监管总览", Role.REGULATOR, Role.OPERATOR)

#: The lists the API exports (complaints.export), with their Chinese names.
EXPORTS = (
    ("open", "待办投诉"),
    ("breaches", "超时与预警"),
    ("offenders", "屡被投诉号码"),
    ("stats", "按企业与状态统计"),
    ("stage_times", "各环节用时"),
)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


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
    rt = _rt(request)
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
