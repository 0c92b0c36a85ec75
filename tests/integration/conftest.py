"""API fixtures every package's integration tests can reuse.

``api_app``: the real application (every router, the portal) on the ``runtime`` fixture's fresh
SQLite database, fake clock and recording SMS sender. ``api_client``: a test client on it.
``credentials``: one API key per key role (enterprise, carrier, regulator, operator) plus a subscriber
session obtained through the real SMS-code flow, as request headers::

    def test_x(api_client, credentials):
        r = api_client.get("/v1/me", headers=credentials.headers(Role.CARRIER))
        assert credentials.actor(Role.ENTERPRISE).subject == credentials.enterprise_uscc
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient  # backed by httpx2 (dev extra), so no deprecation warning

from quietline.accounts import actions
from quietline.accounts.model import SESSION_COOKIE
from quietline.api.app import create_app
from quietline.api.auth import api_routes
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Carrier, Category, Role

#: A real, checksum-valid unified social credit code (the example of GB 32100-2015).
TEST_USCC = "91350100M000100Y43"
TEST_SUBSCRIBER = "+8613800138000"
#: Scopes every test key holds besides those the app's routes declare.
BASE_SCOPES = ("registry:read", "registry:write", "consent:read", "consent:write", "screen")


@dataclass
class Credentials:
    """Ready-made callers of every role (``None`` = anonymous)."""

    keys: dict[Role, str]
    session_token: str
    actors: dict[Role, Actor]
    enterprise_uscc: str = TEST_USCC
    subscriber_number: str = TEST_SUBSCRIBER
    scopes: tuple[str, ...] = field(default=())

    def headers(self, role: Role | None) -> dict[str, str]:
        if role is None:
            return {}
        if role is Role.SUBSCRIBER:
            return {"Cookie": f"{SESSION_COOKIE}={self.session_token}"}
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def actor(self, role: Role) -> Actor:
        return self.actors[role]


def declared_scopes(app: FastAPI) -> tuple[str, ...]:
    scopes = {r.access.scope for r in api_routes(app) if r.access and r.access.scope}
    return tuple(sorted(scopes))


def sign_in_subscriber(
    rt: Runtime, number: str = TEST_SUBSCRIBER, client: str = "ip:fixture"
) -> actions.IssuedSession:
    """Sign a subscriber in through the real code flow; needs the ``RecordingSmsSender``."""
    sms = rt.sms
    assert isinstance(sms, RecordingSmsSender), "subscriber_session reads the code from a RecordingSmsSender"
    sent = actions.request_code(rt, number, client=client)
    match = re.search(r"(\d{6})", sms.last_to(sent.number).text)
    assert match, "the SMS carries a six-digit code"
    return actions.verify_code(rt, number, match.group(1), client=client)


@pytest.fixture
def subscriber_session(runtime: Runtime) -> Callable[..., actions.IssuedSession]:
    """``subscriber_session(number="+8613900000001", client="ip:x")`` signs another subscriber in."""

    def make(number: str = TEST_SUBSCRIBER, client: str = "ip:fixture") -> actions.IssuedSession:
        return sign_in_subscriber(runtime, number, client)

    return make


@pytest.fixture
def api_app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def api_client(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app) as client:
        yield client


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port (a real HTTP server); yields its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.01)  # waiting for a socket, not testing time
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve_app() -> Callable[[FastAPI], AbstractContextManager[str]]:
    """``with serve_app(app) as base_url:`` for tests that build their own app (e.g. on PostgreSQL)."""
    return serve


@pytest.fixture
def live_server(api_app: FastAPI) -> Iterator[str]:
    """The real app behind a real HTTP server (uvicorn) on the ``runtime`` database."""
    with serve(api_app) as url:
        yield url


@pytest.fixture
def credentials(runtime: Runtime, api_app: FastAPI) -> Credentials:
    operator = Actor.operator("fixture")
    actions.register_enterprise(
        runtime, operator, uscc=TEST_USCC, name="测试营销有限公司", categories=[Category.INSURANCE.value]
    )
    scopes = tuple(sorted(set(BASE_SCOPES) | set(declared_scopes(api_app))))
    subjects = {
        Role.ENTERPRISE: TEST_USCC,
        Role.CARRIER: Carrier.CHINA_MOBILE.value,
        Role.REGULATOR: "工业和信息化部",
        Role.OPERATOR: "ops",
    }
    keys: dict[Role, str] = {}
    actors: dict[Role, Actor] = {}
    for role, subject in subjects.items():
        created = actions.create_api_key(
            runtime, operator, role=role, subject=subject, scopes=scopes, label=f"fixture {role.value}"
        )
        keys[role] = created.plaintext
        actors[role] = Actor(role, subject, key_id=created.key.id)
    issued = sign_in_subscriber(runtime)
    actors[Role.SUBSCRIBER] = issued.actor
    return Credentials(keys=keys, session_token=issued.token, actors=actors, scopes=scopes)
