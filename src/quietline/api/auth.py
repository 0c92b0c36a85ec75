"""Who is calling: API keys (``Authorization: Bearer ql_<id>_<secret>``), subscriber sessions
(the ``ql_session`` cookie) and staff portal sessions (the ``ql_staff`` cookie), and the
``require(*roles)`` dependency every protected route declares.

``require`` marks the dependency it returns with the roles (and scope) it admits, so the declared
access of every route can be read back from the app (``declared_access``): the role-matrix test walks
``app.routes`` with it, and routes other packages add later are covered without registering anything.

Usage::

    @router.get("/v1/things/{id}", summary="… (carrier, regulator)")
    def show(id: str, actor: Actor = Depends(require(Role.CARRIER, Role.REGULATOR))) -> …
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from quietline.accounts import actions
from quietline.accounts.model import SESSION_COOKIE, STAFF_SESSION_COOKIE
from quietline.platform.actor import Actor
from quietline.platform.errors import PermissionDenied, Unauthenticated
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

_ACCESS_ATTR = "__quietline_access__"
_STATE_ATTR = "quietline_identity"


@dataclass(frozen=True, slots=True)
class Access:
    """What a route admits: these roles, and (for API keys) this scope if set."""

    roles: frozenset[Role]
    scope: str | None = None

    def describe(self) -> str:
        names = ", ".join(r.value for r in Role if r in self.roles)
        return f"{names} (scope {self.scope})" if self.scope else names


@dataclass(frozen=True, slots=True)
class _Identity:
    actor: Actor | None
    scopes: frozenset[str]
    via_key: bool


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _identify(request: Request) -> _Identity:
    cached: _Identity | None = getattr(request.state, _STATE_ATTR, None)
    if cached is not None:
        return cached
    rt = _runtime(request)
    identity = _Identity(None, frozenset(), via_key=False)
    header = request.headers.get("authorization")
    if header is not None:
        # RFC 6750 §2.1: "Bearer" credentials in the Authorization header. A request that presents a
        # header is judged by it alone (a bad key never falls back to a cookie).
        scheme, _, value = header.strip().partition(" ")
        found = actions.authenticate_api_key(rt, value.strip()) if scheme.lower() == "bearer" else None
        if found is not None:
            identity = _Identity(found.actor, found.scopes, via_key=True)
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            actor = actions.authenticate_session(rt, token)
            if actor is not None:
                identity = _Identity(actor, frozenset(), via_key=False)
        staff_token = request.cookies.get(STAFF_SESSION_COOKIE)
        if identity.actor is None and staff_token:
            # A staff portal session (opened with an API key at /staff/login) acts as its key's role
            # and subject, without the key's scopes: scoped routes stay for API keys.
            staff = actions.authenticate_staff_session(rt, staff_token)
            if staff is not None:
                identity = _Identity(staff.actor, frozenset(), via_key=False)
    setattr(request.state, _STATE_ATTR, identity)
    return identity


def current_actor(request: Request) -> Actor | None:
    """The authenticated caller, or None (no credentials, or credentials that do not hold)."""
    return _identify(request).actor


def client_id(request: Request) -> str:
    """Whom per-client rate limits count: the API key when one authenticates, else the IP address."""
    identity = _identify(request)
    if identity.via_key and identity.actor is not None and identity.actor.key_id:
        return f"key:{identity.actor.key_id}"
    host = request.client.host if request.client else "unknown"
    return f"ip:{host}"


class NotSignedIn(Unauthenticated):
    """401 with ``WWW-Authenticate`` (RFC 7235 §3.1 requires the challenge on every 401)."""


def require(*roles: Role, scope: str | None = None) -> Callable[[Request], Actor]:
    """A FastAPI dependency admitting only the given roles (every role when none is given).

    No or invalid credentials → 401; an authenticated caller of another role → 403 with
    ``field: "role"``; an API key without ``scope`` → 403 with ``field: "scope"``. Subscriber
    sessions carry no scopes, so a scoped route admits only API keys.
    """
    access = Access(frozenset(roles) if roles else frozenset(Role), scope)

    def dependency(request: Request) -> Actor:
        identity = _identify(request)
        actor = identity.actor
        if actor is None:
            raise NotSignedIn(
                "sign in first: send 'Authorization: Bearer ql_<id>_<secret>' or the ql_session cookie "
                "(a revoked or expired credential counts as none)",
                field="authorization",
            )
        if actor.role not in access.roles:
            raise PermissionDenied(
                f"the {actor.role.value} role may not call this; it is for {access.describe()}", field="role"
            )
        if access.scope is not None and access.scope not in identity.scopes:
            raise PermissionDenied(f"this API key lacks the scope {access.scope!r}", field="scope")
        return actor

    setattr(dependency, _ACCESS_ATTR, access)
    dependency.__name__ = f"require_{'_'.join(sorted(r.value for r in access.roles))}"
    return dependency


def require_scope(scope: str, *roles: Role) -> Callable[[Request], Actor]:
    """``require`` for API keys holding ``scope`` (roles default to every role that uses keys)."""
    key_roles = roles or tuple(r for r in Role if r is not Role.SUBSCRIBER)
    return require(*key_roles, scope=scope)


def _walk(dependant: Dependant) -> Iterator[Callable[..., object]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _walk(sub)


class _HasDependant(Protocol):
    @property
    def dependant(self) -> Dependant: ...


def declared_access(route: _HasDependant) -> Access | None:
    """The access a route declares through ``require`` (None: public). Several ``require``
    dependencies on one route intersect, as they would at run time."""
    found: Access | None = None
    for call in _walk(route.dependant):
        access = getattr(call, _ACCESS_ATTR, None)
        if isinstance(access, Access):
            if found is None:
                found = access
            else:
                found = Access(found.roles & access.roles, found.scope or access.scope)
    return found


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """One API route as served (router prefixes and router-level dependencies applied)."""

    path: str
    methods: frozenset[str]
    summary: str
    access: Access | None


def api_routes(app: FastAPI) -> list[RouteAccess]:
    """Every API route of the app with the access it declares, including routes of included routers.

    FastAPI ≥ 0.120 keeps included routers as lazy ``_IncludedRouter`` entries in ``app.routes``;
    ``fastapi.routing.iter_route_contexts`` resolves them to the effective routes. Older versions
    copy the routes into ``app.routes`` directly.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI < 0.120: app.routes is already flat
        candidates: list[Any] = list(app.routes)
    else:
        candidates = list(iter_route_contexts(app.routes))
    found: list[RouteAccess] = []
    for candidate in candidates:
        original = getattr(candidate, "original_route", candidate)
        if not isinstance(original, APIRoute):
            continue
        found.append(
            RouteAccess(
                path=str(candidate.path),
                methods=frozenset(candidate.methods or ()),
                summary=str(candidate.summary or ""),
                access=declared_access(candidate),
            )
        )
    return found


def install(app: FastAPI) -> None:
    """Answer 401s with the RFC 7235 challenge header and the usual ``{error, field, message}`` body."""

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(_request: Request, exc: NotSignedIn) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={**exc.as_dict(), "error": "Unauthenticated"},
            headers={"WWW-Authenticate": 'Bearer realm="quietline"'},
        )
