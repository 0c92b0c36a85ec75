"""The role matrix: every route of the real app, called as anonymous and as each role.

The access a route admits is read from the route itself (``declared_access``: what its ``require``
dependency declares), so routes other packages add later are covered without touching this file.
A route without ``require`` is public: nobody may be refused by role there. A protected route must
answer 401 (with the RFC 7235 challenge) to anonymous callers, 403 ``field: "role"`` to every role it
does not declare, and must not refuse by role (nor fail with a 5xx) any role it declares.
"""

from __future__ import annotations

import re
from itertools import count
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient  # imported (warning silenced) by tests/integration/conftest.py

from quietline.accounts import actions
from quietline.api.auth import api_routes, require
from quietline.platform.actor import Actor
from quietline.platform.errors import PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from quietline.accounts.actions import IssuedSession


CALLERS: tuple[Role | None, ...] = (None, *Role)
_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
_numbers = count(1)


def _concrete(path: str) -> str:
    """Fill path parameters with a placeholder; auth runs before parameter validation."""
    return _PARAM.sub("1", path)


def _refused_by_role(status: int, body: object) -> bool:
    return status == 403 and isinstance(body, dict) and body.get("field") in ("role", "scope")


class _Callers:
    """Headers per caller; the subscriber signs in again whenever a route (logout) ended its session."""

    def __init__(self, runtime: Runtime, sign_in: Callable[..., IssuedSession], creds: Any) -> None:
        self.runtime = runtime
        self.sign_in = sign_in
        self.creds = creds
        self.token = creds.session_token

    def headers(self, caller: Role | None) -> dict[str, str]:
        if caller is not Role.SUBSCRIBER:
            return dict(self.creds.headers(caller))
        if actions.authenticate_session(self.runtime, self.token) is None:
            n = next(_numbers)
            self.token = self.sign_in(f"+86139{n:08d}", client=f"ip:matrix-{n}").token
        return {"Cookie": f"ql_session={self.token}"}


def _call(
    client: TestClient, callers: _Callers, method: str, path: str, caller: Role | None
) -> tuple[int, object, dict[str, str]]:
    headers = callers.headers(caller)
    kwargs: dict[str, object] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    try:
        body: object = response.json()
    except ValueError:
        body = response.text[:200]
    return response.status_code, body, dict(response.headers)


def role_matrix_failures(
    app: FastAPI,
    runtime: Runtime,
    sign_in: Callable[..., IssuedSession],
    creds: Any,
    only: Callable[[str], bool] = lambda _path: True,
) -> list[str]:
    failures: list[str] = []
    callers = _Callers(runtime, sign_in, creds)
    with TestClient(app, raise_server_exceptions=False) as client:
        for route in api_routes(app):
            if not only(route.path):
                continue
            access = route.access
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                path = _concrete(route.path)
                for caller in CALLERS:
                    who = caller.value if caller else "anonymous"
                    status, body, headers = _call(client, callers, method, path, caller)
                    where = f"{method} {route.path} as {who}: {status} {body}"
                    if status >= 500:
                        failures.append(f"server error: {where}")
                    elif access is None:
                        if status == 401 or _refused_by_role(status, body):
                            failures.append(f"public route refused a caller: {where}")
                    elif caller is None:
                        if status != 401 or "bearer" not in headers.get("www-authenticate", "").lower():
                            failures.append(f"anonymous not answered 401 with a challenge: {where}")
                    elif caller in access.roles:
                        if status == 401 or _refused_by_role(status, body):
                            failures.append(f"declared role refused ({access.describe()}): {where}")
                    elif not (status == 403 and isinstance(body, dict) and body.get("field") == "role"):
                        failures.append(f"undeclared role admitted ({access.describe()}): {where}")
    return failures


def test_every_route_admits_exactly_its_declared_roles(
    api_app: FastAPI, runtime: Runtime, subscriber_session: Callable[..., IssuedSession], credentials: Any
) -> None:
    failures = role_matrix_failures(api_app, runtime, subscriber_session, credentials)
    assert not failures, "\n".join(failures)


def test_the_walk_sees_the_accounts_routes_and_their_declarations(api_app: FastAPI) -> None:
    declared = {(method, r.path): r.access for r in api_routes(api_app) for method in r.methods}
    assert declared[("POST", "/v1/auth/otp")] is None
    assert declared[("GET", "/healthz")] is None
    keys = declared[("POST", "/v1/keys")]
    assert keys is not None
    assert keys.roles == {Role.OPERATOR}
    show = declared[("GET", "/v1/enterprises/{uscc}")]
    assert show is not None
    assert show.roles == {Role.OPERATOR, Role.REGULATOR, Role.ENTERPRISE}
    me = declared[("GET", "/v1/me")]
    assert me is not None
    assert me.roles == set(Role)


def test_every_api_route_states_who_may_call_it(api_app: FastAPI) -> None:
    routes = api_routes(api_app)
    assert len(routes) >= 10
    missing = [
        f"{sorted(r.methods)} {r.path}" for r in routes if r.path.startswith("/v1") and not r.summary.strip()
    ]
    assert not missing, f"routes without an OpenAPI summary saying who may call them: {missing}"


def test_matrix_catches_a_route_that_refuses_its_declared_role(
    api_app: FastAPI, runtime: Runtime, subscriber_session: Callable[..., IssuedSession], credentials: Any
) -> None:
    """The matrix can fail: a route added later that declares carrier but refuses it is reported,
    and so is a public route that refuses by role."""

    @api_app.get("/v1/zz-broken", summary="Broken on purpose (carrier)")
    def broken(actor: Actor = Depends(require(Role.CARRIER))) -> dict[str, str]:  # noqa: B008
        raise PermissionDenied("no", field="role")

    @api_app.get("/v1/zz-public-but-guarded", summary="Public but refuses (anyone)")
    def guarded() -> dict[str, str]:
        raise PermissionDenied("no", field="role")

    failures = role_matrix_failures(
        api_app, runtime, subscriber_session, credentials, only=lambda path: "zz-" in path or "logout" in path
    )
    assert any("declared role refused" in f and "/v1/zz-broken as carrier" in f for f in failures)
    assert any("public route refused" in f and "/v1/zz-public-but-guarded" in f for f in failures)
    assert all("zz-" in f for f in failures), failures
