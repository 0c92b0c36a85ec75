"""The screening API: carriers only, the development switch, batches, 拦截记录, wash jobs, no enumeration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from quietline.api.app import create_app
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.registry import actions as registry
from quietline.screening.engine import ScreeningEngine
from quietline.vocabulary import Category, Channel, Role

OPERATOR = Actor.operator("test")
SUBSCRIBER = "+8613800138000"  # the credentials fixture's subscriber
CALLER = "13700137000"


def _engine(app: FastAPI) -> ScreeningEngine:
    engine: ScreeningEngine = app.state.screening_engine
    return engine


def _screen(client: TestClient, headers: dict[str, str], **params: str) -> Any:
    return client.get(
        "/v1/screen", params={"caller": CALLER, "callee": SUBSCRIBER, **params}, headers=headers
    )


def test_only_carriers_may_screen(api_client: TestClient, credentials: Any) -> None:
    assert _screen(api_client, {}).status_code == 401
    for role in (Role.SUBSCRIBER, Role.ENTERPRISE, Role.REGULATOR):
        r = _screen(api_client, credentials.headers(role))
        assert r.status_code == 403, role
        assert r.json()["field"] == "role"
    r = _screen(
        api_client,
        credentials.headers(Role.CARRIER),
        category="保险推销",
        enterprise=credentials.enterprise_uscc,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "block"
    assert body["reason"] == "no_consent"
    assert body["rule"].startswith("6.")
    assert "同意" in body["explanation"]


def test_bad_input_names_the_field(api_client: TestClient, credentials: Any) -> None:
    headers = credentials.headers(Role.CARRIER)
    for params, field in [
        ({"caller": "abc"}, "caller"),
        ({"callee": "12"}, "callee"),
        ({"channel": "fax"}, "channel"),
        ({"category": "lottery"}, "category"),
        ({"enterprise": "123"}, "enterprise"),
    ]:
        r = _screen(api_client, headers, **params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["field"] == field


def test_refusal_takes_effect_and_blocks_are_shown_to_the_subscriber(
    api_client: TestClient, api_app: FastAPI, credentials: Any, runtime: Runtime
) -> None:
    carrier = credentials.headers(Role.CARRIER)
    assert _screen(api_client, carrier).json()["reason"] == "default_allow"  # starts the engine
    registry.refuse(runtime, OPERATOR, parse(SUBSCRIBER), [None], (Channel.CALL,))
    _engine(api_app).poll()
    blocked = _screen(api_client, carrier, category="insurance")
    assert blocked.json()["reason"] == "refused_category"
    _engine(api_app).flush_blocks()
    mine = api_client.get("/v1/screen/blocks", headers=credentials.headers(Role.SUBSCRIBER))
    assert mine.status_code == 200
    records = mine.json()["records"]
    assert [r["reason"] for r in records] == ["refused_category"]
    assert records[0]["caller"] == "+8613700137000"
    assert records[0]["category_label"] == "保险推销"
    assert api_client.get("/v1/screen/blocks", headers=carrier).status_code == 403


def test_batch(api_client: TestClient, credentials: Any) -> None:
    carrier = credentials.headers(Role.CARRIER)
    body = {
        "category": "insurance",
        "pairs": [
            {"caller": CALLER, "callee": SUBSCRIBER},
            {"caller": "110", "callee": SUBSCRIBER},
            {"caller": CALLER, "callee": "13900139000", "category": None},
        ],
    }
    r = api_client.post("/v1/screen/batch", json=body, headers=carrier)
    assert r.status_code == 200, r.text
    assert [x["reason"] for x in r.json()["results"]] == ["no_consent", "never_block", "no_consent"]
    bad = api_client.post(
        "/v1/screen/batch",
        json={"pairs": [{"caller": CALLER, "callee": SUBSCRIBER}, {"caller": "x", "callee": "1"}]},
        headers=carrier,
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "pairs.1.caller"
    too_many = {"pairs": [{"caller": CALLER, "callee": SUBSCRIBER}] * 10_001}
    r = api_client.post("/v1/screen/batch", json=too_many, headers=carrier)
    assert r.status_code == 422
    assert r.json()["field"] == "pairs"
    assert (
        api_client.post(
            "/v1/screen/batch", json=body, headers=credentials.headers(Role.ENTERPRISE)
        ).status_code
        == 403
    )


def test_development_switch_opens_screening(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(
        env=Environment.DEVELOPMENT, database_url=sqlite_url, secret_key="dev", dev_open_screen=True
    )
    rt = Runtime.build(settings, clock=FakeClock(), sms=RecordingSmsSender())
    try:
        with TestClient(create_app(rt)) as client:
            r = client.get("/v1/screen", params={"caller": CALLER, "callee": SUBSCRIBER})
            assert r.status_code == 200
            assert r.json()["decision"] == "allow"
    finally:
        rt.close()
    with pytest.raises(ValueError, match="QUIETLINE_DEV_OPEN_SCREEN"):
        Settings(env=Environment.PRODUCTION, database_url=sqlite_url, dev_open_screen=True)


def _wait(client: TestClient, job: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(400):  # a background thread: wait for it, this is not testing time
        status = client.get(f"/v1/wash/{job}", headers=headers).json()
        if status["state"] in ("done", "failed"):
            return dict(status)
        time.sleep(0.025)
    raise AssertionError("wash job did not finish")


def test_wash_job_returns_only_callable_numbers_of_the_upload_and_never_enumerates(
    api_client: TestClient, credentials: Any, runtime: Runtime, clock: FakeClock
) -> None:
    uscc = credentials.enterprise_uscc
    enterprise = credentials.headers(Role.ENTERPRISE)
    registered, unregistered, consented = parse("13900139001"), parse("13900139002"), parse("13900139003")
    registry.refuse(runtime, OPERATOR, registered, [Category.INSURANCE], (Channel.CALL,))
    clock.advance(minutes=1)
    registry.grant_consent(
        runtime,
        OPERATOR,
        enterprise=uscc,
        number=consented,
        category=Category.INSURANCE,
        channels=(Channel.CALL,),
        evidence_ref="form-7",
    )
    lines = [
        "number",
        registered.national,
        unregistered.national,
        "+86 139-0013-9003",
        unregistered.e164,
        "nope",
    ]
    upload = "\n".join(lines) + "\n"
    r = api_client.post(
        "/v1/wash",
        data={"enterprise": uscc, "category": "insurance"},
        files={"file": ("list.csv", upload.encode(), "text/csv")},
        headers=enterprise,
    )
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    status = _wait(api_client, job, enterprise)
    assert status["state"] == "done", status
    # Strict policy: the registered and the unregistered number look the same to the enterprise.
    assert status["summary"] == {
        "lines": 5,
        "callable": 1,
        "refused": 0,
        "no_consent": 2,
        "invalid": 1,
        "duplicates": 1,
        "enterprise": uscc,
        "category": "insurance",
        "channel": "call",
        "quota_used": 6,
        "quota": runtime.settings.wash_daily_quota,
    }
    download = api_client.get(status["download"], headers=enterprise)
    assert download.status_code == 200
    assert download.text == "+8613900139003\n"
    # Another party cannot see the job; a carrier cannot start one.
    assert api_client.get(f"/v1/wash/{job}", headers=credentials.headers(Role.CARRIER)).status_code == 403
    other = api_client.post(
        "/v1/wash",
        data={"enterprise": "91110000100000000" + "0", "category": "insurance"},
        files={"file": ("l.txt", b"13800138000\n")},
        headers=enterprise,
    )
    assert other.status_code == 422  # not a valid USCC
