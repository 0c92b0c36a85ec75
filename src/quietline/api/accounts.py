"""HTTP routes of accounts: subscriber sign-in by SMS code, enterprises and API keys.

Thin: each route parses its body, calls an action or query and shapes the answer. Every summary
says who may call the route; ``require`` enforces it and the role-matrix test checks it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from quietline.accounts import actions, queries
from quietline.accounts.model import SESSION_ABSOLUTE, SESSION_COOKIE, EnterpriseStatus
from quietline.api import auth
from quietline.api.auth import client_id, require
from quietline.platform.actor import Actor
from quietline.platform.errors import PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Category, Role

router = APIRouter(prefix="/v1", tags=["accounts"])


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class OtpRequest(BaseModel):
    number: str = Field(description="The mobile number to prove, in any usual spelling.", max_length=40)


class VerifyRequest(BaseModel):
    number: str = Field(max_length=40)
    code: str = Field(description="The six-digit code from the SMS.", max_length=20)


class EnterpriseCreate(BaseModel):
    uscc: str = Field(description="统一社会信用代码 (GB 32100-2015, 18 characters).", max_length=40)
    name: str = Field(max_length=400)
    categories: list[str] = Field(default_factory=list, description="Category codes or Chinese labels.")


class KeyCreate(BaseModel):
    role: str = Field(description="enterprise, carrier, regulator or operator")
    subject: str = Field(description="Enterprise USCC, carrier code, or regulator/operator name.")
    scopes: list[str] = Field(default_factory=list)
    label: str = Field(default="", max_length=400)


@router.post("/auth/otp", status_code=202, summary="Send a sign-in code by SMS (anyone)")
def send_code(body: OtpRequest, request: Request) -> dict[str, Any]:
    """The same answer whatever the number is registered for (no enumeration); limits answer 429."""
    sent = actions.request_code(
        _rt(request), body.number, client=client_id(request), actor=auth.current_actor(request)
    )
    return {"status": "sent", "expires_at": sent.expires_at.isoformat()}


@router.post("/auth/verify", summary="Exchange the SMS code for a subscriber session cookie (anyone)")
def verify(body: VerifyRequest, request: Request, response: Response) -> dict[str, str]:
    issued = actions.verify_code(_rt(request), body.number, body.code, client=client_id(request))
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(SESSION_ABSOLUTE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return {"number": issued.number, "expires_at": issued.expires_at.isoformat()}


@router.post("/auth/logout", status_code=204, summary="End the subscriber session (subscriber)")
def logout(request: Request, actor: Actor = Depends(require(Role.SUBSCRIBER))) -> Response:
    actions.end_session(_rt(request), actor)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", summary="Who am I (any signed-in role)")
def me(actor: Actor = Depends(require())) -> dict[str, Any]:
    return {"role": actor.role.value, "role_label": actor.role.label, "subject": actor.subject}


@router.post("/enterprises", status_code=201, summary="Register an enterprise (operator)")
def add_enterprise(
    body: EnterpriseCreate, request: Request, actor: Actor = Depends(require(Role.OPERATOR))
) -> dict[str, Any]:
    enterprise = actions.register_enterprise(
        _rt(request), actor, uscc=body.uscc, name=body.name, categories=body.categories
    )
    return enterprise.as_dict()


@router.get("/enterprises", summary="List enterprises (operator, regulator)")
def list_enterprises(
    request: Request,
    status: EnterpriseStatus | None = None,
    category: str | None = None,
    _actor: Actor = Depends(require(Role.OPERATOR, Role.REGULATOR)),
) -> list[dict[str, Any]]:
    cat = Category.parse(category, "category") if category else None
    with _rt(request).sessions() as session:
        return [e.as_dict() for e in queries.list_enterprises(session, status=status, category=cat)]


@router.get(
    "/enterprises/{uscc}", summary="Show an enterprise (operator, regulator, or that enterprise itself)"
)
def show_enterprise(
    uscc: str,
    request: Request,
    actor: Actor = Depends(require(Role.OPERATOR, Role.REGULATOR, Role.ENTERPRISE)),
) -> dict[str, Any]:
    with _rt(request).sessions() as session:
        if actor.role is Role.ENTERPRISE:
            code = queries.find_enterprise(session, uscc)
            if code is None or code.uscc != actor.subject:
                raise PermissionDenied("an enterprise may see only its own record", field="uscc")
        return queries.get_enterprise(session, uscc).as_dict()


class CategoriesUpdate(BaseModel):
    categories: list[str] = Field(description="The full new set: category codes or Chinese labels.")


class Suspension(BaseModel):
    reason: str = Field(min_length=1, max_length=400, description="Why (kept in the audit log).")


@router.put("/enterprises/{uscc}/categories", summary="Replace an enterprise's categories (operator)")
def set_categories(
    uscc: str, body: CategoriesUpdate, request: Request, actor: Actor = Depends(require(Role.OPERATOR))
) -> dict[str, Any]:
    return actions.update_enterprise_categories(_rt(request), actor, uscc, body.categories).as_dict()


@router.post(
    "/enterprises/{uscc}/suspend", summary="Suspend an enterprise; its API keys stop working (operator)"
)
def suspend(
    uscc: str, body: Suspension, request: Request, actor: Actor = Depends(require(Role.OPERATOR))
) -> dict[str, Any]:
    return actions.suspend_enterprise(_rt(request), actor, uscc, reason=body.reason).as_dict()


@router.post("/enterprises/{uscc}/reinstate", summary="Lift an enterprise's suspension (operator)")
def reinstate(uscc: str, request: Request, actor: Actor = Depends(require(Role.OPERATOR))) -> dict[str, Any]:
    return actions.reinstate_enterprise(_rt(request), actor, uscc).as_dict()


@router.post("/keys", status_code=201, summary="Create an API key; the secret is shown once (operator)")
def create_key(
    body: KeyCreate, request: Request, actor: Actor = Depends(require(Role.OPERATOR))
) -> dict[str, Any]:
    created = actions.create_api_key(
        _rt(request), actor, role=body.role, subject=body.subject, scopes=body.scopes, label=body.label
    )
    return created.as_dict()


@router.get("/keys", summary="List active API keys, never their secrets (operator)")
def list_keys(request: Request, _actor: Actor = Depends(require(Role.OPERATOR))) -> list[dict[str, Any]]:
    with _rt(request).sessions() as session:
        return [k.as_dict() for k in queries.list_api_keys(session)]


@router.delete("/keys/{key_id}", summary="Revoke an API key (operator)")
def revoke_key(
    key_id: str, request: Request, actor: Actor = Depends(require(Role.OPERATOR))
) -> dict[str, Any]:
    return actions.revoke_api_key(_rt(request), actor, key_id).as_dict()


def install(app: FastAPI) -> None:
    """Routes plus the 401 challenge handler (called once from ``api.routes.include_all``)."""
    auth.install(app)
    app.include_router(router)
