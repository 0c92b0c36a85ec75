"""The only write path of the complaint centre. Each action is one transaction with its audit rows; the
webhooks it causes are written to the outbox in the same transaction (``webhooks.enqueue``) and the
changes other processes must see go to the change feed (``complaints.*`` topics).

Every state change goes through ``model.transition`` (the state machine refuses anything else) and
writes one ``audit_log`` row named ``complaint.<event>`` with the state before and after.
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quietline.accounts.model import parse_uscc
from quietline.complaints import queries, webhooks
from quietline.complaints.model import (
    BLOCKING_MEASURES,
    FUTURE_SKEW,
    MAX_EVIDENCE_PER_CASE,
    OPEN_STATES,
    Alert,
    CaseState,
    Event,
    Measure,
    ReportInput,
    Result,
    RouteBasis,
    Routing,
    Stage,
    ValidReport,
    alerts,
    clean_filename,
    may_appeal,
    merges_with,
    parse_measure,
    parse_sms_report,
    respond_event,
    route,
    sniff_evidence,
    transition,
    validate_report,
)
from quietline.complaints.orm import (
    AlertRow,
    CaseRow,
    EvidenceRow,
    ReportRow,
    WebhookEndpointRow,
    WorkdayOverrideRow,
    WorkdayYearRow,
    lock_key,
)
from quietline.complaints.routing import NumbersResolver, Resolver
from quietline.numbers import parse as parse_number
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import SmsMessage
from quietline.platform.workdays import WorkingCalendar
from quietline.registry import actions as registry_actions
from quietline.registry.model import ListName
from quietline.vocabulary import Carrier, NumberType, Role

SUBJECT = "complaint"
#: Change-feed topics this context announces (payloads: see the ``changefeed.emit`` calls below).
TOPIC_FORWARDED = "complaints.forwarded"
#: A company reported its verification (核查处置); payload: case_id, cycle, reporter, reported, result,
#: measure, nature, form, category.
TOPIC_RESPONDED = "complaints.responded"
#: The finding put the reported number on the system block list; payload: number, measure, case_id.
TOPIC_NUMBER_BLOCKED = "complaints.number_blocked"
#: Default appeal window after the answer (calendar days). A policy choice, not a rule: a deployment
#: sets ``QUIETLINE_COMPLAINT_APPEAL_WINDOW_DAYS`` once the platform settings carry it (see
#: ``appeal_window``), and the CLI and jobs may pass a window explicitly.
DEFAULT_APPEAL_WINDOW = timedelta(days=15)


def appeal_window(rt: Runtime) -> timedelta:
    """The deployment's appeal window: the ``complaint_appeal_window_days`` setting when present."""
    days = getattr(rt.settings, "complaint_appeal_window_days", None)
    return timedelta(days=int(days)) if days else DEFAULT_APPEAL_WINDOW


REPORTER_TYPES = frozenset({NumberType.MOBILE, NumberType.RESALE, NumberType.SATELLITE})
SOURCES = frozenset({"cli", "api", "portal", "import", "sms"})


# ------------------------------------------------------------------------------------------ helpers


def _snapshot(row: CaseRow) -> dict[str, Any]:
    return {
        "state": row.state,
        "cycle": row.cycle,
        "responsible_carrier": row.responsible_carrier,
        "responsible_company": row.responsible_company,
        "assisting_carrier": row.assisting_carrier,
        "forward_due": row.forward_due.isoformat() if row.forward_due else None,
        "feedback_due": row.feedback_due.isoformat() if row.feedback_due else None,
        "answer_due": row.answer_due.isoformat() if row.answer_due else None,
        "result": row.result,
        "measure": row.measure,
    }


def _audit(
    session: Session, actor: Actor, event: str, row: CaseRow, *, before: dict[str, Any] | None, at: datetime
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"complaint.{event}",
        subject_type=SUBJECT,
        subject=str(row.id),
        at=at,
        before=before,
        after=_snapshot(row),
    )


def _store_due(row: CaseRow, calendar: WorkingCalendar) -> None:
    deadlines = queries.deadlines_of(row, calendar)
    row.forward_due = deadlines[Stage.FORWARD].due
    row.feedback_due = deadlines[Stage.FEEDBACK].due
    row.answer_due = deadlines[Stage.ANSWER].due


def _step(
    session: Session,
    actor: Actor,
    row: CaseRow,
    event: Event,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    **changes: Any,
) -> None:
    """Apply one transition with its field changes, keep the stored deadlines current, audit it."""
    before = _snapshot(row)
    row.state = transition(CaseState.parse(row.state), event).value
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    _store_due(row, calendar)
    _audit(session, actor, event.value, row, before=before, at=now)


def _routing_of(row: CaseRow) -> Routing:
    return Routing(
        row.responsible_carrier,
        row.responsible_company,
        row.assisting_carrier,
        RouteBasis(row.route_basis),
        row.route_explanation,
    )


def _payload(row: CaseRow) -> dict[str, Any]:
    return {
        "case": {
            "id": row.id,
            "cycle": row.cycle,
            "state": row.state,
            "reported": row.reported,
            "reported_type": row.reported_type,
            "channel": row.channel,
            "occurred_at": row.occurred_at.isoformat(),
            "form": row.form,
            "category": row.category,
            "nature": row.nature,
            "text": row.sms_text,
            "description": row.description,
            "report_count": row.report_count,
            "responsible_carrier": row.responsible_carrier,
            "responsible_company": row.responsible_company,
            "assisting_carrier": row.assisting_carrier,
            "forwarded_at": row.forwarded_at.isoformat() if row.forwarded_at else None,
            "feedback_due": row.feedback_due.isoformat() if row.feedback_due else None,
        }
    }


def _forward(session: Session, actor: Actor, row: CaseRow, now: datetime, calendar: WorkingCalendar) -> None:
    """Forward to everyone routing names (responsible carrier, company, 联动协查 carrier), in real time:
    the webhook rows commit with the transition."""
    _step(session, actor, row, Event.FORWARD, now=now, calendar=calendar, forwarded_at=now)
    recipients = _routing_of(row).recipients()
    webhooks.enqueue(
        session,
        recipients=recipients,
        event="complaint.forwarded",
        payload=_payload(row),
        case_id=row.id,
        now=now,
    )
    changefeed.emit(
        session,
        topic=TOPIC_FORWARDED,
        key=str(row.id),
        payload={"case_id": row.id, "reported": row.reported, "recipients": [p for _, p in recipients]},
        at=now,
    )


def may_act_for(actor: Actor, row: CaseRow) -> None:
    """Companies act only on their own cases; the 12321 operator and the regulator on any."""
    if actor.role in (Role.OPERATOR, Role.REGULATOR):
        return
    if actor.role is Role.CARRIER and actor.subject == row.responsible_carrier:
        return
    if actor.role is Role.ENTERPRISE and actor.subject == row.responsible_company:
        return
    raise PermissionDenied(f"{actor} is not responsible for complaint {row.id}", field="id")


# ------------------------------------------------------------------------------------------- intake


@dataclass(frozen=True)
class Filing:
    reporter: str
    reported: str
    channel: str
    at: datetime | None
    received_at: datetime | None = None
    duration_seconds: int | None = None
    form: str | None = None
    category: str | None = None
    nature: str | None = None
    text: str | None = None
    description: str | None = None
    source: str = "api"


def file_report(
    rt: Runtime, actor: Actor, filing: Filing, *, resolver: Resolver | None = None
) -> queries.CaseView:
    """Receive a report: validate it, merge it into a recent case or open a new one, accept it (it is
    complete) and forward it at once when routing names a responsible carrier.

    ``received_at`` (operator imports of past reports) starts the clock then; otherwise it starts now.
    A subscriber may report only from its own (verified) number.
    """
    now = rt.clock.now()
    received_at = filing.received_at or now
    if received_at.tzinfo is None:
        raise InvalidInput("needs a time zone", field="received_at")
    if received_at > now + FUTURE_SKEW:
        raise InvalidInput(f"{received_at.isoformat()} is in the future", field="received_at")
    if filing.source not in SOURCES:
        raise InvalidInput(f"unknown source {filing.source!r}", field="source")
    resolver = resolver or NumbersResolver()
    with rt.sessions.begin() as session:
        reporter = resolver.facts(session, filing.reporter, "reporter")
        if reporter.type not in REPORTER_TYPES:
            raise InvalidInput(
                f"the reporter must be a mobile number that can receive the answer by SMS "
                f"(got {reporter.type.value})",
                field="reporter",
            )
        if actor.role is Role.SUBSCRIBER and actor.subject != reporter.e164:
            raise PermissionDenied("a subscriber reports from its own verified number", field="reporter")
        if actor.role is Role.SUBSCRIBER:
            _within_daily_quota(session, reporter.e164, now)
        reported = resolver.facts(session, filing.reported, "reported")
        if reported.never_block:
            # DESIGN.md decision order step 1: emergency and public-service numbers are never blocked;
            # a call from them is not unwanted commercial traffic, so 12321 does not take it.
            raise InvalidInput(
                f"{reported.e164} is an emergency or public-service number, outside 12321's scope",
                field="reported",
            )
        if reported.e164 == reporter.e164:
            raise InvalidInput("the reported number is the reporter's own number", field="reported")
        report = validate_report(
            ReportInput(
                channel=filing.channel,
                occurred_at=filing.at,
                received_at=received_at,
                duration_seconds=filing.duration_seconds,
                form=filing.form,
                category=filing.category,
                nature=filing.nature,
                sms_text=filing.text,
                description=filing.description,
            )
        )
        calendar = queries.load_calendar(session)
        lock_key(session, "complaint-merge", reporter.e164, reported.e164)
        merged = _merge_target(session, reporter.e164, reported.e164, received_at)
        if merged is not None:
            _add_report(session, merged, report)
            before = _snapshot(merged)
            merged.report_count += 1
            merged.last_report_at = max(merged.last_report_at, received_at)
            merged.updated_at = now
            _audit(session, actor, "merged", merged, before=before, at=now)
            return queries.view(session, merged, merged=True, calendar=calendar)
        routing = route(reported, reporter.current_carrier, resolver.holder(session, reported.e164))
        row = CaseRow(
            state=CaseState.RECEIVED.value,
            cycle=1,
            source=filing.source,
            reporter=reporter.e164,
            reporter_carrier=reporter.current_carrier,
            reported=reported.e164,
            reported_type=reported.type.value,
            channel=report.channel.value,
            occurred_at=report.occurred_at,
            received_at=received_at,
            last_report_at=received_at,
            report_count=1,
            duration_seconds=report.duration_seconds,
            form=report.form.value if report.form else None,
            category=report.category.value if report.category else None,
            nature=report.nature.value if report.nature else None,
            sms_text=report.sms_text,
            description=report.description,
            responsible_carrier=routing.responsible_carrier,
            responsible_company=routing.responsible_company,
            assisting_carrier=routing.assisting_carrier,
            route_basis=routing.basis.value,
            route_explanation=routing.explanation,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _add_report(session, row, report)
        _audit(session, actor, "received", row, before=None, at=now)
        # 受理: a report that passed validation is complete; its clock starts when it was received.
        _step(
            session,
            actor,
            row,
            Event.ACCEPT,
            now=now,
            calendar=calendar,
            accepted_at=received_at,
            clock_start=received_at,
        )
        if routing.resolved:
            _forward(session, actor, row, now, calendar)
        return queries.view(session, row, calendar=calendar)


def file_sms_report(
    rt: Runtime, actor: Actor, *, sender: str, body: str, resolver: Resolver | None = None
) -> queries.CaseView:
    """A report sent by SMS to 12321 (``被举报号码*短信内容``): the sender is the reporter (the carrier
    network vouches for the sending number) and the message is the report of an SMS received."""
    reported, text = parse_sms_report(body)
    now = rt.clock.now()
    filing = Filing(reporter=sender, reported=reported, channel="sms", at=now, text=text, source="sms")
    return file_report(rt, actor, filing, resolver=resolver)


#: New reports one subscriber may file in 24 hours (merged repeats count too). A policy choice against
#: flooding and "marking wars" (REFERENCE "Marks": competitors mark each other), not a regulation.
MAX_REPORTS_PER_DAY = 30


def _within_daily_quota(session: Session, reporter: str, now: datetime) -> None:
    since = now - timedelta(days=1)
    count = session.scalar(
        select(func.count())
        .select_from(ReportRow)
        .join(CaseRow, CaseRow.id == ReportRow.case_id)
        .where(CaseRow.reporter == reporter, ReportRow.received_at > since)
    )
    if (count or 0) >= MAX_REPORTS_PER_DAY:
        raise RateLimited(f"at most {MAX_REPORTS_PER_DAY} reports a day from one number", field="reporter")


def _merge_target(session: Session, reporter: str, reported: str, received_at: datetime) -> CaseRow | None:
    """Same reporter, same number, within a day of the case's first report, still open: the report
    joins that case (anchored on the first report so daily reports do not chain into one case forever)."""
    row = session.scalars(
        select(CaseRow)
        .where(
            CaseRow.reporter == reporter,
            CaseRow.reported == reported,
            CaseRow.state.in_([s.value for s in OPEN_STATES]),
            CaseRow.received_at > received_at - timedelta(days=1),
            CaseRow.received_at < received_at + timedelta(days=1),
        )
        .order_by(CaseRow.id.desc())
        .limit(1)
    ).first()
    return row if row is not None and merges_with(row.received_at, received_at) else None


def _add_report(session: Session, row: CaseRow, report: ValidReport) -> None:
    session.add(
        ReportRow(
            case_id=row.id,
            received_at=report.received_at,
            occurred_at=report.occurred_at,
            channel=report.channel.value,
            fields={
                "duration_seconds": report.duration_seconds,
                "form": report.form.value if report.form else None,
                "category": report.category.value if report.category else None,
                "nature": report.nature.value if report.nature else None,
                "text": report.sms_text,
                "description": report.description,
            },
        )
    )


# ----------------------------------------------------------------------------------- the case flow


def reject(rt: Runtime, actor: Actor, case_id: int, reason: str) -> queries.CaseView:
    """不予受理: incomplete or out of scope (12321 operator or regulator only)."""
    if actor.role not in (Role.OPERATOR, Role.REGULATOR):
        raise PermissionDenied("only the complaint centre rejects a report", field="id")
    if not reason.strip():
        raise InvalidInput("say why the report is rejected", field="reason")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        cal = queries.load_calendar(session)
        _step(session, actor, row, Event.REJECT, now=now, calendar=cal, rejection_reason=reason.strip())
        return queries.view(session, row, calendar=cal)


def forward(
    rt: Runtime, actor: Actor, case_id: int, *, carrier: str, company: str | None = None
) -> queries.CaseView:
    """Manual forwarding of a case routing could not resolve (an unlisted service number, …)."""
    if actor.role not in (Role.OPERATOR, Role.REGULATOR):
        raise PermissionDenied("only the complaint centre forwards", field="id")
    carrier_code = Carrier.parse(carrier, "carrier").value
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        cal = queries.load_calendar(session)
        transition(CaseState.parse(row.state), Event.FORWARD)  # refuse before changing the routing
        before = _snapshot(row)
        row.responsible_carrier = carrier_code
        row.responsible_company = parse_uscc(company, "company") if company else row.responsible_company
        row.assisting_carrier = (
            row.reporter_carrier if row.reporter_carrier and row.reporter_carrier != carrier_code else None
        )
        row.route_basis = RouteBasis.MANUAL.value
        row.route_explanation = f"由 12321 人工转送至 {carrier_code}"
        _audit(session, actor, "route", row, before=before, at=now)
        _forward(session, actor, row, now, cal)
        return queries.view(session, row, calendar=cal)


def respond(
    rt: Runtime,
    actor: Actor,
    case_id: int,
    *,
    result: str,
    action: str,
    measure: str | None = None,
) -> queries.CaseView:
    """The company's verification and action (核查处置).

    A measure that blocks the number (suspension, the system block list) feeds screening: the number
    goes on the registry's system block list (decision order step 5) right after the case commits, and
    the change feed carries ``complaints.number_blocked``. Only carriers (and the centre) can block a
    number; an enterprise answers with what it did on its own lines.
    """
    outcome = Result.parse(result, "result")
    chosen, text = parse_measure(outcome, action, measure)
    if chosen in BLOCKING_MEASURES and actor.role not in (Role.CARRIER, Role.OPERATOR, Role.REGULATOR):
        raise InvalidInput(f"only a carrier can apply {chosen.value}", field="measure")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        may_act_for(actor, row)
        cal = queries.load_calendar(session)
        _step(
            session,
            actor,
            row,
            respond_event(outcome),
            now=now,
            calendar=cal,
            feedback_at=now,
            result=outcome.value,
            measure=chosen.value,
            action_text=text,
        )
        # Other contexts react to the company's finding (a substantiated complaint credits the
        # reporter's marks and counts towards the high-risk list, issue 6) through the change feed.
        changefeed.emit(
            session,
            topic=TOPIC_RESPONDED,
            key=row.reported,
            payload={
                "case_id": row.id,
                "cycle": row.cycle,
                "reporter": row.reporter,
                "reported": row.reported,
                "result": outcome.value,
                "measure": chosen.value,
                "nature": row.nature,
                "form": row.form,
                "category": row.category,
            },
            at=now,
        )
        if chosen in BLOCKING_MEASURES:
            changefeed.emit(
                session,
                topic=TOPIC_NUMBER_BLOCKED,
                key=row.reported,
                payload={"number": row.reported, "measure": chosen.value, "case_id": row.id},
                at=now,
            )
        view = queries.view(session, row, calendar=cal)
    if chosen in BLOCKING_MEASURES:
        registry_actions.set_system_list(
            rt,
            actor,
            ListName.BLOCK,
            parse_number(view.row.reported, field="reported"),
            active=True,
            reason=f"12321 投诉 {case_id} 核查属实：{chosen.label}",
        )
    return view


def _answer_text(row: CaseRow) -> str:
    measure = Measure.parse(row.measure) if row.measure else Measure.NONE
    if row.result == Result.SUBSTANTIATED.value:
        return f"您举报的号码{_shown(row.reported)}经核查属实，已采取措施：{measure.label}。"
    return f"您举报的号码{_shown(row.reported)}经核查未发现违规，原因：{row.action_text or '无'}。"


def _shown(e164: str) -> str:
    """A number as a subscriber would dial it at home (13012345678, 010-…), not in E.164."""
    try:
        return parse_number(e164).national
    except InvalidInput:
        return e164


def answer(rt: Runtime, actor: Actor, case_id: int, text: str | None = None) -> queries.CaseView:
    """Answer the reporter (反馈) in the portal and by SMS; the SMS is sent after the commit and its
    outcome recorded on the case (a gateway failure is shown, never dropped)."""
    if actor.role not in (Role.OPERATOR, Role.REGULATOR):
        raise PermissionDenied("the complaint centre answers the reporter", field="id")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        cal = queries.load_calendar(session)
        body = (text or "").strip() or _answer_text(row)
        _step(session, actor, row, Event.ANSWER, now=now, calendar=cal, answered_at=now, answer_text=body)
        reporter, sms_text = (
            row.reporter,
            f"【12321】投诉{row.id}：{body}如有异议可在{appeal_window(rt).days}日内申诉。",
        )
    status = "sms_sent"
    try:
        rt.sms.send(SmsMessage(to=reporter, text=sms_text, at=now, purpose="complaint_answer"))
    except Exception as exc:  # any gateway failure is recorded on the case and shown
        status = f"sms_failed: {exc}"[:200]
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        row.notify_status = status
        return queries.view(session, row)


def close(rt: Runtime, actor: Actor, case_id: int) -> queries.CaseView:
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        if actor.role is Role.SUBSCRIBER and actor.subject != row.reporter:
            raise PermissionDenied("not your complaint", field="id")
        if actor.role in (Role.CARRIER, Role.ENTERPRISE):
            raise PermissionDenied("the company does not close the reporter's case", field="id")
        cal = queries.load_calendar(session)
        _step(session, actor, row, Event.CLOSE, now=now, calendar=cal, closed_at=now)
        return queries.view(session, row, calendar=cal)


def close_expired(rt: Runtime, window: timedelta | None = None) -> list[int]:
    """Job: close answered cases whose appeal window has passed."""
    window = window or appeal_window(rt)
    now = rt.clock.now()
    actor = Actor.system("complaints-close")
    closed: list[int] = []
    with rt.sessions.begin() as session:
        cal = queries.load_calendar(session)
        rows = session.scalars(
            select(CaseRow).where(
                CaseRow.state == CaseState.ANSWERED.value, CaseRow.answered_at < now - window
            )
        ).all()
        for row in rows:
            _step(session, actor, row, Event.CLOSE, now=now, calendar=cal, closed_at=now)
            closed.append(row.id)
    return closed


def appeal(
    rt: Runtime, actor: Actor, case_id: int, text: str, *, window: timedelta | None = None
) -> queries.CaseView:
    """The reporter appeals within the window: the case reopens with a new clock (cycle + 1) and is
    forwarded again at once when it has a responsible carrier."""
    if not text.strip():
        raise InvalidInput("say what is wrong with the answer", field="text")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        if actor.role is Role.SUBSCRIBER and actor.subject != row.reporter:
            raise PermissionDenied("only the reporter appeals", field="id")
        if actor.role in (Role.CARRIER, Role.ENTERPRISE):
            raise PermissionDenied("only the reporter appeals", field="id")
        may_appeal(CaseState.parse(row.state), row.answered_at, now, window or appeal_window(rt))
        cal = queries.load_calendar(session)
        _step(
            session,
            actor,
            row,
            Event.APPEAL,
            now=now,
            calendar=cal,
            cycle=row.cycle + 1,
            appeal_text=text.strip(),
            appealed_at=now,
            clock_start=now,
            forwarded_at=None,
            feedback_at=None,
            answered_at=None,
            closed_at=None,
            result=None,
            measure=None,
            action_text=None,
            answer_text=None,
        )
        if row.responsible_carrier:
            _forward(session, actor, row, now, cal)
        return queries.view(session, row, calendar=cal)


# ----------------------------------------------------------------------------------------- evidence


def attach_evidence(rt: Runtime, actor: Actor, case_id: int, *, filename: str, data: bytes) -> dict[str, Any]:
    """Attach a screenshot, recording or document: the reporter to its own case, the responsible
    company to a case routed to it, the centre to any. Size and type are checked from the bytes."""
    content_type = sniff_evidence(data)
    digest = hashlib.sha256(data).hexdigest()
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = queries.get_row(session, case_id)
        if actor.role is Role.SUBSCRIBER:
            if actor.subject != row.reporter:
                raise NotFound(f"no complaint {case_id}", field="id")
            party = "reporter"
        elif actor.role in (Role.CARRIER, Role.ENTERPRISE):
            may_act_for(actor, row)
            party = "company"
        else:
            party = "centre"
        if row.state in (CaseState.CLOSED.value, CaseState.REJECTED.value):
            raise Conflict(f"complaint {case_id} is {row.state}", field="state")
        count = session.scalar(select(func.count()).where(EvidenceRow.case_id == case_id)) or 0
        if count >= MAX_EVIDENCE_PER_CASE:
            raise Conflict(f"at most {MAX_EVIDENCE_PER_CASE} files per complaint", field="evidence")
        evidence = EvidenceRow(
            case_id=case_id,
            party=party,
            uploaded_by=str(actor),
            filename=clean_filename(filename),
            content_type=content_type,
            size=len(data),
            sha256=digest,
            data=data,
            uploaded_at=now,
        )
        session.add(evidence)
        session.flush()
        meta = queries.evidence_meta(evidence)
        audit.record(
            session,
            actor=actor,
            action="complaint.evidence",
            subject_type=SUBJECT,
            subject=str(case_id),
            at=now,
            after=meta,
        )
        return meta


# -------------------------------------------------------------------------------------- breach scan


@dataclass(frozen=True)
class Flagged:
    case_id: int
    stage: str
    kind: str
    due: date | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "stage": self.stage,
            "kind": self.kind,
            "due": self.due.isoformat() if self.due else None,
        }


def scan(rt: Runtime) -> list[Flagged]:
    """Scheduled job: flag every new breach, warn two working days before each deadline, and report
    deadlines the calendar cannot place; each flag once per case, cycle and stage (audited, and sent to
    the responsible company as a webhook)."""
    now = rt.clock.now()
    actor = Actor.system("complaints-scan")
    flagged: list[Flagged] = []
    with rt.sessions.begin() as session:
        cal = queries.load_calendar(session)
        seen = {
            (a.case_id, a.cycle, a.stage, a.kind)
            for a in session.scalars(
                select(AlertRow)
                .join(CaseRow, CaseRow.id == AlertRow.case_id)
                .where(CaseRow.state.in_([s.value for s in OPEN_STATES]))
            )
        }
        rows = session.scalars(
            select(CaseRow).where(
                CaseRow.state.in_([s.value for s in OPEN_STATES]), CaseRow.clock_start.is_not(None)
            )
        ).all()
        for row in rows:
            for item in alerts(queries.deadlines_of(row, cal), now, cal, queries.POLICY):
                key = (row.id, row.cycle, item.stage.value, item.alert.value)
                if key in seen:
                    continue
                seen.add(key)
                session.add(
                    AlertRow(
                        case_id=row.id,
                        cycle=row.cycle,
                        stage=item.stage.value,
                        kind=item.alert.value,
                        due=item.due,
                        carrier=row.responsible_carrier,
                        flagged_at=now,
                    )
                )
                audit.record(
                    session,
                    actor=actor,
                    action=f"complaint.{item.alert.value}",
                    subject_type=SUBJECT,
                    subject=str(row.id),
                    at=now,
                    after={
                        "stage": item.stage.value,
                        "due": item.due.isoformat() if item.due else None,
                        "cycle": row.cycle,
                    },
                )
                if item.alert is not Alert.CALENDAR_GAP:
                    event = "complaint.breach" if item.alert is Alert.BREACH else "complaint.deadline_warning"
                    webhooks.enqueue(
                        session,
                        recipients=_routing_of(row).recipients(),
                        event=event,
                        payload={**_payload(row), "stage": item.stage.value, "due": item.due},
                        case_id=row.id,
                        now=now,
                    )
                flagged.append(Flagged(row.id, item.stage.value, item.alert.value, item.due))
    return flagged


# ------------------------------------------------------------------------------------ the calendar


def _refresh_open_due_dates(session: Session, calendar: WorkingCalendar) -> int:
    rows = session.scalars(select(CaseRow).where(CaseRow.state.in_([s.value for s in OPEN_STATES]))).all()
    for row in rows:
        _store_due(row, calendar)
    return len(rows)


def set_workday(rt: Runtime, actor: Actor, day: date, *, working: bool, note: str) -> None:
    """Override one day of the statutory calendar (a correction, or a year the package lacks)."""
    if actor.role not in (Role.OPERATOR, Role.REGULATOR):
        raise PermissionDenied("only an operator edits the calendar", field="day")
    if not note.strip():
        raise InvalidInput("cite the State Council notice the day comes from", field="note")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.get(WorkdayOverrideRow, day)
        before = None if row is None else {"working": row.working, "note": row.note}
        if row is None:
            row = WorkdayOverrideRow(day=day, working=working, note=note.strip()[:200], set_at=now)
            session.add(row)
        else:
            row.working, row.note, row.set_at = working, note.strip()[:200], now
        audit.record(
            session,
            actor=actor,
            action="calendar.override",
            subject_type="workday",
            subject=day.isoformat(),
            at=now,
            before=before,
            after={"working": working, "note": row.note},
        )
        session.flush()
        _refresh_open_due_dates(session, queries.load_calendar(session))


def declare_year(rt: Runtime, actor: Actor, year: int, *, source: str) -> None:
    """Declare a year's overrides complete: its other days follow the plain week."""
    if actor.role not in (Role.OPERATOR, Role.REGULATOR):
        raise PermissionDenied("only an operator edits the calendar", field="year")
    if not 2000 <= year <= 2200:
        raise InvalidInput("not a plausible year", field="year")
    if not source.strip():
        raise InvalidInput("cite the State Council notice for the year", field="source")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        if session.get(WorkdayYearRow, year) is not None:
            raise Conflict(f"{year} is already declared", field="year")
        session.add(WorkdayYearRow(year=year, source=source.strip()[:200], declared_at=now))
        audit.record(
            session,
            actor=actor,
            action="calendar.declare_year",
            subject_type="workday_year",
            subject=str(year),
            at=now,
            after={"source": source.strip()},
        )
        session.flush()
        _refresh_open_due_dates(session, queries.load_calendar(session))


# --------------------------------------------------------------------------------------- webhooks


def register_endpoint(
    rt: Runtime, actor: Actor, *, party_kind: str, party_id: str, url: str, secret: str | None = None
) -> tuple[int, str]:
    """Register where a carrier or an enterprise receives its cases; returns (id, shared secret).

    The secret is shown once to whoever registers it; the receiver verifies signatures with it.
    """
    if party_kind not in ("carrier", "enterprise"):
        raise InvalidInput("carrier or enterprise", field="party_kind")
    if party_kind == "carrier":
        party_id = Carrier.parse(party_id, "party_id").value
    else:
        party_id = parse_uscc(party_id, "party_id")
    if actor.role in (Role.CARRIER, Role.ENTERPRISE) and actor.subject != party_id:
        raise PermissionDenied("a company registers only its own endpoint", field="party_id")
    if actor.role is Role.SUBSCRIBER:
        raise PermissionDenied("subscribers have no webhook endpoints", field="party_id")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput("an http(s) URL", field="url")
    secret = secret or _secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise InvalidInput("at least 16 characters", field="secret")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = WebhookEndpointRow(
            party_kind=party_kind, party_id=party_id, url=url, secret=secret, active=True, created_at=now
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="complaint.webhook_endpoint",
            subject_type="webhook_endpoint",
            subject=str(row.id),
            at=now,
            after={"party": f"{party_kind}:{party_id}", "url": url},
        )
        return row.id, secret


#: How long the old secret keeps signing after a rotation, so receivers can switch without a gap.
ROTATION_OVERLAP = timedelta(hours=24)


def _own_endpoint(session: Session, actor: Actor, endpoint_id: int) -> WebhookEndpointRow:
    row = session.get(WebhookEndpointRow, endpoint_id)
    if row is None or (actor.role in (Role.CARRIER, Role.ENTERPRISE) and actor.subject != row.party_id):
        raise NotFound(f"no webhook endpoint {endpoint_id}", field="id")
    if actor.role is Role.SUBSCRIBER:
        raise PermissionDenied("subscribers have no webhook endpoints", field="id")
    return row


def rotate_endpoint_secret(rt: Runtime, actor: Actor, endpoint_id: int) -> str:
    """A new shared secret; the old one also signs for ``ROTATION_OVERLAP`` (two ``v1=`` values)."""
    now = rt.clock.now()
    secret = _secrets.token_urlsafe(32)
    with rt.sessions.begin() as session:
        row = _own_endpoint(session, actor, endpoint_id)
        row.previous_secret, row.previous_until, row.secret = row.secret, now + ROTATION_OVERLAP, secret
        audit.record(
            session,
            actor=actor,
            action="complaint.webhook_rotate",
            subject_type="webhook_endpoint",
            subject=str(endpoint_id),
            at=now,
            after={"previous_until": row.previous_until.isoformat()},
        )
    return secret


def set_endpoint_active(rt: Runtime, actor: Actor, endpoint_id: int, *, active: bool) -> None:
    """Pause or resume an endpoint; its deliveries wait (never dropped) while it is paused."""
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = _own_endpoint(session, actor, endpoint_id)
        before = {"active": row.active}
        row.active = active
        audit.record(
            session,
            actor=actor,
            action="complaint.webhook_active",
            subject_type="webhook_endpoint",
            subject=str(endpoint_id),
            at=now,
            before=before,
            after={"active": active},
        )


def deliver_webhooks(rt: Runtime, transport: webhooks.Transport, limit: int = 100) -> webhooks.DeliveryReport:
    return webhooks.deliver_due(rt.sessions, transport, rt.clock.now(), limit)
