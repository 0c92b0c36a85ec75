"""HTTP routes of the 12321 complaint centre. Thin: parse, call an action or a query, answer.

A subscriber reports from its own verified number (the session proves it: 12321 requires an
SMS-verified reporter) and sees only its own cases; a carrier or an enterprise sees the cases routed to
it (its inbox) and answers them; the complaint centre (operator) and the regulator see and steer all.
Webhooks of a forwarded case are posted right after the response (a background task); the outbox keeps
any that fail for ``quietline complaints scan``.
"""

from __future__ import annotations

import io
import threading
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, File, Request, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from quietline.api.auth import require
from quietline.complaints import actions, export, importer, queries, webhooks
from quietline.complaints.actions import Filing
from quietline.complaints.model import MAX_EVIDENCE_BYTES, LedgerHolder
from quietline.complaints.routing import NumbersResolver
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["complaints"])

Anyone = Annotated[Actor, Depends(require())]
Reporter = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.OPERATOR, Role.REGULATOR))]
Company = Annotated[Actor, Depends(require(Role.CARRIER, Role.ENTERPRISE))]
Responder = Annotated[Actor, Depends(require(Role.CARRIER, Role.ENTERPRISE, Role.OPERATOR, Role.REGULATOR))]
Centre = Annotated[Actor, Depends(require(Role.OPERATOR, Role.REGULATOR))]
Closer = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.OPERATOR, Role.REGULATOR))]
Subscriber = Annotated[Actor, Depends(require(Role.SUBSCRIBER))]
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]
EndpointOwner = Annotated[Actor, Depends(require(Role.CARRIER, Role.ENTERPRISE, Role.OPERATOR))]

#: Tests (and deployments with a proxy) may set ``app.state.complaints_webhook_transport``.
TRANSPORT_ATTR = "complaints_webhook_transport"
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def ledger_holder(session: Session, e164: str) -> LedgerHolder | None:
    """The enterprise whose line may present ``e164`` and the carrier providing that line (callerauth's
    caller-number ledger): 谁接入谁负责."""
    from quietline.callerauth.queries import lines_presenting

    rows = lines_presenting(session, e164.removeprefix("+"))
    if not rows:
        return None
    line = rows[0].line
    return LedgerHolder(enterprise=line.enterprise, connecting_carrier=line.carrier, name=line.name)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


_TRANSPORT_LOCK = threading.Lock()


def _transport(request: Request) -> webhooks.Transport:
    """One HTTP client per process, shared by every request (creating one costs more than a post)."""
    state = request.app.state
    transport: webhooks.Transport | None = getattr(state, TRANSPORT_ATTR, None)
    if transport is None:
        with _TRANSPORT_LOCK:
            transport = getattr(state, TRANSPORT_ATTR, None)
            if transport is None:
                transport = webhooks.HttpxTransport(timeout=5.0)
                setattr(state, TRANSPORT_ATTR, transport)
    return transport


def deliver_after_response(request: Request) -> None:
    """Post due webhooks right after a response (background task), on the API's shared HTTP client, so a
    forwarded case reaches its company at once; the worker's webhook job retries what fails."""
    actions.deliver_webhooks(_rt(request), _transport(request))


class ReportIn(BaseModel):
    reporter: str | None = Field(
        None, max_length=40, description="Operators and the regulator only; a subscriber reports as itself."
    )
    reported: str = Field(max_length=40, examples=["13012345678"])
    channel: str = Field(description="call or sms", examples=["call"])
    at: datetime = Field(description="When the call or SMS happened (ISO 8601 with offset).")
    received_at: datetime | None = Field(None, description="Operators' imports of past reports only.")
    duration_seconds: int | None = Field(None, ge=0, le=86_400)
    form: str | None = Field(None, description="live, recorded, bombing, one_ring (calls only).")
    category: str | None = None
    nature: str | None = None
    text: str | None = Field(None, max_length=2000, description="The SMS text (SMS only).")
    description: str | None = Field(None, max_length=2000)


class RespondIn(BaseModel):
    result: str = Field(description="substantiated or unsubstantiated")
    action: str = Field(max_length=2000, description="What was done, or why the report is not substantiated.")
    measure: str | None = Field(
        None, description="warned, line_restricted, number_suspended, system_block, other"
    )


class AnswerIn(BaseModel):
    text: str | None = Field(None, max_length=2000)


class AppealIn(BaseModel):
    text: str = Field(max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(max_length=500)


class ForwardIn(BaseModel):
    carrier: str
    company: str | None = Field(None, max_length=40)


class EndpointIn(BaseModel):
    party_kind: str = Field(description="carrier or enterprise")
    party_id: str | None = Field(None, description="Operators only; companies register their own.")
    url: str = Field(max_length=500)
    secret: str | None = Field(None, min_length=16, max_length=200)


def _as_json(view: queries.CaseView, actor: Actor | None = None) -> dict[str, Any]:
    """An enterprise sees a case about its number without the reporter's full number."""
    return view.as_dict(mask_reporter=actor is not None and actor.role is Role.ENTERPRISE)


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    summary="Report a call or an SMS (subscriber as itself; operator, regulator for anyone)",
)
def file_complaint(
    request: Request, body: ReportIn, actor: Reporter, background: BackgroundTasks
) -> dict[str, Any]:
    if actor.role is Role.SUBSCRIBER:
        if body.reporter is not None and body.reporter.strip() not in ("", actor.subject):
            raise InvalidInput("a subscriber reports from its own verified number", field="reporter")
        if body.received_at is not None:
            raise InvalidInput("only operators import past reports", field="received_at")
        reporter = actor.subject
    else:
        if not body.reporter:
            raise InvalidInput("name the reporter", field="reporter")
        reporter = body.reporter
    filing = Filing(
        reporter=reporter,
        reported=body.reported,
        channel=body.channel,
        at=body.at,
        received_at=body.received_at,
        duration_seconds=body.duration_seconds,
        form=body.form,
        category=body.category,
        nature=body.nature,
        text=body.text,
        description=body.description,
        source="api",
    )
    view = actions.file_report(_rt(request), actor, filing, resolver=NumbersResolver(ledger_holder))
    background.add_task(deliver_after_response, request)
    return _as_json(view, actor)


class SmsIn(BaseModel):
    sender: str = Field(max_length=40, description="The number that texted 12321.")
    body: str = Field(max_length=2000, description="被举报号码*短信内容")


@router.post(
    "/complaints/sms",
    status_code=status.HTTP_201_CREATED,
    summary="A report texted to 12321 as 号码*短信内容 (operator: the SMS gateway)",
)
def sms_intake(request: Request, body: SmsIn, actor: Operator, background: BackgroundTasks) -> dict[str, Any]:
    view = actions.file_sms_report(
        _rt(request), actor, sender=body.sender, body=body.body, resolver=NumbersResolver(ledger_holder)
    )
    background.add_task(deliver_after_response, request)
    return _as_json(view, actor)


@router.get(
    "/complaints/inbox", summary="The caller's open cases, nearest deadline first (carrier, enterprise)"
)
def inbox(request: Request, actor: Company) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return [_as_json(v, actor) for v in queries.inbox(session, actor.subject)]


@router.get("/me/complaints", summary="The caller's own complaints (subscriber)")
def my_complaints(request: Request, actor: Subscriber) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return [_as_json(v, actor) for v in queries.of_reporter(session, actor.subject)]


@router.get(
    "/complaints/breaches", summary="Breaches and due-soon warnings as of a moment (operator, regulator)"
)
def breaches(
    request: Request, actor: Centre, as_of: datetime | None = None, warnings: bool = False
) -> list[dict[str, Any]]:
    rt = _rt(request)
    moment = as_of or rt.clock.now()
    if moment.tzinfo is None:
        raise InvalidInput("as_of needs a time zone offset", field="as_of")
    with rt.sessions() as session:
        return [b.as_dict() for b in queries.breaches(session, moment, include_warnings=warnings)]


@router.get("/complaints/stats", summary="Cases by carrier and state (operator, regulator)")
def stats(request: Request, actor: Centre) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return queries.counts_by_company_and_state(session)


@router.get("/complaints/overview", summary="Time per stage, repeat offenders (operator, regulator)")
def overview(request: Request, actor: Centre, min_cases: int = 3) -> dict[str, Any]:
    with _rt(request).sessions() as session:
        return {
            "by_carrier_and_state": queries.counts_by_company_and_state(session),
            "stage_times": queries.stage_times(session),
            "repeat_offenders": queries.repeat_offenders(session, min_cases=max(min_cases, 1)),
        }


@router.get(
    "/complaints/export/{name}.{fmt}",
    summary="Export open, breaches, offenders, stats or stage_times as CSV or XLSX (operator, regulator)",
)
def export_list(request: Request, name: str, fmt: str, actor: Centre) -> Response:
    rt = _rt(request)
    with rt.sessions() as session:
        rows = export.list_rows(session, name, rt.clock.now())
    data, media_type = export.render(rows, fmt, name)
    return Response(
        data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    )


@router.get(
    "/complaints/{case_id}",
    summary="One case with deadlines and history (its reporter, its companies, operator, regulator)",
)
def show(request: Request, case_id: int, actor: Anyone) -> dict[str, Any]:
    with _rt(request).sessions() as session:
        view = queries.show_for(session, actor, case_id)
        history = [e.as_dict() for e in queries.history(session, case_id)]
        files = queries.evidence(session, case_id)
    if actor.role is Role.ENTERPRISE:  # the reported enterprise does not learn who reported it
        for entry in history:
            if entry["actor"].startswith(f"{Role.SUBSCRIBER.value}:"):
                entry["actor"] = (
                    f"{Role.SUBSCRIBER.value}:{queries.mask_number(entry['actor'].split(':', 1)[1])}"
                )
    return {**_as_json(view, actor), "evidence": files, "history": history}


@router.post(
    "/complaints/{case_id}/evidence",
    status_code=status.HTTP_201_CREATED,
    summary="Attach a screenshot, recording or PDF (its reporter, its company, operator, regulator)",
)
def attach_evidence(
    request: Request, case_id: int, actor: Anyone, file: UploadFile = File(...)
) -> dict[str, Any]:
    data = file.file.read(MAX_EVIDENCE_BYTES + 1)  # one byte more than allowed is enough to refuse
    return actions.attach_evidence(_rt(request), actor, case_id, filename=file.filename or "", data=data)


@router.get(
    "/complaints/{case_id}/evidence/{evidence_id}",
    summary="Download an evidence file (whoever may see the case)",
)
def get_evidence(request: Request, case_id: int, evidence_id: int, actor: Anyone) -> Response:
    with _rt(request).sessions() as session:
        row = queries.evidence_file(session, actor, case_id, evidence_id)
        data, media_type, name = row.data, row.content_type, row.filename
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",  # RFC 6266 / RFC 5987
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/complaints/{case_id}/respond",
    summary="Record verification and action (the responsible carrier or enterprise; operator, regulator)",
)
def respond(request: Request, case_id: int, body: RespondIn, actor: Responder) -> dict[str, Any]:
    view = actions.respond(
        _rt(request), actor, case_id, result=body.result, action=body.action, measure=body.measure
    )
    return _as_json(view, actor)


@router.post(
    "/complaints/{case_id}/answer", summary="Answer the reporter by SMS and portal (operator, regulator)"
)
def answer(request: Request, case_id: int, body: AnswerIn, actor: Centre) -> dict[str, Any]:
    return _as_json(actions.answer(_rt(request), actor, case_id, body.text), actor)


@router.post(
    "/complaints/{case_id}/appeal",
    summary="Appeal within the window: reopens with a new clock (the reporter; operator, regulator)",
)
def appeal(
    request: Request, case_id: int, body: AppealIn, actor: Closer, background: BackgroundTasks
) -> dict[str, Any]:
    view = actions.appeal(_rt(request), actor, case_id, body.text)
    background.add_task(deliver_after_response, request)
    return _as_json(view, actor)


@router.post(
    "/complaints/{case_id}/close", summary="Close an answered case (the reporter; operator, regulator)"
)
def close(request: Request, case_id: int, actor: Closer) -> dict[str, Any]:
    return _as_json(actions.close(_rt(request), actor, case_id), actor)


@router.post("/complaints/{case_id}/reject", summary="Reject a report (operator, regulator)")
def reject(request: Request, case_id: int, body: RejectIn, actor: Centre) -> dict[str, Any]:
    return _as_json(actions.reject(_rt(request), actor, case_id, body.reason), actor)


@router.post(
    "/complaints/{case_id}/forward", summary="Forward an unrouted case by hand (operator, regulator)"
)
def forward(
    request: Request, case_id: int, body: ForwardIn, actor: Centre, background: BackgroundTasks
) -> dict[str, Any]:
    view = actions.forward(_rt(request), actor, case_id, carrier=body.carrier, company=body.company)
    background.add_task(deliver_after_response, request)
    return _as_json(view, actor)


@router.post(
    "/complaints/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint, secret shown once (carrier, enterprise for itself; operator)",
)
def register_webhook(request: Request, body: EndpointIn, actor: EndpointOwner) -> dict[str, Any]:
    party_id = body.party_id if actor.role is Role.OPERATOR else actor.subject
    if not party_id:
        raise InvalidInput("operators name the party", field="party_id")
    endpoint_id, secret = actions.register_endpoint(
        _rt(request), actor, party_kind=body.party_kind, party_id=party_id, url=body.url, secret=body.secret
    )
    return {
        "id": endpoint_id,
        "secret": secret,
        "signature": "v1=HMAC-SHA256(secret, timestamp + '.' + body)",
    }


@router.get(
    "/complaints/webhooks/deliveries",
    summary="Webhook deliveries, newest first: own (carrier, enterprise) or all (operator)",
)
def webhook_deliveries(
    request: Request, actor: EndpointOwner, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    party = None if actor.role is Role.OPERATOR else actor.subject
    with _rt(request).sessions() as session:
        return queries.webhook_deliveries(session, status, max(1, min(limit, 1000)), party)


@router.post(
    "/complaints/webhooks/{endpoint_id}/rotate",
    summary="New shared secret; the old one signs too for 24 h (carrier, enterprise for its own; operator)",
)
def rotate_webhook_secret(request: Request, endpoint_id: int, actor: EndpointOwner) -> dict[str, Any]:
    return {"id": endpoint_id, "secret": actions.rotate_endpoint_secret(_rt(request), actor, endpoint_id)}


class EndpointStateIn(BaseModel):
    active: bool


@router.post(
    "/complaints/webhooks/{endpoint_id}/state",
    summary="Pause or resume deliveries; nothing is dropped (carrier, enterprise for its own; operator)",
)
def set_webhook_state(
    request: Request, endpoint_id: int, body: EndpointStateIn, actor: EndpointOwner
) -> dict[str, Any]:
    actions.set_endpoint_active(_rt(request), actor, endpoint_id, active=body.active)
    return {"id": endpoint_id, "active": body.active}


@router.post(
    "/complaints/import",
    summary="Import past reports from CSV; bad rows come back by line and field (operator)",
)
def import_reports(request: Request, actor: Operator, file: UploadFile = File(...)) -> dict[str, Any]:
    raw = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB per file", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    result = importer.import_rows(
        _rt(request), actor, io.StringIO(text, newline=""), resolver=NumbersResolver(ledger_holder)
    )
    return result.as_dict()
