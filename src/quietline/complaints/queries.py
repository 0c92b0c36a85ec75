"""Reads of the complaint centre: a case with its clocks, inboxes, linked cases, breaches, the calendar."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from quietline.complaints.model import (
    OPEN_STATES,
    Alert,
    CaseState,
    DeadlinePolicy,
    Deadlines,
    Result,
    Stage,
    Timeline,
    alerts,
    compute_deadlines,
)
from quietline.complaints.orm import (
    CaseRow,
    EvidenceRow,
    ReportRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WorkdayOverrideRow,
    WorkdayYearRow,
)
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.errors import NotFound
from quietline.platform.workdays import CalendarNotCovered, WorkingCalendar, china_date
from quietline.vocabulary import Role

POLICY = DeadlinePolicy()


def load_calendar(session: Session) -> WorkingCalendar:
    """The statutory calendar with this installation's overrides and declared years."""
    overrides = {r.day: r.working for r in session.scalars(select(WorkdayOverrideRow))}
    years = frozenset(session.scalars(select(WorkdayYearRow.year)))
    return WorkingCalendar(overrides=overrides, complete_years=years)


def timeline(row: CaseRow) -> Timeline:
    return Timeline(row.clock_start, row.forwarded_at, row.feedback_at, row.answered_at)


def deadlines_of(row: CaseRow, calendar: WorkingCalendar, policy: DeadlinePolicy = POLICY) -> Deadlines:
    return compute_deadlines(timeline(row), calendar, policy)


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def mask_number(e164: str) -> str:
    """``+8613800138000`` → ``+86138****8000``."""
    return e164[:-8] + "****" + e164[-4:] if len(e164) > 8 else "****"


@dataclass(frozen=True)
class CaseView:
    row: CaseRow
    deadlines: Deadlines
    linked: int = 0
    merged: bool = False

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def state(self) -> CaseState:
        return CaseState.parse(self.row.state)

    def as_dict(self, *, mask_reporter: bool = False) -> dict[str, Any]:
        """The case as JSON. ``mask_reporter`` hides the middle of the reporter's number, for the
        enterprise that was reported: it learns what was reported, not who reported it (personal
        information minimisation, 个人信息保护法 第六条)."""
        r = self.row
        state = self.state
        return {
            "id": r.id,
            "state": state.value,
            "state_label": state.label,
            "cycle": r.cycle,
            "merged": self.merged,
            "report_count": r.report_count,
            "linked_cases": self.linked,
            "reporter": mask_number(r.reporter) if mask_reporter else r.reporter,
            "reporter_carrier": r.reporter_carrier,
            "reported": r.reported,
            "reported_type": r.reported_type,
            "channel": r.channel,
            "occurred_at": _iso(r.occurred_at),
            "received_at": _iso(r.received_at),
            "duration_seconds": r.duration_seconds,
            "form": r.form,
            "category": r.category,
            "nature": r.nature,
            "text": r.sms_text,
            "description": r.description,
            "responsible_carrier": r.responsible_carrier,
            "responsible_company": r.responsible_company,
            "assisting_carrier": r.assisting_carrier,
            "route_basis": r.route_basis,
            "route_explanation": r.route_explanation,
            "deadlines": self.deadlines.as_dates(),
            "clocks": [
                {
                    "stage": c.stage.value,
                    "due": _iso(c.due),
                    "projected": c.projected,
                    "started_at": _iso(c.started_at),
                    "finished_at": _iso(c.finished_at),
                    "late": c.late_by_finish(),
                    "calendar_gap": _iso(c.uncovered),
                    # Only with a calendar gap: the date on the statutory holidays alone, not enforced.
                    "due_estimate": _iso(c.estimate),
                }
                for c in self.deadlines.clocks
            ],
            "accepted_at": _iso(r.accepted_at),
            "forwarded_at": _iso(r.forwarded_at),
            "feedback_at": _iso(r.feedback_at),
            "answered_at": _iso(r.answered_at),
            "closed_at": _iso(r.closed_at),
            "result": r.result,
            "measure": r.measure,
            "action": r.action_text,
            "answer": r.answer_text,
            "rejection_reason": r.rejection_reason,
            "appeal": r.appeal_text,
            "appealed_at": _iso(r.appealed_at),
            "notify_status": r.notify_status,
        }


def _linked_count(session: Session, reported: str) -> int:
    return int(session.scalar(select(func.count()).where(CaseRow.reported == reported)) or 0) - 1


def view(
    session: Session, row: CaseRow, *, merged: bool = False, calendar: WorkingCalendar | None = None
) -> CaseView:
    cal = calendar or load_calendar(session)
    return CaseView(row, deadlines_of(row, cal), _linked_count(session, row.reported), merged)


def get_row(session: Session, case_id: int) -> CaseRow:
    row = session.get(CaseRow, case_id)
    if row is None:
        raise NotFound(f"no complaint {case_id}", field="id")
    return row


def show(session: Session, case_id: int) -> CaseView:
    return view(session, get_row(session, case_id))


def may_see(actor: Actor, row: CaseRow) -> bool:
    """The reporter, the companies the case was routed to, the complaint centre and the regulator."""
    if actor.role in (Role.OPERATOR, Role.REGULATOR):
        return True
    if actor.role is Role.SUBSCRIBER:
        return actor.subject == row.reporter
    if actor.role is Role.CARRIER:
        return actor.subject in (row.responsible_carrier, row.assisting_carrier)
    return actor.subject == row.responsible_company


def show_for(session: Session, actor: Actor, case_id: int) -> CaseView:
    """``show`` for a caller; a case the caller may not see is reported as not found (no existence leak)."""
    row = session.get(CaseRow, case_id)
    if row is None or not may_see(actor, row):
        raise NotFound(f"no complaint {case_id}", field="id")
    return view(session, row)


def evidence_meta(row: EvidenceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "case_id": row.case_id,
        "party": row.party,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_at": _iso(row.uploaded_at),
    }


def evidence(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(EvidenceRow).where(EvidenceRow.case_id == case_id).order_by(EvidenceRow.id))
    return [evidence_meta(r) for r in rows]


def evidence_file(session: Session, actor: Actor, case_id: int, evidence_id: int) -> EvidenceRow:
    """One evidence file for someone who may see its case."""
    show_for(session, actor, case_id)
    row = session.get(EvidenceRow, evidence_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"no evidence {evidence_id} on complaint {case_id}", field="evidence_id")
    return row


def history(session: Session, case_id: int) -> list[audit.AuditView]:
    """Every audited transition of the case, oldest first."""
    return list(reversed(audit.for_subject(session, "complaint", str(case_id))))


def reports(session: Session, case_id: int) -> list[ReportRow]:
    return list(session.scalars(select(ReportRow).where(ReportRow.case_id == case_id).order_by(ReportRow.id)))


def linked(session: Session, reported: str) -> list[CaseView]:
    """Every case about one number (reports by many reporters are seen together)."""
    cal = load_calendar(session)
    rows = session.scalars(select(CaseRow).where(CaseRow.reported == reported).order_by(CaseRow.id))
    return [CaseView(r, deadlines_of(r, cal)) for r in rows]


def substantiated_reporters(session: Session, reported: str) -> int:
    """How many distinct reporters have a substantiated complaint against ``reported`` (the strong
    evidence that puts a number on the high-risk list, issue 6)."""
    return int(
        session.scalar(
            select(func.count(func.distinct(CaseRow.reporter))).where(
                CaseRow.reported == reported, CaseRow.result == Result.SUBSTANTIATED.value
            )
        )
        or 0
    )


def inbox(
    session: Session, party: str, *, states: Iterable[CaseState] | None = None, limit: int = 200
) -> list[CaseView]:
    """A company's cases: where it is the responsible or the assisting carrier, or the responsible
    enterprise; open ones by default, oldest deadline first."""
    wanted = [s.value for s in (states or OPEN_STATES)]
    rows = session.scalars(
        select(CaseRow)
        .where(
            or_(
                CaseRow.responsible_carrier == party,
                CaseRow.assisting_carrier == party,
                CaseRow.responsible_company == party,
            ),
            CaseRow.state.in_(wanted),
        )
        .order_by(CaseRow.feedback_due.is_(None), CaseRow.feedback_due, CaseRow.id)
        .limit(limit)
    )
    cal = load_calendar(session)
    return [view(session, r, calendar=cal) for r in rows]


def of_reporter(session: Session, reporter: str, limit: int = 100) -> list[CaseView]:
    cal = load_calendar(session)
    rows = session.scalars(
        select(CaseRow).where(CaseRow.reporter == reporter).order_by(CaseRow.id.desc()).limit(limit)
    )
    return [CaseView(r, deadlines_of(r, cal)) for r in rows]


@dataclass(frozen=True)
class BreachItem:
    case_id: int
    state: str
    stage: Stage
    alert: Alert
    due: date | None
    responsible_carrier: str | None
    responsible_company: str | None
    reported: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "state": self.state,
            "stage": self.stage.value,
            "kind": self.alert.value,
            "due": _iso(self.due),
            "responsible_carrier": self.responsible_carrier,
            "responsible_company": self.responsible_company,
            "reported": self.reported,
        }


def breaches(
    session: Session, as_of: datetime, *, include_warnings: bool = False, policy: DeadlinePolicy = POLICY
) -> list[BreachItem]:
    """Breaches as of ``as_of`` (with ``include_warnings``: due-soon warnings and calendar gaps too).

    Cases are considered as they stood at ``as_of``: a stage finished after ``as_of`` counts as unfinished
    then, and cases received after ``as_of`` are ignored.
    """
    cal = load_calendar(session)
    rows = session.scalars(
        select(CaseRow)
        .where(CaseRow.received_at <= as_of, CaseRow.clock_start.is_not(None))
        .order_by(CaseRow.id)
    )
    out: list[BreachItem] = []
    for row in rows:
        for item in alerts(deadlines_of(row, cal, policy), as_of, cal, policy):
            if item.alert is not Alert.BREACH and not include_warnings:
                continue
            out.append(
                BreachItem(
                    row.id,
                    row.state,
                    item.stage,
                    item.alert,
                    item.due,
                    row.responsible_carrier,
                    row.responsible_company,
                    row.reported,
                )
            )
    return out


def counts_by_company_and_state(session: Session) -> list[dict[str, Any]]:
    """Regulator view: open cases by responsible carrier and state."""
    rows = session.execute(
        select(CaseRow.responsible_carrier, CaseRow.state, func.count())
        .group_by(CaseRow.responsible_carrier, CaseRow.state)
        .order_by(CaseRow.responsible_carrier, CaseRow.state)
    ).all()
    return [{"carrier": c, "state": s, "count": int(n)} for c, s, n in rows]


def webhook_deliveries(
    session: Session, status: str | None = None, limit: int = 100, party: str | None = None
) -> list[dict[str, Any]]:
    """The outbox, newest first; ``party`` limits it to one carrier's or enterprise's endpoints."""
    query = (
        select(WebhookDeliveryRow, WebhookEndpointRow)
        .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
        .order_by(WebhookDeliveryRow.created_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(WebhookDeliveryRow.status == status)
    if party:
        query = query.where(WebhookEndpointRow.party_id == party)
    return [
        {
            "delivery_id": d.id,
            "event": d.event,
            "case_id": d.case_id,
            "party": f"{e.party_kind}:{e.party_id}",
            "url": e.url,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": _iso(d.next_attempt_at),
            "delivered_at": _iso(d.delivered_at),
            "last_error": d.last_error,
        }
        for d, e in session.execute(query).all()
    ]


# ------------------------------------------------------------------------------------ regulator views


def _nearest_rank(sorted_values: list[int], q: float) -> int:
    """The q-quantile by the nearest-rank method (a value that occurred, no interpolation)."""
    index = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def stage_times(session: Session, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Median and 90th-percentile working days per stage over finished stages (current cycles).

    Working days are counted like deadlines: the start day is not counted, so a stage finished on the
    day it started took 0 working days.
    """
    cal = load_calendar(session)
    query = select(CaseRow).where(CaseRow.clock_start.is_not(None))
    if since is not None:
        query = query.where(CaseRow.received_at >= since)
    spans: dict[Stage, list[int]] = {stage: [] for stage in Stage}
    gaps = 0
    for row in session.scalars(query):
        tl = timeline(row)
        for stage in Stage:
            start, end = tl.started(stage), tl.finished(stage)
            if start is None or end is None:
                continue
            try:
                spans[stage].append(cal.working_days_between(china_date(start), china_date(end)))
            except CalendarNotCovered:
                gaps += 1
    out = []
    for stage, values in spans.items():
        values.sort()
        out.append(
            {
                "stage": stage.value,
                "finished": len(values),
                "median_working_days": _nearest_rank(values, 0.5) if values else None,
                "p90_working_days": _nearest_rank(values, 0.9) if values else None,
                "limit_working_days": POLICY.limit(stage),
                "over_limit": sum(1 for v in values if v > POLICY.limit(stage)),
            }
        )
    if gaps:
        out.append({"stage": "calendar_gap", "finished": gaps})
    return out


def repeat_offenders(
    session: Session, *, min_cases: int = 3, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Reported numbers with at least ``min_cases`` cases (linked reports by different reporters)."""
    query = (
        select(
            CaseRow.reported,
            CaseRow.reported_type,
            func.max(CaseRow.responsible_carrier),
            func.max(CaseRow.responsible_company),
            func.count(),
            func.count(func.distinct(CaseRow.reporter)),
            func.sum(case((CaseRow.result == "substantiated", 1), else_=0)),
            func.max(CaseRow.received_at),
        )
        .group_by(CaseRow.reported, CaseRow.reported_type)
        .having(func.count() >= min_cases)
        .order_by(func.count().desc(), CaseRow.reported)
        .limit(limit)
    )
    if since is not None:
        query = query.where(CaseRow.received_at >= since)
    rows = session.execute(query).all()
    return [
        {
            "reported": number,
            "reported_type": kind,
            "responsible_carrier": carrier,
            "responsible_company": company,
            "cases": int(cases),
            "reporters": int(reporters),
            "substantiated": int(substantiated or 0),
            "last_received_at": _iso(last),
        }
        for number, kind, carrier, company, cases, reporters, substantiated, last in rows
    ]


def open_cases(session: Session, *, carrier: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
    """Open cases as flat rows (for the regulator's list and its CSV/XLSX export)."""
    query = select(CaseRow).where(CaseRow.state.in_([s.value for s in OPEN_STATES])).order_by(CaseRow.id)
    if carrier is not None:
        query = query.where(CaseRow.responsible_carrier == carrier)
    return [
        {
            "id": r.id,
            "state": r.state,
            "reported": r.reported,
            "channel": r.channel,
            "category": r.category,
            "responsible_carrier": r.responsible_carrier,
            "responsible_company": r.responsible_company,
            "assisting_carrier": r.assisting_carrier,
            "received_at": _iso(r.received_at),
            "forward_due": _iso(r.forward_due),
            "feedback_due": _iso(r.feedback_due),
            "answer_due": _iso(r.answer_due),
        }
        for r in session.scalars(query.limit(limit))
    ]


def iter_reports(session: Session, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Every case received in ``[start, end)`` as the quarterly review (盘点) counts them: channel, call
    form, category, nature, number type and responsible carrier (for ``quietline.oversight``)."""
    query = (
        select(
            CaseRow.id,
            CaseRow.received_at,
            CaseRow.channel,
            CaseRow.form,
            CaseRow.category,
            CaseRow.nature,
            CaseRow.reported,
            CaseRow.reported_type,
            CaseRow.responsible_carrier,
            CaseRow.state,
            CaseRow.result,
            CaseRow.report_count,
        )
        .where(CaseRow.received_at >= start, CaseRow.received_at < end)
        .order_by(CaseRow.id)
        .execution_options(yield_per=10_000)
    )
    for row in session.execute(query):
        yield dict(row._mapping)
