"""Caller authentication over HTTP: verify, check, the ledger and its CSV; roles and bad input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from quietline.callerauth import passport as pp
from quietline.callerauth.ca import CertificateAuthority
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

X5U = "https://cert.example.cn/sp.pem"


def _pem(*certs: Any) -> str:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode()


def test_verify_over_http(api_client: TestClient, credentials: Any, runtime: Runtime, tmp_path: Path) -> None:
    now = runtime.clock.now()
    ca = CertificateAuthority.init(tmp_path / "ca", now=now - timedelta(days=1))
    key, cert = ca.issue(now=now - timedelta(days=1), spc="1234")
    passport = pp.build(orig="13800138000", dest="13912345678", attest="A", x5u=X5U, iat=int(now.timestamp()))
    header = pp.identity_header(pp.sign(passport, key), X5U)
    body = {
        "identity_header": header,
        "certificate_pem": _pem(cert),
        "trust_pem": [_pem(ca.cert)],
        "orig": "13800138000",
        "dest": "+86 139 1234 5678",
    }
    carrier = credentials.headers(Role.CARRIER)
    r = api_client.post("/v1/callerauth/verify", json=body, headers=carrier)
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is True
    assert r.json()["verstat"] == "TN-Validation-Passed"
    late = api_client.post(
        "/v1/callerauth/verify", json={**body, "now": int(now.timestamp()) + 61}, headers=carrier
    )
    assert late.json()["reason_code"] == 403
    far = api_client.post("/v1/callerauth/verify", json={**body, "now": 10**15}, headers=carrier)
    assert (far.status_code, far.json()["field"]) == (422, "now")
    signed_call = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "13800138000", "callee": "13912345678", "origin": "domestic_interconnect",
              "identity_headers": [header], "certificate_pem": _pem(cert), "trust_pem": [_pem(ca.cert)]},
        headers=carrier,
    ).json()  # fmt: skip
    assert (signed_call["outcome"], signed_call["verification"]["verstat"]) == (
        "allow",
        "TN-Validation-Passed",
    )
    unsigned_call = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "13800138000", "callee": "13912345678", "origin": "domestic_interconnect"},
        headers=carrier,
    ).json()
    assert unsigned_call["code"] == "unsigned_from_risky_origin"
    bad = api_client.post("/v1/callerauth/verify", json={**body, "certificate_pem": "nope"}, headers=carrier)
    assert bad.status_code == 422
    assert bad.json()["field"] == "certificate_pem"
    several = {k: v for k, v in body.items() if k != "identity_header"} | {"identity_headers": [header]}
    assert api_client.post("/v1/callerauth/verify", json=several, headers=carrier).json()["valid"] is True
    both = api_client.post("/v1/callerauth/verify", json={**body, "passport": "a.b.c"}, headers=carrier)
    assert both.status_code == 422
    denied = api_client.post("/v1/callerauth/verify", json=body, headers=credentials.headers(Role.SUBSCRIBER))
    assert denied.status_code == 403
    assert api_client.post("/v1/callerauth/verify", json=body).status_code == 401


def test_ledger_and_checks_over_http(api_client: TestClient, credentials: Any) -> None:
    carrier = credentials.headers(Role.CARRIER)
    uscc = credentials.enterprise_uscc
    r = api_client.post(
        "/v1/callerauth/ledger/lines",
        json={"code": "L1", "enterprise": uscc, "name": "专线", "kind": "语音专线"},
        headers=carrier,
    )
    assert r.status_code == 201, r.text
    r = api_client.put(
        "/v1/callerauth/ledger/lines/L1/numbers",
        json={
            "number": "010-8888 6666",
            "purpose": "notification",
            "undertaking": {"reference": "CN-1", "signed_on": "2026-11-01", "signatory": "张三"},
        },
        headers=carrier,
    )
    assert r.json() == {"line": "L1", "changed": True, "direction": "outbound"}
    r = api_client.put(
        "/v1/callerauth/ledger/lines/L1/numbers",
        json={"number": "01088886667", "purpose": "customer_service"},
        headers=carrier,
    )
    assert r.json()["direction"] == "inbound"

    ok = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "01088886666", "callee": "13912345678", "origin": "enterprise_line", "line": "L1"},
        headers=carrier,
    ).json()
    assert (ok["outcome"], ok["attest"]) == ("allow", "A")
    spoof = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "+8613800138000", "callee": "13912345678", "origin": "international_gateway"},
        headers=carrier,
    ).json()
    assert spoof["outcome"] == "block"
    assert spoof["screening_reason"] == "caller_auth_failed"
    hidden = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "anonymous", "callee": "13912345678", "origin": "domestic_interconnect"},
        headers=carrier,
    ).json()
    assert (hidden["outcome"], hidden["code"]) == ("warn", "hidden_caller_id")
    needs_cert = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "13800138000", "callee": "13912345678", "origin": "domestic_interconnect",
              "identity_headers": ["a.b.c"]},
        headers=carrier,
    )  # fmt: skip
    assert (needs_cert.status_code, needs_cert.json()["field"]) == (422, "certificate_pem")
    bad_origin = api_client.post(
        "/v1/callerauth/check",
        json={"caller": "13800138000", "callee": "13912345678", "origin": "moon"},
        headers=carrier,
    )
    assert bad_origin.status_code == 422
    assert bad_origin.json()["field"] == "origin"

    mine = api_client.get("/v1/callerauth/ledger", headers=credentials.headers(Role.ENTERPRISE)).json()
    assert {row["number"] for row in mine} == {"861088886666", "861088886667"}
    regulator = api_client.get("/v1/callerauth/ledger.csv", headers=credentials.headers(Role.REGULATOR))
    assert regulator.status_code == 200
    csv_text = regulator.text.replace("L1", "L2")
    imported = api_client.post(
        "/v1/callerauth/ledger.csv",
        content=csv_text.encode(),
        headers={**carrier, "Content-Type": "text/csv"},
    )
    assert imported.json() == {"rows": 2, "lines_changed": 1, "numbers_changed": 2}
    assert (
        api_client.post(
            "/v1/callerauth/ledger.csv", content=b"x", headers=credentials.headers(Role.REGULATOR)
        ).status_code
        == 403
    )
    gone = api_client.delete("/v1/callerauth/ledger/lines/L2/numbers/01088886667", headers=carrier)
    assert gone.status_code == 204
    missing = api_client.delete("/v1/callerauth/ledger/lines/L2/numbers/01088886667", headers=carrier)
    assert missing.status_code == 404
