"""Staff sign-in for the portal, and the helpers every staff page uses.

Carriers, enterprises, the regulator and the 12321 operator sign in by pasting their API key at
``/staff/login``. The key is checked like any API request, then the server opens a *staff session*
(``accounts.actions.open_staff_session``: only an HMAC of its token is stored, it is bound to the key so
revoking the key ends it, it expires when idle and after a working day, login and logout are audited)
and sets the ``ql_staff`` cookie: HttpOnly, SameSite=Lax (a cross-site form cannot post with it),
distinct from the subscriber's ``ql_session``. The key itself never goes into a cookie.

Building a staff page on top of this module (your own router, included next to ``staff.router`` in
``api/app.py``)::

    from quietline.web import staff

    router = APIRouter(include_in_schema=False)

    @router.get("/staff/traffic", response_class=HTMLResponse)
    def traffic_report(request: Request) -> Response:
        actor = staff.staff_actor(request, Role.CARRIER)
        if isinstance(actor, Response):
            return actor  # not signed in → login page (and back here after); another role → 403 page
        return staff.render(request, "staff_traffic.html", actor, rows=...)

    staff.add_nav("/staff/traffic", "异常话务", Role.CARRIER)  # at import: a link in the staff nav

Templates extend ``staff_base.html`` and fill ``{% block content %}``. ``api.auth`` also accepts the
staff cookie, so ``require(...)`` admits a signed-in staff member on JSON routes (without the key's
scopes: scoped routes stay for API keys).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quietline.accounts import actions as accounts
from quietline.accounts.model import SESSION_COOKIE, STAFF_SESSION_COOKIE
from quietline.api.auth import client_id, current_actor
from quietline.platform.actor import Actor
from quietline.platform.errors import QuietlineError, RateLimited
from quietline.vocabulary import Carrier, Role, VocabularyError
from quietline.web.portal import templates
from quietline.web.requests import runtime_of

#: Roles that sign in with an API key (subscribers use their one-time SMS code instead).
STAFF_ROLES = (Role.CARRIER, Role.ENTERPRISE, Role.REGULATOR, Role.OPERATOR)
LOGIN_PATH = "/staff/login"
HOME_PATH = "/staff"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class NavLink:
    path: str
    label: str
    roles: frozenset[Role]


_NAV: list[NavLink] = []


def add_nav(path: str, label: str, *roles: Role) -> None:
    """Show a link in the staff navigation bar to the given roles (every staff role when none given).
    Idempotent, so a module imported twice does not add its link twice."""
    link = NavLink(path, label, frozenset(roles or STAFF_ROLES))
    if all(existing.path != path for existing in _NAV):
        _NAV.append(link)


def nav_for(actor: Actor) -> list[NavLink]:
    return [link for link in _NAV if actor.role in link.roles]


def signed_in_staff(request: Request) -> Actor | None:
    """The signed-in staff member (staff session cookie, or an API key sent as a Bearer header), or
    None. A subscriber session is not staff."""
    actor = current_actor(request)
    return actor if actor is not None and actor.role in STAFF_ROLES else None


def _safe_next(target: str) -> str:
    """Only a staff page of this site may be the page to return to after login (no open redirect)."""
    if target.startswith("/staff") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME_PATH


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login form, which returns to the requested page after a successful login."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(_safe_next(here), safe='/')}", status_code=303)


def who(actor: Actor) -> str:
    """How a staff member is named on pages: role and subject, carriers by their Chinese name."""
    subject = actor.subject
    if actor.role is Role.CARRIER:
        with suppress(VocabularyError):  # a resale operator (resale:<code>) is shown by its code
            subject = Carrier.parse(subject).label
    return f"{actor.role.label} · {subject}"


def render(
    request: Request, name: str, actor: Actor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a staff template (``staff_base.html`` provides the staff navigation)."""
    context.setdefault("error", None)
    context.setdefault("notice", None)
    context.setdefault("errors", {})  # field → message, shown next to the field
    context["staff"] = actor
    context["staff_name"] = who(actor) if actor is not None else ""
    context["staff_nav"] = nav_for(actor) if actor is not None else []
    context["actor"] = None  # the subscriber navigation of base.html stays hidden on staff pages
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def staff_actor(request: Request, *roles: Role) -> Actor | Response:
    """The signed-in staff member when its role is admitted (every staff role when none are given);
    otherwise the response to send: a redirect to the login page (not signed in, session expired or
    key revoked) or a 403 page in Chinese (signed in with another role)."""
    admitted = frozenset(roles or STAFF_ROLES)
    actor = signed_in_staff(request)
    if actor is None:
        return login_redirect(request)
    if actor.role not in admitted:
        names = "、".join(r.label for r in STAFF_ROLES if r in admitted)
        return render(request, "staff_denied.html", actor, status_code=403, error=f"此页面仅供{names}使用。")
    return actor


def _set_staff_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        STAFF_SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, next: str = HOME_PATH) -> Response:
    return render(request, "staff_login.html", signed_in_staff(request), next=_safe_next(next))


@router.post(LOGIN_PATH, response_class=HTMLResponse)
def login(request: Request, key: str = Form(""), next: str = Form(HOME_PATH)) -> Response:
    target = _safe_next(next)
    if not key.strip():
        return render(
            request,
            "staff_login.html",
            None,
            status_code=422,
            error="请粘贴您的 API 密钥。",
            field="key",
            next=target,
        )
    try:
        issued = accounts.open_staff_session(runtime_of(request), key.strip(), client=client_id(request))
    except RateLimited:
        return render(
            request,
            "staff_login.html",
            None,
            status_code=429,
            error="失败次数过多，请一小时后再试。",
            field="key",
            next=target,
        )
    except QuietlineError:
        # One message for every cause: a failed login must not reveal whether a key id exists.
        return render(
            request,
            "staff_login.html",
            None,
            status_code=401,
            error="API 密钥无效或已停用，请核对后重试。",
            field="key",
            next=target,
        )
    response = RedirectResponse(target, status_code=303)
    _set_staff_cookie(request, response, issued.token)
    # One identity per browser: a subscriber signed in here is signed out (session ended, cookie gone).
    subscriber_token = request.cookies.get(SESSION_COOKIE)
    subscriber = (
        accounts.authenticate_session(runtime_of(request), subscriber_token) if subscriber_token else None
    )
    if subscriber is not None:
        accounts.end_session(runtime_of(request), subscriber)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/staff/logout")
def logout(request: Request) -> Response:
    token = request.cookies.get(STAFF_SESSION_COOKIE)
    if token:
        accounts.end_staff_session(runtime_of(request), token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(STAFF_SESSION_COOKIE, path="/")
    return response


@router.get(HOME_PATH, response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The staff landing page: the first page of the navigation this role sees."""
    actor = staff_actor(request)
    if isinstance(actor, Response):
        return actor
    links = nav_for(actor)
    if links:
        return RedirectResponse(links[0].path, status_code=303)
    return render(request, "staff_denied.html", actor, notice="暂无可用的功能页面。")
