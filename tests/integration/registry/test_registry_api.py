"""Registry and consent endpoints over HTTP: who may call what, bad input named, no enumeration."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role


def test_subscriber_sets_and_reads_own_refusals(
    api_client: TestClient, credentials: Any, sms: RecordingSmsSender
) -> None:
    me = credentials.headers(Role.SUBSCRIBER)
    r = api_client.put(
        "/v1/me/refusals",
        json={
            "refusals": [{"category": "贷款理财", "channel": "call"}, {"category": "all", "channel": "sms"}]
        },
        headers=me,
    )
    assert r.status_code == 200, r.text
    assert {(x["category"], x["channel"]) for x in r.json()["refusals"]} == {
        ("loan_finance", "call"),
        ("all", "sms"),
    }
    assert "已更新" in sms.last_to(credentials.subscriber_number).text
    history = api_client.get("/v1/me/history", headers=me).json()
    assert [h["action"] for h in history if h["action"].startswith("registry.")] == ["registry.refuse"] * 2
    assert all(h["subject"] == credentials.subscriber_number for h in history)


def test_bad_category_names_the_field(api_client: TestClient, credentials: Any) -> None:
    r = api_client.put(
        "/v1/me/refusals",
        json={"refusals": [{"category": "loan_finance"}, {"category": "lottery", "channel": "call"}]},
        headers=credentials.headers(Role.SUBSCRIBER),
    )
    assert r.status_code == 422
    assert r.json()["field"] == "refusals.1.category"


def test_personal_lists_over_http(api_client: TestClient, credentials: Any) -> None:
    me = credentials.headers(Role.SUBSCRIBER)
    r = api_client.post("/v1/me/lists/block", json={"kind": "prefix", "value": "950"}, headers=me)
    assert r.status_code == 201 and r.json()["value"] == "950"
    r = api_client.post("/v1/me/lists/block", json={"kind": "number", "value": "not a number"}, headers=me)
    assert r.status_code == 422 and r.json()["field"] == "value"
    r = api_client.delete("/v1/me/lists/block", params={"kind": "prefix", "value": "950"}, headers=me)
    assert r.status_code == 200
    assert api_client.get("/v1/me/preferences", headers=me).json()["lists"] == []


def test_enterprise_grants_consent_in_its_own_name_only(api_client: TestClient, credentials: Any) -> None:
    ent = credentials.headers(Role.ENTERPRISE)
    body = {
        "number": "13900139000",
        "category": "insurance",
        "channel": "call",
        "evidence_ref": "call-2026-11-01",
    }
    r = api_client.post("/v1/consents", json=body, headers=ent)
    assert r.status_code == 201, r.text
    assert r.json()[0]["enterprise"] == credentials.enterprise_uscc
    r = api_client.post("/v1/consents", json={**body, "enterprise": "91350100M000100Y43X"}, headers=ent)
    assert r.status_code == 422 and r.json()["field"] == "enterprise"
    r = api_client.post("/v1/consents", json={**body, "evidence_ref": None}, headers=ent)
    assert r.status_code == 422 and r.json()["field"] == "evidence"
    csv = api_client.get("/v1/consents/export.csv", headers=ent)
    assert csv.status_code == 200 and csv.text.count("\n") == 2 and "+8613900139000" in csv.text
    r = api_client.post(
        "/v1/consents/revoke", json={"number": "13900139000", "category": "insurance"}, headers=ent
    )
    assert r.json() == {"revoked": 1}


def test_subscriber_withdraws_consent_it_gave(api_client: TestClient, credentials: Any) -> None:
    body = {"number": credentials.subscriber_number, "category": "insurance", "evidence_text": "同意"}
    assert (
        api_client.post("/v1/consents", json=body, headers=credentials.headers(Role.ENTERPRISE)).status_code
        == 201
    )
    me = credentials.headers(Role.SUBSCRIBER)
    assert len([c for c in api_client.get("/v1/me/consents", headers=me).json() if c["active"]]) == 2
    r = api_client.post(
        "/v1/me/consents/revoke",
        json={"enterprise": credentials.enterprise_uscc, "category": "保险推销"},
        headers=me,
    )
    assert r.json() == {"revoked": 2}


def test_only_operators_and_regulators_look_up_arbitrary_numbers(
    api_client: TestClient, credentials: Any
) -> None:
    for role, expected in (
        (None, 401),
        (Role.SUBSCRIBER, 403),
        (Role.ENTERPRISE, 403),
        (Role.CARRIER, 403),
        (Role.REGULATOR, 200),
        (Role.OPERATOR, 200),
    ):
        r = api_client.get("/v1/registry/13900139000", headers=credentials.headers(role))
        assert r.status_code == expected, (role, r.text)


def test_no_enumeration_registered_and_unregistered_numbers_look_alike(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    """An enterprise learns nothing about whether a number refused: consent is recorded either way."""
    op = credentials.headers(Role.OPERATOR)
    api_client.put("/v1/registry/13900139001/refusals", json={"refusals": [{"category": "all"}]}, headers=op)
    ent = credentials.headers(Role.ENTERPRISE)
    answers = []
    for number in ("13900139001", "13900139002"):
        r = api_client.post(
            "/v1/consents", json={"number": number, "category": "insurance", "evidence_ref": "x"}, headers=ent
        )
        answers.append((r.status_code, sorted(r.json()[0].keys())))
    assert answers[0] == answers[1]


def test_system_lists_are_for_carriers_regulators_operators(api_client: TestClient, credentials: Any) -> None:
    body = {"number": "95588", "reason": "verified bank number"}
    assert (
        api_client.post(
            "/v1/system-lists/allow", json=body, headers=credentials.headers(Role.CARRIER)
        ).status_code
        == 200
    )
    assert (
        api_client.post(
            "/v1/system-lists/allow", json=body, headers=credentials.headers(Role.ENTERPRISE)
        ).status_code
        == 403
    )
