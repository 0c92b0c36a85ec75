"""The complaint API over the real app: report → company inbox and answer → reporter sees it → appeal,
with webhooks delivered to a receiver that verifies them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient  # imported (warning silenced) by tests/integration/conftest.py

from quietline.complaints import webhooks
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role


class Receiver:
    """A company's webhook endpoint: verifies each post and handles each delivery id once."""

    def __init__(self, secret: str, rt: Runtime) -> None:
        self.secret = secret
        self.rt = rt
        self.seen = webhooks.ProcessedDeliveries()
        self.cases: list[int] = []
        self.posts = 0

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts += 1
        delivery = webhooks.verify(self.secret, headers, body, now=self.rt.clock.now())
        self.seen.handle(delivery, lambda d: self.cases.append(d.payload["case"]["id"]))
        return 200


def test_report_inbox_answer_outcome_appeal(
    runtime: Runtime, api_app: FastAPI, api_client: TestClient, credentials: Any
) -> None:
    carrier = credentials.headers(Role.CARRIER)  # china_mobile
    hook = api_client.post(
        "/v1/complaints/webhooks",
        json={"party_kind": "carrier", "url": "https://hooks.mobile.example/12321"},
        headers=carrier,
    )
    assert hook.status_code == 201, hook.text
    receiver = Receiver(hook.json()["secret"], runtime)
    api_app.state.complaints_webhook_transport = receiver

    at = (runtime.clock.now() - timedelta(hours=1)).isoformat()
    me = credentials.headers(Role.SUBSCRIBER)
    r = api_client.post(
        "/v1/complaints",
        json={"reported": "13900000000", "channel": "call", "at": at, "form": "live", "category": "保险推销"},
        headers=me,
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["reporter"] == credentials.subscriber_number
    assert (case["state"], case["responsible_carrier"]) == ("forwarded", "china_mobile")
    assert set(case["deadlines"]) == {"forward", "feedback", "answer"}
    assert receiver.cases == [case["id"]]  # delivered the moment it was forwarded, signature verified

    # A subscriber cannot report in someone else's name; fields are named on errors.
    bad = api_client.post(
        "/v1/complaints",
        json={"reporter": "13700000000", "reported": "13900000000", "channel": "sms", "at": at, "text": "x"},
        headers=me,
    )
    assert (bad.status_code, bad.json()["field"]) == (422, "reporter")
    bad = api_client.post(
        "/v1/complaints", json={"reported": "13900000000", "channel": "sms", "at": at}, headers=me
    )
    assert (bad.status_code, bad.json()["field"]) == (422, "text")

    inbox = api_client.get("/v1/complaints/inbox", headers=carrier).json()
    assert [c["id"] for c in inbox] == [case["id"]]
    enterprise = credentials.headers(Role.ENTERPRISE)
    assert api_client.get(f"/v1/complaints/{case['id']}", headers=enterprise).status_code == 404

    done = api_client.post(
        f"/v1/complaints/{case['id']}/respond",
        json={"result": "substantiated", "action": "已对该号码限制外呼", "measure": "line_restricted"},
        headers=carrier,
    )
    assert done.json()["state"] == "acted"
    operator = credentials.headers(Role.OPERATOR)
    answered = api_client.post(f"/v1/complaints/{case['id']}/answer", json={}, headers=operator)
    assert answered.json()["state"] == "answered"
    assert "限制呼出" in runtime.sms.last_to(credentials.subscriber_number).text  # type: ignore[attr-defined]

    mine = api_client.get("/v1/me/complaints", headers=me).json()
    assert mine[0]["answer"].startswith("您举报的号码13900000000经核查属实")
    appealed = api_client.post(f"/v1/complaints/{case['id']}/appeal", json={"text": "仍在来电"}, headers=me)
    assert (appealed.json()["state"], appealed.json()["cycle"]) == ("forwarded", 2)
    assert receiver.cases == [case["id"], case["id"]]  # the reopened case reached the carrier again
    shown = api_client.get(f"/v1/complaints/{case['id']}", headers=me).json()
    assert [h["action"] for h in shown["history"]][-2:] == ["complaint.appeal", "complaint.forward"]

    regulator = credentials.headers(Role.REGULATOR)
    stats = api_client.get("/v1/complaints/stats", headers=regulator).json()
    assert {"carrier": "china_mobile", "state": "forwarded", "count": 1} in stats
    late = api_client.get(
        "/v1/complaints/breaches", params={"as_of": "2026-03-01T00:00:00+08:00"}, headers=regulator
    ).json()
    assert [(b["id"], b["stage"], b["kind"]) for b in late] == [(case["id"], "feedback", "breach")]
    assert api_client.get("/v1/complaints/breaches", headers=me).status_code == 403


def test_400_number_in_the_caller_ledger_goes_to_its_enterprise(
    runtime: Runtime, api_client: TestClient, credentials: Any
) -> None:
    from quietline.callerauth import actions as ledger
    from quietline.platform.actor import Actor

    uscc = credentials.enterprise_uscc
    carrier = Actor(Role.CARRIER, "china_mobile")
    ledger.register_line(runtime, carrier, code="L-400-1", enterprise=uscc, name="客服热线", kind="toll_free")
    ledger.assign_number(runtime, carrier, line="L-400-1", number="4008123456", purpose="customer_service")
    at = (runtime.clock.now() - timedelta(hours=1)).isoformat()
    r = api_client.post(
        "/v1/complaints",
        json={"reported": "400-812-3456", "channel": "call", "at": at, "form": "recorded"},
        headers=credentials.headers(Role.SUBSCRIBER),
    )
    case = r.json()
    assert (case["state"], case["responsible_company"], case["route_basis"]) == (
        "forwarded",
        uscc,
        "caller_number_ledger",
    )
    assert case["responsible_carrier"] == "china_mobile"  # the carrier providing the line (谁接入谁负责)
    enterprise = credentials.headers(Role.ENTERPRISE)
    [seen] = api_client.get("/v1/complaints/inbox", headers=enterprise).json()
    assert (seen["id"], seen["reporter"]) == (case["id"], "+86138****8000")  # not who reported it
    shown = api_client.get(f"/v1/complaints/{case['id']}", headers=enterprise).json()
    assert credentials.subscriber_number not in str(shown)
    done = api_client.post(
        f"/v1/complaints/{case['id']}/respond",
        json={"result": "unsubstantiated", "action": "该号码仅用于呼入客服，未外呼"},
        headers=enterprise,
    )
    assert done.json()["state"] == "verified"


def test_regulator_overview_and_exports(runtime: Runtime, api_client: TestClient, credentials: Any) -> None:
    import io

    from openpyxl import load_workbook

    from quietline.complaints import actions
    from quietline.complaints.actions import Filing
    from quietline.platform.actor import Actor

    op = Actor.operator("t")
    at = runtime.clock.now() - timedelta(hours=1)
    ids = []
    for i in range(3):
        filing = Filing(reporter=f"1350000000{i}", reported="13012345678", channel="call", at=at, form="live")
        ids.append(actions.file_report(runtime, op, filing).id)
    actions.file_report(
        runtime,
        op,
        Filing(reporter="13500000009", reported="13012349999", channel="sms", at=at, text="=HYPERLINK(1)"),
    )
    runtime.clock.advance(days=2)  # Wednesday 2026-01-07: feedback after 2 working days
    actions.respond(runtime, op, ids[0], result="substantiated", action="warned")
    regulator = credentials.headers(Role.REGULATOR)
    view = api_client.get("/v1/complaints/overview", headers=regulator).json()
    feedback = next(s for s in view["stage_times"] if s["stage"] == "feedback")
    assert (feedback["finished"], feedback["median_working_days"], feedback["over_limit"]) == (1, 2, 0)
    forward = next(s for s in view["stage_times"] if s["stage"] == "forward")
    assert (forward["finished"], forward["p90_working_days"]) == (4, 0)
    [offender] = view["repeat_offenders"]
    assert (offender["reported"], offender["cases"], offender["reporters"], offender["substantiated"]) == (
        "+8613012345678",
        3,
        3,
        1,
    )
    csv_body = api_client.get("/v1/complaints/export/open.csv", headers=regulator)
    assert csv_body.headers["content-type"].startswith("text/csv")
    text = csv_body.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id,state,reported")
    assert len(text.splitlines()) == 5  # header + 4 open cases
    xlsx = api_client.get("/v1/complaints/export/offenders.xlsx", headers=regulator)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert sheet.cell(row=2, column=1).value == "+8613012345678"
    bad = api_client.get("/v1/complaints/export/secrets.csv", headers=regulator)
    assert (bad.status_code, bad.json()["field"]) == (422, "list")
    assert (
        api_client.get(
            "/v1/complaints/export/open.csv", headers=credentials.headers(Role.CARRIER)
        ).status_code
        == 403
    )


def test_evidence_upload_type_size_and_access(
    runtime: Runtime, api_client: TestClient, credentials: Any
) -> None:
    from quietline.complaints.model import MAX_EVIDENCE_BYTES

    me = credentials.headers(Role.SUBSCRIBER)
    at = (runtime.clock.now() - timedelta(hours=1)).isoformat()
    case = api_client.post(
        "/v1/complaints", json={"reported": "13900000000", "channel": "call", "at": at}, headers=me
    ).json()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    up = api_client.post(
        f"/v1/complaints/{case['id']}/evidence",
        files={"file": ("../../etc/截图.png", png, "text/plain")},  # declared type and path are ignored
        headers=me,
    )
    assert up.status_code == 201, up.text
    meta = up.json()
    assert (meta["content_type"], meta["size"], meta["filename"], meta["party"]) == (
        "image/png",
        len(png),
        "截图.png",
        "reporter",
    )
    amr = api_client.post(
        f"/v1/complaints/{case['id']}/evidence",
        files={"file": ("call.amr", b"#!AMR\n" + b"\x3c" * 50, "audio/amr")},
        headers=credentials.headers(Role.CARRIER),  # china_mobile is responsible for 139…
    )
    assert amr.json()["party"] == "company"
    script = api_client.post(
        f"/v1/complaints/{case['id']}/evidence",
        files={"file": ("x.png", b"<script>alert(1)</script>", "image/png")},
        headers=me,
    )
    assert (script.status_code, script.json()["field"]) == (422, "evidence")
    big = api_client.post(
        f"/v1/complaints/{case['id']}/evidence",
        files={"file": ("big.png", png + b"\x00" * MAX_EVIDENCE_BYTES, "image/png")},
        headers=me,
    )
    assert (big.status_code, big.json()["field"]) == (422, "evidence")
    got = api_client.get(f"/v1/complaints/{case['id']}/evidence/{meta['id']}", headers=me)
    assert got.content == png
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    outsider = credentials.headers(Role.ENTERPRISE)
    assert (
        api_client.get(f"/v1/complaints/{case['id']}/evidence/{meta['id']}", headers=outsider).status_code
        == 404
    )
    shown = api_client.get(f"/v1/complaints/{case['id']}", headers=me).json()
    assert [e["content_type"] for e in shown["evidence"]] == ["image/png", "audio/amr"]


def test_company_manages_its_own_webhook_endpoint(
    runtime: Runtime, api_app: FastAPI, api_client: TestClient, credentials: Any
) -> None:
    carrier = credentials.headers(Role.CARRIER)
    created = api_client.post(
        "/v1/complaints/webhooks",
        json={"party_kind": "carrier", "url": "https://m.example/h"},
        headers=carrier,
    ).json()
    receiver = Receiver(created["secret"], runtime)
    api_app.state.complaints_webhook_transport = receiver
    rotated = api_client.post(f"/v1/complaints/webhooks/{created['id']}/rotate", headers=carrier).json()
    assert rotated["secret"] != created["secret"]
    paused = api_client.post(
        f"/v1/complaints/webhooks/{created['id']}/state", json={"active": False}, headers=carrier
    )
    assert paused.json() == {"id": created["id"], "active": False}
    at = (runtime.clock.now() - timedelta(hours=1)).isoformat()
    api_client.post(
        "/v1/complaints",
        json={"reported": "13900000000", "channel": "call", "at": at},
        headers=credentials.headers(Role.SUBSCRIBER),
    )
    waiting = api_client.get("/v1/complaints/webhooks/deliveries", headers=carrier).json()
    assert [(d["status"], d["attempts"]) for d in waiting] == [("pending", 0)]
    api_client.post(f"/v1/complaints/webhooks/{created['id']}/state", json={"active": True}, headers=carrier)
    from quietline.complaints import actions

    actions.deliver_webhooks(runtime, receiver)  # old secret still valid during the overlap
    assert len(receiver.cases) == 1
    other = credentials.headers(Role.ENTERPRISE)
    assert (
        api_client.post(f"/v1/complaints/webhooks/{created['id']}/rotate", headers=other).status_code == 404
    )
    assert api_client.get("/v1/complaints/webhooks/deliveries", headers=other).json() == []


def test_operator_imports_past_reports(runtime: Runtime, api_client: TestClient, credentials: Any) -> None:
    body = (
        "\ufeffreporter,reported,channel,at,received_at,duration,form,category,text\n"
        "13800138001,13012345678,call,2025-09-26T09:00:00,2025-09-26T10:00:00,30,live,贷款理财,\n"
        "13800138002,13012345678,sms,2025-09-26 09:00,,,,,【某贷】秒批\n"
        "13800138003,13012345678,call,2025-09-26T09:00:00+08:00,,abc,live,,\n"
        "13800138004,13012345678,call,2025-09-26T09:00:00+08:00,,,yelling,,\n"
    ).encode()
    r = api_client.post(
        "/v1/complaints/import",
        files={"file": ("old.csv", body, "text/csv")},
        headers=credentials.headers(Role.OPERATOR),
    )
    out = r.json()
    assert out["filed"] == 2
    assert [(e["line"], e["field"]) for e in out["errors"]] == [(4, "duration"), (5, "form")]
    shown = api_client.get(
        f"/v1/complaints/{out['ids'][0]}", headers=credentials.headers(Role.OPERATOR)
    ).json()
    assert shown["received_at"] == "2025-09-26T02:00:00+00:00"  # naive times are Beijing time
    assert shown["deadlines"]["forward"] == "2025-09-30"
    assert shown["category"] == "loan_finance"
    refused = api_client.post(
        "/v1/complaints/import",
        files={"file": ("x.csv", b"who,what\n1,2\n", "text/csv")},
        headers=credentials.headers(Role.OPERATOR),
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "header")
