"""What routes declare through ``require`` can be read back, through nested routers and prefixes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from quietline.api.auth import api_routes, require, require_scope
from quietline.platform.actor import Actor
from quietline.vocabulary import Role

CARRIER_OR_REGULATOR = Depends(require(Role.CARRIER, Role.REGULATOR))
REGULATOR_ONLY = Depends(require(Role.REGULATOR, Role.OPERATOR))


def _app() -> FastAPI:
    inner = APIRouter(prefix="/inner")

    @inner.get("/both", summary="two requires intersect (regulator)")
    def both(a: Actor = CARRIER_OR_REGULATOR, b: Actor = REGULATOR_ONLY) -> None:
        return None

    @inner.get("/scoped", summary="scoped (keys with x:read)")
    def scoped(a: Actor = Depends(require_scope("x:read"))) -> None:  # noqa: B008
        return None

    outer = APIRouter(prefix="/v1", dependencies=[Depends(require(Role.OPERATOR, Role.REGULATOR))])

    @outer.get("/guarded", summary="router-level require (operator, regulator)")
    def guarded() -> None:
        return None

    public = APIRouter(prefix="/v1")

    @public.get("/open", summary="public (anyone)")
    def open_() -> None:
        return None

    @public.get("/anyone-signed-in", summary="any role")
    def signed_in(a: Actor = Depends(require())) -> None:  # noqa: B008
        return None

    public.include_router(inner)
    app = FastAPI()
    app.include_router(public)
    app.include_router(outer)
    return app


def test_declarations_are_resolved_through_included_routers() -> None:
    found = {r.path: r for r in api_routes(_app())}
    assert set(found) >= {
        "/v1/open",
        "/v1/anyone-signed-in",
        "/v1/inner/both",
        "/v1/inner/scoped",
        "/v1/guarded",
    }
    assert found["/v1/open"].access is None
    signed_in = found["/v1/anyone-signed-in"].access
    assert signed_in is not None
    assert signed_in.roles == set(Role)
    both = found["/v1/inner/both"].access
    assert both is not None
    assert both.roles == {Role.REGULATOR}
    scoped = found["/v1/inner/scoped"].access
    assert scoped is not None
    assert (scoped.scope, Role.SUBSCRIBER in scoped.roles) == ("x:read", False)
    guarded = found["/v1/guarded"].access
    assert guarded is not None
    assert guarded.roles == {Role.OPERATOR, Role.REGULATOR}
    assert found["/v1/guarded"].summary == "router-level require (operator, regulator)"
    assert found["/v1/guarded"].methods == {"GET"}


def test_access_describes_itself_in_vocabulary_order() -> None:
    route = {r.path: r for r in api_routes(_app())}["/v1/inner/scoped"]
    assert route.access is not None
    assert route.access.describe() == "enterprise, carrier, regulator, operator (scope x:read)"
