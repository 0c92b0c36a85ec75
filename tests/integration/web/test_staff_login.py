"""Staff sign-in to the portal with an API key: the session it opens (SQLite and PostgreSQL), the login
page, bad and revoked keys, idle and absolute expiry, logout, and the cookie in ``require``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quietline.accounts import actions
from quietline.accounts.model import STAFF_SESSION_ABSOLUTE, STAFF_SESSION_COOKIE, STAFF_SESSION_IDLE
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.errors import RateLimited
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

USCC = "91350100M000100Y43"
OPS = Actor.operator("test")


def _carrier_key(rt: Runtime) -> actions.CreatedKey:
    return actions.create_api_key(rt, OPS, role=Role.CARRIER, subject="china_mobile", label="portal")


def _actions_of(rt: Runtime, key_id: str) -> list[str]:
    with rt.sessions() as session:
        return [e.action for e in audit.for_subject(session, "api_key", key_id)]


# --- the action, on both databases -------------------------------------------------------------------


def test_a_key_opens_a_session_bound_to_it(any_runtime: Runtime) -> None:
    created = _carrier_key(any_runtime)
    issued = actions.open_staff_session(any_runtime, created.plaintext, client="ip:t")
    assert created.plaintext not in issued.token and created.key.id not in issued.token
    identity = actions.authenticate_staff_session(any_runtime, issued.token)
    assert identity is not None
    assert identity.actor == Actor(Role.CARRIER, "china_mobile", key_id=created.key.id)
    assert "accounts.staff.login" in _actions_of(any_runtime, created.key.id)

    actions.revoke_api_key(any_runtime, OPS, created.key.id)
    assert actions.authenticate_staff_session(any_runtime, issued.token) is None


def test_bad_keys_fail_alike_and_are_audited(any_runtime: Runtime) -> None:
    created = _carrier_key(any_runtime)
    wrong_secret = created.plaintext[:-4] + ("AAAA" if not created.plaintext.endswith("AAAA") else "BBBB")
    unknown_id = "ql_0123456789abcdef_" + created.plaintext.split("_", 2)[2]
    messages = set()
    for presented in (wrong_secret, unknown_id, "not a key", "x" * 500):
        with pytest.raises(actions.StaffLoginFailed) as caught:
            actions.open_staff_session(any_runtime, presented, client="ip:t")
        messages.add((caught.value.message, caught.value.field, caught.value.status))
    assert messages == {("API 密钥无效或已停用", "key", 401)}
    assert _actions_of(any_runtime, created.key.id) == ["accounts.staff.login_failed", "accounts.key.create"]
    with any_runtime.sessions() as session:
        failures = [e for e in audit.tail(session, 10) if e.action == "accounts.staff.login_failed"]
    assert len(failures) == 4
    assert all(created.plaintext.split("_", 2)[2] not in str(e.as_dict()) for e in failures)


def test_failed_sign_ins_are_limited_per_client_for_an_hour(any_runtime: Runtime, clock: FakeClock) -> None:
    created = _carrier_key(any_runtime)
    limit = any_runtime.settings.staff_login_failures_per_client_per_hour
    for _ in range(limit):
        with pytest.raises(actions.StaffLoginFailed):
            actions.open_staff_session(any_runtime, "ql_guess", client="ip:attacker")
    # Over the limit even the right key is refused unchecked, and the refusal writes nothing.
    with any_runtime.sessions() as session:
        audited = len(audit.tail(session, 1000))
    with pytest.raises(RateLimited) as refused:
        actions.open_staff_session(any_runtime, created.plaintext, client="ip:attacker")
    assert refused.value.status == 429 and refused.value.field == "staff_login_failures_per_client_per_hour"
    with any_runtime.sessions() as session:
        assert len(audit.tail(session, 1000)) == audited
    # Another client is not affected; an hour later the attacker's client may try again.
    assert actions.open_staff_session(any_runtime, created.plaintext, client="ip:colleague").token
    clock.advance(seconds=3601)
    assert actions.open_staff_session(any_runtime, created.plaintext, client="ip:attacker").token


def test_idle_and_absolute_expiry(any_runtime: Runtime, clock: FakeClock) -> None:
    created = _carrier_key(any_runtime)
    issued = actions.open_staff_session(any_runtime, created.plaintext, client="ip:t")
    clock.advance(seconds=STAFF_SESSION_IDLE.total_seconds() - 1)
    assert actions.authenticate_staff_session(any_runtime, issued.token) is not None  # moves the idle limit
    clock.advance(seconds=STAFF_SESSION_IDLE.total_seconds() - 1)
    assert actions.authenticate_staff_session(any_runtime, issued.token) is not None
    clock.advance(seconds=STAFF_SESSION_IDLE.total_seconds())
    assert actions.authenticate_staff_session(any_runtime, issued.token) is None  # idle too long

    issued = actions.open_staff_session(any_runtime, created.plaintext, client="ip:t")
    steps = int(STAFF_SESSION_ABSOLUTE / timedelta(minutes=20))
    for _ in range(steps - 1):  # busy all day: seen every 20 minutes
        clock.advance(minutes=20)
        assert actions.authenticate_staff_session(any_runtime, issued.token) is not None
    clock.advance(minutes=20)
    assert actions.authenticate_staff_session(any_runtime, issued.token) is None  # the working day is over


def test_suspending_the_enterprise_ends_its_sessions(any_runtime: Runtime) -> None:
    actions.register_enterprise(any_runtime, OPS, uscc=USCC, name="测试营销有限公司")
    created = actions.create_api_key(any_runtime, OPS, role=Role.ENTERPRISE, subject=USCC)
    issued = actions.open_staff_session(any_runtime, created.plaintext, client="ip:t")
    assert actions.authenticate_staff_session(any_runtime, issued.token) is not None
    actions.suspend_enterprise(any_runtime, OPS, USCC, reason="违规外呼")
    assert actions.authenticate_staff_session(any_runtime, issued.token) is None


def test_logout_ends_the_session_once(any_runtime: Runtime) -> None:
    created = _carrier_key(any_runtime)
    issued = actions.open_staff_session(any_runtime, created.plaintext, client="ip:t")
    assert actions.end_staff_session(any_runtime, issued.token) is True
    assert actions.authenticate_staff_session(any_runtime, issued.token) is None
    assert actions.end_staff_session(any_runtime, issued.token) is False
    assert _actions_of(any_runtime, created.key.id)[0] == "accounts.staff.logout"


# --- the pages ---------------------------------------------------------------------------------------


def _login(client: TestClient, key: str, next_page: str = "/staff") -> Any:
    return client.post("/staff/login", data={"key": key, "next": next_page}, follow_redirects=False)


def test_login_page_sets_an_httponly_lax_cookie_without_the_key(
    api_client: TestClient, credentials: Any
) -> None:
    page = api_client.get("/staff/login")
    assert page.status_code == 200 and "API 密钥" in page.text and 'type="password"' in page.text
    key = credentials.keys[Role.CARRIER]
    r = _login(api_client, key, "/staff/complaints?state=forwarded")
    assert r.status_code == 303 and r.headers["location"] == "/staff/complaints?state=forwarded"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{STAFF_SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert key not in cookie and key.split("_")[1] not in cookie and key.split("_", 2)[2] not in cookie


def test_wrong_key_is_refused_in_chinese_without_saying_whether_the_id_exists(
    api_client: TestClient, credentials: Any
) -> None:
    key = credentials.keys[Role.CARRIER]
    existing_id_wrong_secret = key[:-3] + ("zzz" if not key.endswith("zzz") else "yyy")
    unknown_id = "ql_0123456789abcdef_" + key.split("_", 2)[2]
    bodies = []
    for presented in (existing_id_wrong_secret, unknown_id, "hello"):
        r = _login(api_client, presented)
        assert r.status_code == 401 and "set-cookie" not in r.headers
        assert "API 密钥无效或已停用" in r.text and 'id="key-error"' in r.text
        assert presented not in r.text  # the key is never echoed back
        bodies.append(r.text)
    assert bodies[0] == bodies[1]  # same page whether or not the key id exists
    empty = _login(api_client, "  ")
    assert empty.status_code == 422 and "请粘贴您的 API 密钥" in empty.text


def test_too_many_failures_get_a_chinese_429_page(api_client: TestClient, credentials: Any) -> None:
    rt = api_client.app.state.runtime  # type: ignore[attr-defined]
    for _ in range(rt.settings.staff_login_failures_per_client_per_hour):
        assert _login(api_client, "hello").status_code == 401
    r = _login(api_client, credentials.keys[Role.CARRIER])
    assert r.status_code == 429 and "set-cookie" not in r.headers
    assert "失败次数过多" in r.text and 'id="key-error"' in r.text


def test_next_page_must_be_a_staff_page(api_client: TestClient, credentials: Any) -> None:
    for target in ("https://evil.example/", "//evil.example/staff", "/me"):
        r = _login(api_client, credentials.keys[Role.OPERATOR], target)
        assert r.status_code == 303 and r.headers["location"] == "/staff"


def test_anonymous_and_subscribers_are_sent_to_the_login(api_client: TestClient, credentials: Any) -> None:
    r = api_client.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=/staff"
    r = api_client.get("/staff", headers=credentials.headers(Role.SUBSCRIBER), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


def test_staff_cookie_works_with_require_and_ends_with_the_key(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    assert _login(api_client, credentials.keys[Role.CARRIER]).status_code == 303
    inbox = api_client.get("/v1/complaints/inbox")  # a route declared with require(CARRIER, ENTERPRISE)
    assert inbox.status_code == 200, inbox.text
    assert api_client.get("/v1/me/complaints").status_code == 403  # require(SUBSCRIBER): a carrier is not
    landing = api_client.get("/staff", follow_redirects=False)
    assert landing.status_code in (200, 303) and "/staff/login" not in landing.headers.get("location", "")

    actions.revoke_api_key(runtime, OPS, credentials.actor(Role.CARRIER).key_id)
    assert api_client.get("/v1/complaints/inbox").status_code == 401
    r = api_client.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


def test_expired_session_goes_back_to_the_login(
    api_client: TestClient, credentials: Any, clock: FakeClock
) -> None:
    assert _login(api_client, credentials.keys[Role.REGULATOR]).status_code == 303
    assert "/staff/login" not in api_client.get("/staff", follow_redirects=False).headers.get("location", "")
    clock.advance(seconds=STAFF_SESSION_IDLE.total_seconds() + 1)
    r = api_client.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=/staff"


def test_logout_clears_the_cookie_and_the_session(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    assert _login(api_client, credentials.keys[Role.OPERATOR]).status_code == 303
    token = api_client.cookies.get(STAFF_SESSION_COOKIE)
    assert token and actions.authenticate_staff_session(runtime, token) is not None
    r = api_client.post("/staff/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    assert actions.authenticate_staff_session(runtime, token) is None
    with runtime.sessions() as session:
        assert audit.tail(session, 1)[0].action == "accounts.staff.logout"


def test_staff_login_signs_a_subscriber_out_of_the_same_browser(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    token = credentials.session_token
    assert actions.authenticate_session(runtime, token) is not None
    api_client.cookies.set("ql_session", token)
    r = _login(api_client, credentials.keys[Role.ENTERPRISE])
    assert r.status_code == 303 and 'ql_session=""' in ", ".join(r.headers.get_list("set-cookie"))
    assert actions.authenticate_session(runtime, token) is None
