"""Webhook delivery from the outbox to a real HTTP receiver: signatures verified on the receiver's side,
retries with backoff, idempotent redelivery after a lost acknowledgement, dead letters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from quietline.complaints import actions, webhooks
from quietline.complaints.actions import Filing
from quietline.complaints.orm import WebhookDeliveryRow
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime

OP = Actor.operator("test")


class ReceiverState:
    def __init__(self) -> None:
        self.secret = ""
        self.clock: FakeClock | None = None
        self.seen = webhooks.ProcessedDeliveries()
        self.handled: list[tuple[str, int]] = []
        self.delivery_ids: list[str] = []
        self.refused = 0
        #: Answer 500 this many times *after* processing (the acknowledgement is lost).
        self.lose_acks = 0
        #: Answer 503 this many times without processing (the receiver is down).
        self.down = 0


@pytest.fixture
def receiver() -> Iterator[tuple[str, ReceiverState]]:
    state = ReceiverState()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.down:
                state.down -= 1
                self._answer(503)
                return
            assert state.clock is not None
            try:
                delivery = webhooks.verify(
                    state.secret, dict(self.headers.items()), body, now=state.clock.now()
                )
            except webhooks.SignatureInvalid:
                state.refused += 1
                self._answer(401)
                return
            state.delivery_ids.append(delivery.delivery_id)
            state.seen.handle(delivery, lambda d: state.handled.append((d.event, d.payload["case"]["id"])))
            if state.lose_acks:
                state.lose_acks -= 1
                self._answer(500)
                return
            self._answer(204)

        def _answer(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep test output clean
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", state
    server.shutdown()
    server.server_close()


def _file(rt: Runtime) -> int:
    filing = Filing(
        reporter="13800138000",
        reported="13012345678",
        channel="call",
        at=rt.clock.now() - timedelta(hours=1),
        form="live",
    )
    return actions.file_report(rt, OP, filing).id


def _rows(rt: Runtime) -> list[WebhookDeliveryRow]:
    with rt.sessions() as session:
        return list(session.scalars(select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.created_at)))


def test_retry_backoff_and_idempotent_redelivery(
    any_runtime: Runtime, clock: FakeClock, receiver: tuple[str, ReceiverState]
) -> None:
    url, state = receiver
    state.clock = clock
    _, state.secret = actions.register_endpoint(
        any_runtime, OP, party_kind="carrier", party_id="china_unicom", url=url
    )
    case_id = _file(any_runtime)
    transport = webhooks.HttpxTransport(timeout=5)
    try:
        state.down = 1
        assert actions.deliver_webhooks(any_runtime, transport).as_dict() == {
            "delivered": 0,
            "retried": 1,
            "dead": 0,
        }
        [row] = _rows(any_runtime)
        assert (row.attempts, row.last_error) == (1, "HTTP 503")
        assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
        # Not due yet: nothing is posted.
        assert actions.deliver_webhooks(any_runtime, transport).as_dict() == {
            "delivered": 0,
            "retried": 0,
            "dead": 0,
        }
        clock.advance(seconds=31)
        state.lose_acks = 1  # processed, but the 2xx never arrives
        assert actions.deliver_webhooks(any_runtime, transport).retried == 1
        clock.advance(seconds=61)
        assert actions.deliver_webhooks(any_runtime, transport).delivered == 1
    finally:
        transport.close()
    [row] = _rows(any_runtime)
    assert (row.status, row.attempts) == ("delivered", 3)
    assert state.delivery_ids == [row.id, row.id]  # same delivery id on the redelivery
    assert state.handled == [("complaint.forwarded", case_id)]  # handled once
    assert state.refused == 0


def test_wrong_secret_is_refused_then_dead_lettered(
    runtime: Runtime, clock: FakeClock, receiver: tuple[str, ReceiverState]
) -> None:
    url, state = receiver
    state.clock = clock
    actions.register_endpoint(runtime, OP, party_kind="carrier", party_id="china_unicom", url=url)
    state.secret = "not-the-secret-the-sender-has"
    _file(runtime)
    transport = webhooks.HttpxTransport(timeout=5)
    try:
        for _ in range(webhooks.MAX_ATTEMPTS):
            actions.deliver_webhooks(runtime, transport)
            clock.advance(hours=2)
    finally:
        transport.close()
    [row] = _rows(runtime)
    assert (row.status, row.attempts, row.last_error) == ("dead", webhooks.MAX_ATTEMPTS, "HTTP 401")
    assert state.refused == webhooks.MAX_ATTEMPTS
    assert state.handled == []


def test_unreachable_receiver_is_retried_not_dropped(runtime: Runtime, clock: FakeClock) -> None:
    actions.register_endpoint(
        runtime, OP, party_kind="carrier", party_id="china_unicom", url="http://127.0.0.1:9/closed"
    )
    _file(runtime)
    transport = webhooks.HttpxTransport(timeout=2)
    try:
        report = actions.deliver_webhooks(runtime, transport)
    finally:
        transport.close()
    assert report.retried == 1
    [row] = _rows(runtime)
    assert row.status == "pending"
    assert row.last_error is not None
    assert "Connect" in row.last_error


class Capture:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts.append((headers, body))
        return 200


def test_secret_rotation_overlap_and_pause(runtime: Runtime, clock: FakeClock) -> None:
    endpoint_id, old = actions.register_endpoint(
        runtime, OP, party_kind="carrier", party_id="china_unicom", url="https://u.example/h"
    )
    new = actions.rotate_endpoint_secret(runtime, OP, endpoint_id)
    capture = Capture()
    _file(runtime)
    actions.deliver_webhooks(runtime, capture)
    headers, body = capture.posts[-1]
    for secret in (old, new):  # receivers on either secret accept during the overlap
        webhooks.verify(secret, headers, body, now=clock.now())
    clock.advance(hours=25)
    actions.set_endpoint_active(runtime, OP, endpoint_id, active=False)
    runtime_case = _file(runtime)
    assert actions.deliver_webhooks(runtime, capture).delivered == 0  # paused: waits, not dropped
    actions.set_endpoint_active(runtime, OP, endpoint_id, active=True)
    assert actions.deliver_webhooks(runtime, capture).delivered == 1
    headers, body = capture.posts[-1]
    assert webhooks.verify(new, headers, body, now=clock.now()).payload["case"]["id"] == runtime_case
    with pytest.raises(webhooks.SignatureInvalid):
        webhooks.verify(old, headers, body, now=clock.now())  # the overlap is over
    from quietline.platform.errors import NotFound
    from quietline.vocabulary import Role

    with pytest.raises(NotFound):  # another carrier cannot touch the endpoint
        actions.rotate_endpoint_secret(runtime, Actor(Role.CARRIER, "china_mobile"), endpoint_id)
