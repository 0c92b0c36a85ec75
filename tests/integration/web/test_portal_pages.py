"""Portal pages over the real app: login required, validity periods, bad input shown in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from quietline.platform.runtime import Runtime
from quietline.registry import queries
from quietline.vocabulary import Role


def test_pages_need_a_signed_in_subscriber(api_client: TestClient) -> None:
    for path in ("/me", "/me/lists", "/me/history"):
        r = api_client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_refusal_with_a_validity_date_ends_that_day_china_time(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    me = credentials.headers(Role.SUBSCRIBER)
    r = api_client.post(
        "/me",
        data={"refuse_call": ["loan_finance", "all"], "valid_until": "2026-02-01"},
        headers=me,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with runtime.sessions() as session:
        states = queries.refusals(session, credentials.subscriber_number)
    assert {s.category for s in states} == {"loan_finance", "all"}
    assert {s.valid_until for s in states} == {datetime(2026, 2, 1, 16, 0, tzinfo=UTC)}


def test_bad_validity_date_is_named_in_chinese(api_client: TestClient, credentials: Any) -> None:
    r = api_client.post(
        "/me",
        data={"refuse_sms": ["insurance"], "valid_until": "next week"},
        headers=credentials.headers(Role.SUBSCRIBER),
    )
    assert r.status_code == 422 and "有效期格式" in r.text


def test_list_page_shows_numbers_as_dialled(api_client: TestClient, credentials: Any) -> None:
    me = credentials.headers(Role.SUBSCRIBER)
    r = api_client.post(
        "/me/lists", data={"list_name": "allow", "kind": "number", "value": "+86 10 12345678"}, headers=me
    )
    assert r.status_code == 200 and "01012345678" in r.text
    r = api_client.post("/me/lists", data={"list_name": "block", "kind": "prefix", "value": "9"}, headers=me)
    assert r.status_code == 422 and 'role="alert"' in r.text


def test_block_records_page_shows_what_was_blocked_and_why(
    api_client: TestClient, api_app: Any, credentials: Any, runtime: Runtime
) -> None:
    from quietline.numbers import parse
    from quietline.platform.actor import Actor
    from quietline.registry import actions
    from quietline.vocabulary import Channel

    carrier = credentials.headers(Role.CARRIER)
    params = {"caller": "13700137000", "callee": credentials.subscriber_number}
    assert (
        api_client.get("/v1/screen", params=params, headers=carrier).status_code == 200
    )  # starts the engine
    actions.refuse(
        runtime, Actor.operator("t"), parse(credentials.subscriber_number), [None], (Channel.CALL,)
    )
    engine = api_app.state.screening_engine
    engine.poll()
    r = api_client.get("/v1/screen", params={**params, "category": "insurance"}, headers=carrier)
    assert r.json()["decision"] == "block"
    engine.flush_blocks()
    page = api_client.get("/me/blocks", headers=credentials.headers(Role.SUBSCRIBER))
    assert page.status_code == 200
    assert "13700137000" in page.text and "保险推销" in page.text and "您已谢绝此类营销" in page.text
