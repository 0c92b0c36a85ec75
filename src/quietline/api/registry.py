"""HTTP routes of the registry and the consent ledger. Thin: parse, call an action or a query, answer.

No route answers "is this number registered?" for a number the caller has not proved it owns: a
subscriber sees its own number only, an enterprise its own consent records, operators and regulators
whatever their role allows (and every write is audited with the caller as actor).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quietline.api.auth import require
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime
from quietline.registry import actions, queries
from quietline.registry.model import EntryKind, ListName
from quietline.vocabulary import Category, Role, parse_category_or_all, parse_channels

router = APIRouter(prefix="/v1", tags=["registry"])


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Subscriber = Annotated[Actor, Depends(require(Role.SUBSCRIBER))]
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]
OperatorOrRegulator = Annotated[Actor, Depends(require(Role.OPERATOR, Role.REGULATOR))]
EnterpriseOrOperator = Annotated[Actor, Depends(require(Role.ENTERPRISE, Role.OPERATOR))]
ListKeeper = Annotated[Actor, Depends(require(Role.CARRIER, Role.OPERATOR, Role.REGULATOR))]


class RefusalIn(BaseModel):
    category: str = Field(description="Category code or Chinese label, or 'all'.", examples=["loan_finance"])
    channel: str = Field("both", description="call, sms or both.")


class RefusalsIn(BaseModel):
    refusals: list[RefusalIn] = Field(max_length=64)
    valid_until: datetime | None = None


class ListEntryIn(BaseModel):
    kind: EntryKind
    value: str = Field("", max_length=40)
    note: str | None = Field(None, max_length=100)


class ConsentIn(BaseModel):
    number: str = Field(max_length=40)
    category: str
    channel: str = "both"
    evidence_ref: str | None = Field(None, max_length=200)
    evidence_text: str | None = Field(None, max_length=20_000)
    consent_text_version: str | None = Field(None, max_length=64)
    granted_at: datetime | None = None
    enterprise: str | None = Field(None, description="Operators only: the enterprise the consent belongs to.")


class ConsentRevokeIn(BaseModel):
    number: str = Field(max_length=40)
    category: str
    channel: str = "both"
    enterprise: str | None = None


class SubscriberRevokeIn(BaseModel):
    enterprise: str = Field(max_length=18)
    category: str
    channel: str = "both"


class SystemListIn(BaseModel):
    number: str = Field(max_length=40)
    active: bool = True
    reason: str = Field(max_length=200)


def _wanted(items: list[RefusalIn]) -> list[tuple[Category | None, Any]]:
    wanted = []
    for i, item in enumerate(items):
        category = parse_category_or_all(item.category, field=f"refusals.{i}.category")
        for channel in parse_channels(item.channel, field=f"refusals.{i}.channel"):
            wanted.append((category, channel))
    return wanted


@router.get("/me/preferences", summary="The caller's own refusals, lists and consents (subscriber)")
def my_preferences(request: Request, actor: Subscriber) -> dict[str, Any]:
    rt = _rt(request)
    with rt.sessions() as session:
        return queries.show(session, actor.subject, rt.clock.now())


@router.put("/me/refusals", summary="Replace the caller's refusals with this set (subscriber)")
def put_my_refusals(request: Request, body: RefusalsIn, actor: Subscriber) -> dict[str, Any]:
    rt = _rt(request)
    number = parse(actor.subject)
    changes = actions.set_refusals(rt, actor, number, _wanted(body.refusals), valid_until=body.valid_until)
    with rt.sessions() as session:
        return {"changes": changes, **queries.show(session, number.e164, rt.clock.now())}


@router.post(
    "/me/lists/{list_name}", status_code=status.HTTP_201_CREATED, summary="Add to own list (subscriber)"
)
def add_my_list_entry(
    request: Request, list_name: ListName, body: ListEntryIn, actor: Subscriber
) -> dict[str, str]:
    stored = actions.add_list_entry(
        _rt(request), actor, parse(actor.subject), list_name, body.kind, body.value, body.note
    )
    return {"list": list_name.value, "kind": body.kind.value, "value": stored}


@router.delete("/me/lists/{list_name}", summary="Remove from own list (subscriber)")
def remove_my_list_entry(
    request: Request, list_name: ListName, kind: EntryKind, actor: Subscriber, value: str = ""
) -> dict[str, str]:
    actions.remove_list_entry(_rt(request), actor, parse(actor.subject), list_name, kind, value)
    return {"removed": value or kind.value}


@router.get("/me/history", summary="The caller's own change history (subscriber)")
def my_history(request: Request, actor: Subscriber) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return [e.as_dict() for e in queries.history(session, actor.subject)]


@router.get("/me/consents", summary="Consents the caller has given (subscriber)")
def my_consents(request: Request, actor: Subscriber) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return [c.as_dict() for c in queries.consents_of_number(session, actor.subject)]


@router.post("/me/consents/revoke", summary="Withdraw a consent the caller gave (subscriber)")
def revoke_my_consent(request: Request, body: SubscriberRevokeIn, actor: Subscriber) -> dict[str, int]:
    closed = actions.revoke_consent(
        _rt(request),
        actor,
        enterprise=body.enterprise.strip().upper(),
        number=parse(actor.subject),
        category=Category.parse(body.category),
        channels=parse_channels(body.channel),
    )
    return {"revoked": closed}


@router.get("/registry/{number}", summary="Everything held about a number (operator, regulator)")
def registry_show(request: Request, number: str, actor: OperatorOrRegulator) -> dict[str, Any]:
    rt = _rt(request)
    phone = parse(number)
    with rt.sessions() as session:
        return queries.show(session, phone.e164, rt.clock.now())


@router.put("/registry/{number}/refusals", summary="Set a number's refusals on its owner's behalf (operator)")
def registry_set_refusals(request: Request, number: str, body: RefusalsIn, actor: Operator) -> dict[str, Any]:
    changes = actions.set_refusals(
        _rt(request), actor, parse(number), _wanted(body.refusals), valid_until=body.valid_until, source="api"
    )
    return {"changes": changes}


def _enterprise_for(actor: Actor, given: str | None) -> str:
    if actor.role is Role.ENTERPRISE:
        if given and given.strip().upper() != actor.subject:
            raise InvalidInput("an enterprise acts only in its own name", field="enterprise")
        return actor.subject
    if not given:
        raise InvalidInput("operators must name the enterprise", field="enterprise")
    return given.strip().upper()


@router.post(
    "/consents", status_code=status.HTTP_201_CREATED, summary="Record a consent (enterprise, operator)"
)
def grant_consent(request: Request, body: ConsentIn, actor: EnterpriseOrOperator) -> list[dict[str, Any]]:
    states = actions.grant_consent(
        _rt(request),
        actor,
        enterprise=_enterprise_for(actor, body.enterprise),
        number=parse(body.number),
        category=Category.parse(body.category),
        channels=parse_channels(body.channel),
        evidence_ref=body.evidence_ref,
        evidence_text=body.evidence_text,
        consent_text_version=body.consent_text_version,
        granted_at=body.granted_at,
    )
    return [s.as_dict() for s in states]


@router.post("/consents/revoke", summary="Record a withdrawal of consent (enterprise, operator)")
def revoke_consent(request: Request, body: ConsentRevokeIn, actor: EnterpriseOrOperator) -> dict[str, int]:
    closed = actions.revoke_consent(
        _rt(request),
        actor,
        enterprise=_enterprise_for(actor, body.enterprise),
        number=parse(body.number),
        category=Category.parse(body.category),
        channels=parse_channels(body.channel),
    )
    return {"revoked": closed}


@router.get("/consents/export.csv", summary="Consent records as CSV: own (enterprise) or any (operator)")
def export_consents(request: Request, actor: EnterpriseOrOperator, enterprise: str | None = None) -> Response:
    scope = (
        actor.subject
        if actor.role is Role.ENTERPRISE
        else (enterprise.strip().upper() if enterprise else None)
    )
    if actor.role is Role.ENTERPRISE and enterprise and enterprise.strip().upper() != actor.subject:
        raise InvalidInput("an enterprise exports only its own records", field="enterprise")
    buffer = io.StringIO()
    with _rt(request).sessions() as session:
        queries.export_consents(session, buffer, scope)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="consents.csv"'},
    )


@router.post(
    "/system-lists/{list_name}", summary="Add to or remove from a system list (carrier, regulator, operator)"
)
def system_list(
    request: Request, list_name: ListName, body: SystemListIn, actor: ListKeeper
) -> dict[str, Any]:
    phone = parse(body.number)
    actions.set_system_list(_rt(request), actor, list_name, phone, active=body.active, reason=body.reason)
    return {"list": list_name.value, "number": phone.e164, "active": body.active}
