"""The accounts HTTP API on the real app: sign-in by SMS code, enterprises, keys, bad input."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role

NUMBER = "+8613912345678"
OTHER_USCC = "91440300708461136T"


def _code(sms: RecordingSmsSender, number: str = NUMBER) -> str:
    match = re.search(r"(\d{6})", sms.last_to(number).text)
    assert match
    return match.group(1)


def test_sign_in_with_a_code_sets_a_safe_cookie_and_logout_ends_it(
    api_client: TestClient, sms: RecordingSmsSender
) -> None:
    response = api_client.post("/v1/auth/otp", json={"number": "139 1234 5678"})
    assert response.status_code == 202
    assert response.json()["status"] == "sent"
    response = api_client.post("/v1/auth/verify", json={"number": NUMBER, "code": _code(sms)})
    assert response.status_code == 200
    assert response.json()["number"] == NUMBER
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("ql_session=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    me = api_client.get("/v1/me")
    assert me.json() == {"role": "subscriber", "role_label": "手机用户", "subject": NUMBER}
    assert api_client.post("/v1/auth/logout").status_code == 204
    token = re.search(r"ql_session=([^;]+)", cookie)
    assert token
    again = api_client.get("/v1/me", headers={"Cookie": f"ql_session={token.group(1)}"})
    assert again.status_code == 401
    assert again.json()["field"] == "authorization"
    assert again.headers["www-authenticate"].startswith("Bearer")


def test_otp_answer_does_not_depend_on_the_number(api_client: TestClient, credentials: Any) -> None:
    """A subscriber already known to the system gets exactly the answer a stranger gets."""
    known = api_client.post("/v1/auth/otp", json={"number": credentials.subscriber_number})
    unknown = api_client.post("/v1/auth/otp", json={"number": "+8615000000001"})
    assert known.status_code == unknown.status_code == 202
    assert known.json().keys() == unknown.json().keys() == {"status", "expires_at"}
    assert known.json() == unknown.json()


def test_rate_limits_answer_429_naming_the_limit(api_client: TestClient, runtime: Runtime) -> None:
    for _ in range(runtime.settings.otp_send_per_number_per_hour):
        assert api_client.post("/v1/auth/otp", json={"number": NUMBER}).status_code == 202
    response = api_client.post("/v1/auth/otp", json={"number": NUMBER})
    assert response.status_code == 429
    assert response.json()["field"] == "otp_send_per_number_per_hour"


def test_wrong_and_expired_codes_are_422_naming_the_code(
    api_client: TestClient, sms: RecordingSmsSender, clock: FakeClock
) -> None:
    api_client.post("/v1/auth/otp", json={"number": NUMBER})
    code = _code(sms)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = api_client.post("/v1/auth/verify", json={"number": NUMBER, "code": wrong})
    assert response.status_code == 422
    assert response.json() == {
        "error": "InvalidInput",
        "field": "code",
        "message": "wrong code; 4 tries left",
    }
    clock.advance(minutes=5)
    response = api_client.post("/v1/auth/verify", json={"number": NUMBER, "code": code})
    assert (response.status_code, response.json()["field"]) == (422, "code")
    assert "set-cookie" not in response.headers


def test_bad_input_names_the_field(api_client: TestClient, credentials: Any) -> None:
    cases: list[tuple[str, str, dict[str, Any], Role | None, str]] = [
        ("POST", "/v1/auth/otp", {"number": "abc"}, None, "number"),
        ("POST", "/v1/auth/otp", {"number": "010-12345678"}, None, "number"),
        ("POST", "/v1/auth/otp", {}, None, "number"),
        ("POST", "/v1/auth/verify", {"number": NUMBER, "code": "12"}, None, "code"),
        ("POST", "/v1/enterprises", {"uscc": "91350100M000100Y44", "name": "x"}, Role.OPERATOR, "uscc"),
        ("POST", "/v1/enterprises", {"uscc": OTHER_USCC, "name": ""}, Role.OPERATOR, "name"),
        (
            "POST",
            "/v1/enterprises",
            {"uscc": OTHER_USCC, "name": "x", "categories": ["赌博"]},
            Role.OPERATOR,
            "category",
        ),
        ("POST", "/v1/keys", {"role": "admin", "subject": "x"}, Role.OPERATOR, "role"),
        ("POST", "/v1/keys", {"role": "carrier", "subject": "acme"}, Role.OPERATOR, "subject"),
        ("POST", "/v1/keys", {"role": "operator", "subject": "x", "scopes": ["a b"]}, Role.OPERATOR, "scope"),
        ("GET", "/v1/enterprises/123", {}, Role.OPERATOR, "uscc"),
    ]
    for method, path, body, role, field in cases:
        kwargs: dict[str, Any] = {"headers": credentials.headers(role)}
        if method == "POST":
            kwargs["json"] = body
        response = api_client.request(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (path, body, response.text)
        assert response.json()["field"] == field, (path, body, response.json())
        assert response.json()["message"]


def test_enterprises_by_operator_and_seen_only_by_themselves(
    api_client: TestClient, credentials: Any
) -> None:
    op = credentials.headers(Role.OPERATOR)
    created = api_client.post(
        "/v1/enterprises",
        json={"uscc": OTHER_USCC, "name": "深圳某公司", "categories": ["education"]},
        headers=op,
    )
    assert created.status_code == 201
    assert created.json()["categories"] == ["education"]
    assert (
        api_client.post("/v1/enterprises", json={"uscc": OTHER_USCC, "name": "x"}, headers=op).status_code
        == 409
    )
    own = api_client.get(
        f"/v1/enterprises/{credentials.enterprise_uscc}", headers=credentials.headers(Role.ENTERPRISE)
    )
    assert own.status_code == 200
    assert own.json()["uscc"] == credentials.enterprise_uscc
    foreign = api_client.get(f"/v1/enterprises/{OTHER_USCC}", headers=credentials.headers(Role.ENTERPRISE))
    assert (foreign.status_code, foreign.json()["field"]) == (403, "uscc")
    regulator = api_client.get(f"/v1/enterprises/{OTHER_USCC}", headers=credentials.headers(Role.REGULATOR))
    assert regulator.json()["name"] == "深圳某公司"
    listed = api_client.get("/v1/enterprises", params={"category": "教育培训"}, headers=op)
    assert [e["uscc"] for e in listed.json()] == [OTHER_USCC]
    missing = api_client.get("/v1/enterprises/911100007109310534", headers=op)
    assert missing.status_code == 404
    updated = api_client.put(
        f"/v1/enterprises/{OTHER_USCC}/categories", json={"categories": ["房产中介"]}, headers=op
    )
    assert updated.json()["categories"] == ["real_estate"]
    suspended = api_client.post(f"/v1/enterprises/{OTHER_USCC}/suspend", json={"reason": "处罚"}, headers=op)
    assert suspended.json()["status"] == "suspended"
    no_reason = api_client.post(f"/v1/enterprises/{OTHER_USCC}/suspend", json={"reason": ""}, headers=op)
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    reinstated = api_client.post(f"/v1/enterprises/{OTHER_USCC}/reinstate", headers=op)
    assert reinstated.json()["status"] == "active"


def test_keys_created_used_and_revoked_over_http(api_client: TestClient, credentials: Any) -> None:
    op = credentials.headers(Role.OPERATOR)
    response = api_client.post(
        "/v1/keys",
        json={"role": "regulator", "subject": "广东省通信管理局", "scopes": ["registry:read"]},
        headers=op,
    )
    assert response.status_code == 201
    body = response.json()
    plaintext = body["key"]
    assert plaintext.startswith(f"ql_{body['id']}_")
    me = api_client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.json()["subject"] == "广东省通信管理局"
    listed = api_client.get("/v1/keys", headers=op).json()
    assert body["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)
    assert api_client.delete(f"/v1/keys/{body['id']}", headers=op).json()["active"] is False
    revoked = api_client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert revoked.status_code == 401
    assert api_client.delete(f"/v1/keys/{body['id']}", headers=op).status_code == 409


def test_malformed_credentials_are_401_not_500(api_client: TestClient, credentials: Any) -> None:
    for header in (
        "Bearer",
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer ql_" + "0" * 16 + "_" + "x" * 43,
    ):
        response = api_client.get("/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
    # A bad Authorization header is judged alone: a valid cookie beside it does not rescue it.
    response = api_client.get(
        "/v1/me", headers={"Authorization": "Bearer nope", **credentials.headers(Role.SUBSCRIBER)}
    )
    assert response.status_code == 401
    assert api_client.get("/v1/me", headers={"Cookie": "ql_session=forged"}).status_code == 401


def test_scoped_routes_admit_only_keys_holding_the_scope(
    api_app: Any, runtime: Runtime, credentials: Any
) -> None:
    from fastapi import Depends

    from quietline.accounts import actions
    from quietline.api.auth import require_scope
    from quietline.platform.actor import Actor

    @api_app.get("/v1/zz-scoped", summary="Scoped test route (any key with zz:read)")
    def scoped(actor: Actor = Depends(require_scope("zz:read"))) -> dict[str, str]:  # noqa: B008
        return {"subject": actor.subject}

    holder = actions.create_api_key(
        runtime, Actor.operator("t"), role="carrier", subject="china_unicom", scopes=["zz:read"]
    )
    without = actions.create_api_key(runtime, Actor.operator("t"), role="carrier", subject="china_unicom")
    with TestClient(api_app) as client:
        ok = client.get("/v1/zz-scoped", headers={"Authorization": f"Bearer {holder.plaintext}"})
        assert ok.json() == {"subject": "china_unicom"}
        refused = client.get("/v1/zz-scoped", headers={"Authorization": f"Bearer {without.plaintext}"})
        assert (refused.status_code, refused.json()["field"]) == (403, "scope")
        subscriber = client.get("/v1/zz-scoped", headers=credentials.headers(Role.SUBSCRIBER))
        assert (subscriber.status_code, subscriber.json()["field"]) == (403, "role")


def test_sign_in_over_a_real_http_server_on_both_databases(
    any_runtime: Runtime, sms: RecordingSmsSender, serve_app: Any
) -> None:
    """The cookie flow through uvicorn and httpx, on SQLite and PostgreSQL."""
    import httpx

    from quietline.api.app import create_app

    with serve_app(create_app(any_runtime)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/v1/auth/otp", json={"number": NUMBER}).status_code == 202
        verified = client.post("/v1/auth/verify", json={"number": NUMBER, "code": _code(sms)})
        assert verified.status_code == 200
        assert client.cookies.get("ql_session")
        assert client.get("/v1/me").json()["subject"] == NUMBER
        assert client.post("/v1/auth/logout").status_code == 204
        assert "ql_session" not in client.cookies
        anonymous = client.get("/v1/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="quietline"'


def test_openapi_documents_who_may_call_each_accounts_route(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    assert paths["/v1/auth/otp"]["post"]["summary"].endswith("(anyone)")
    assert paths["/v1/keys"]["post"]["summary"].endswith("(operator)")
    assert "that enterprise itself" in paths["/v1/enterprises/{uscc}"]["get"]["summary"]
