"""HTTP routes of caller authentication. Thin: parse, call the verifier, a check, an action or a
query, answer. Carriers (and operators) verify and keep the ledger; regulators may read it; an
enterprise reads only its own lines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from quietline.api.auth import require
from quietline.callerauth import actions, model, queries
from quietline.callerauth.certs import (
    CertificateFetchError,
    LocalCertificateStore,
    TrustStore,
    UntrustedCertificate,
    load_certificates,
)
from quietline.callerauth.service import Call, CallerAuthentication
from quietline.callerauth.tn import canonical_tn
from quietline.callerauth.verify import Verifier
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1/callerauth", tags=["callerauth"])

Keeper = Annotated[Actor, Depends(require(Role.CARRIER, Role.OPERATOR))]
Reader = Annotated[Actor, Depends(require(Role.CARRIER, Role.OPERATOR, Role.REGULATOR, Role.ENTERPRISE))]


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class VerifyIn(BaseModel):
    identity_header: str | None = Field(None, max_length=8192, description="SIP Identity header value.")
    identity_headers: list[str] | None = Field(
        None,
        max_length=8,
        description="Every Identity header of a forwarded call (SHAKEN and div, RFC 8946).",
    )
    passport: str | None = Field(None, max_length=8192, description="A bare compact PASSporT.")
    certificate_pem: str = Field(max_length=65536, description="The signer's certificate chain (PEM).")
    trust_pem: list[str] = Field(default_factory=list, max_length=16, description="Trusted STI-CA roots.")
    crl_pem: list[str] = Field(default_factory=list, max_length=16)
    orig: str | None = Field(None, max_length=40)
    dest: str | None = Field(None, max_length=40)
    now: int | None = Field(
        None,
        ge=0,
        le=253_402_300_799,
        description="Verification time (epoch seconds); default the server's clock.",
    )


def _verifier(certificate_pem: str, trust_pem: list[str], crl_pem: list[str]) -> Verifier:
    """A verifier on supplied certificates: the API does not dereference caller-chosen URLs."""
    try:
        store = LocalCertificateStore()
        store.serve_for_any_url(load_certificates(certificate_pem.encode()))
        trust = None
        if trust_pem:
            trust = TrustStore(load_certificates("".join(trust_pem).encode()))
            for crl in crl_pem:
                trust.add_crl_bytes(crl.encode())
    except (CertificateFetchError, UntrustedCertificate) as exc:
        raise InvalidInput(str(exc), field="certificate_pem") from exc
    return Verifier(store, trust, require_tn_auth_list=trust is not None)  # as the CLI


@router.post("/verify", summary="Verify a PASSporT or Identity header (carrier, operator)")
def verify(body: VerifyIn, request: Request, _actor: Keeper) -> dict[str, Any]:
    """The certificate is supplied, not fetched: the API does not dereference caller-chosen URLs."""
    given = [x for x in (body.identity_header, body.identity_headers, body.passport) if x is not None]
    if len(given) != 1:
        raise InvalidInput(
            "give exactly one of identity_header, identity_headers or passport", field="identity_header"
        )
    verifier = _verifier(body.certificate_pem, body.trust_pem, body.crl_pem)
    now = _rt(request).clock.now() if body.now is None else body.now
    if body.identity_header is not None:
        verdict = verifier.verify_identity(body.identity_header, now=now, orig=body.orig, dest=body.dest)
    elif body.identity_headers is not None:
        verdict = verifier.verify_call(body.identity_headers, now=now, orig=body.orig, dest=body.dest)
    else:
        verdict = verifier.verify_token(body.passport or "", now=now, orig=body.orig, dest=body.dest)
    return verdict.as_dict()


class CheckIn(BaseModel):
    caller: str = Field(max_length=40)
    callee: str = Field(max_length=40)
    origin: str = Field(description="enterprise_line, domestic_interconnect or international_gateway.")
    line: str | None = Field(None, max_length=64)
    identity_headers: list[str] = Field(
        default_factory=list, max_length=8, description="The call's Identity headers, if it carried any."
    )
    certificate_pem: str | None = Field(None, max_length=65536, description="Needed with identity_headers.")
    trust_pem: list[str] = Field(default_factory=list, max_length=16)
    now: int | None = Field(None, ge=0, le=253_402_300_799)


@router.post("/check", summary="The caller-authentication decision for a call (carrier, operator)")
def check(body: CheckIn, request: Request, _actor: Keeper) -> dict[str, Any]:
    """Presentation checks against the ledger, then the Identity headers when given: the verdict
    the screening engine would act on (block with ``caller_auth_failed``, warn, or allow)."""
    rt = _rt(request)
    with rt.sessions() as session:
        snapshot = queries.snapshot(session)
    origin = model.Origin.parse(body.origin, "origin")
    if body.identity_headers and body.certificate_pem is None:
        raise InvalidInput(
            "identity_headers need certificate_pem (the API fetches nothing)", field="certificate_pem"
        )
    verifier = _verifier(body.certificate_pem or "", body.trust_pem, []) if body.identity_headers else None
    screened = CallerAuthentication(verifier or Verifier(LocalCertificateStore(), None), snapshot, 0).screen(
        Call(body.caller, body.callee, origin, body.line, tuple(body.identity_headers)),
        now=rt.clock.now() if body.now is None else body.now,
    )
    out: dict[str, Any] = screened.as_dict()
    try:
        caller_tn = canonical_tn(body.caller, "caller")
    except InvalidInput:
        return out  # a caller ID that is no number gets no attestation
    attestation = model.decide_attestation(snapshot, body.line, caller_tn)
    out["attest"] = attestation.level.value
    out["attest_reason"] = attestation.reason
    return out


@router.get(
    "/ledger", summary="The caller-number ledger (carrier, operator, regulator; an enterprise its own)"
)
def ledger(
    request: Request, actor: Reader, line: str | None = None, enterprise: str | None = None
) -> list[dict[str, Any]]:
    if actor.role is Role.ENTERPRISE:
        enterprise = actor.subject
    with _rt(request).sessions() as session:
        return [r.as_dict() for r in queries.ledger(session, line=line, enterprise=enterprise)]


class LineIn(BaseModel):
    code: str = Field(max_length=64)
    enterprise: str = Field(max_length=32, description="Unified social credit code.")
    name: str = Field(max_length=120)
    kind: str = Field(description="service_number, toll_free, voice_private_line, call_centre, sip_trunk.")
    carrier: str | None = Field(
        None, max_length=40, description="Operators name the carrier; a carrier is itself."
    )


@router.post("/ledger/lines", status_code=201, summary="Register an enterprise line (carrier, operator)")
def add_line(body: LineIn, request: Request, actor: Keeper) -> dict[str, str]:
    actions.register_line(
        _rt(request),
        actor,
        code=body.code,
        enterprise=body.enterprise,
        name=body.name,
        kind=body.kind,
        carrier=body.carrier,
    )
    return {"line": body.code}


class UndertakingIn(BaseModel):
    reference: str = Field(max_length=120)
    signed_on: str = Field(description="YYYY-MM-DD")
    signatory: str = Field(max_length=120)


class NumberIn(BaseModel):
    number: str = Field(max_length=40)
    purpose: str
    undertaking: UndertakingIn | None = Field(None, description="The outbound undertaking (承诺书).")


@router.put("/ledger/lines/{line}/numbers", summary="Let a line present a number (carrier, operator)")
def put_number(line: str, body: NumberIn, request: Request, actor: Keeper) -> dict[str, Any]:
    u = body.undertaking
    undertaking = None if u is None else actions.parse_undertaking(u.reference, u.signed_on, u.signatory)
    changed = actions.assign_number(
        _rt(request), actor, line=line, number=body.number, purpose=body.purpose, undertaking=undertaking
    )
    return {"line": line, "changed": changed, "direction": "outbound" if undertaking else "inbound"}


@router.delete("/ledger/lines/{line}/numbers/{number}", status_code=204, summary="Take a number off a line")
def delete_number(line: str, number: str, request: Request, actor: Keeper) -> Response:
    actions.remove_number(_rt(request), actor, line=line, number=number)
    return Response(status_code=204)


@router.get("/ledger.csv", summary="Export the ledger as CSV (carrier, operator, regulator)")
def export_csv(request: Request, actor: Reader) -> Response:
    enterprise = actor.subject if actor.role is Role.ENTERPRISE else None
    with _rt(request).sessions() as session:
        text = queries.export_csv(session, enterprise=enterprise)
    return Response(text, media_type="text/csv; charset=utf-8")


@router.post("/ledger.csv", summary="Import a ledger CSV, all rows or none (carrier, operator)")
async def import_csv(request: Request, actor: Keeper) -> dict[str, int]:
    raw = await request.body()
    if len(raw) > 20 * 1024 * 1024:
        raise InvalidInput("the file is larger than 20 MiB; split it", field="csv")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the CSV must be UTF-8", field="csv") from exc
    result = await run_in_threadpool(actions.import_csv, _rt(request), actor, text)
    return result.as_dict()
