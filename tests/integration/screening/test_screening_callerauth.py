"""Caller authentication inside screening (issue 8 "Screening"): a failed verification or a confirmed
spoof is a system block with ``caller_auth_failed``; an unsigned call from another network is connected
with a warning; the subscriber's own allow list still comes first (DESIGN.md decision order)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.registry import actions as registry
from quietline.registry.model import EntryKind, ListName
from quietline.vocabulary import Role

SUBSCRIBER = "+8613800138000"  # the credentials fixture's subscriber
CALLER = "13700137000"


def _screen(client: TestClient, credentials: Any, **params: Any) -> Any:
    r = client.get(
        "/v1/screen",
        params={"caller": CALLER, "callee": SUBSCRIBER, **params},
        headers=credentials.headers(Role.CARRIER),
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_mobile_caller_id_from_an_international_gateway_is_blocked(
    api_client: TestClient, credentials: Any
) -> None:
    out = _screen(api_client, credentials, origin="international_gateway")
    assert (out["decision"], out["reason"], out["rule"]) == (
        "block",
        "caller_auth_failed",
        "5.system_block_list",
    )
    assert "认证" in out["explanation"]
    assert out["caller_auth"]["outcome"] == "block"


def test_a_forged_identity_header_is_blocked(api_client: TestClient, credentials: Any) -> None:
    forged = (
        "eyJhbGciOiJFUzI1NiJ9.eyJ4Ijp0cnVlfQ.c2ln;info=<https://cert.example.cn/sp.pem>;alg=ES256;ppt=shaken"
    )
    out = _screen(api_client, credentials, origin="domestic_interconnect", identity=[forged])
    assert (out["decision"], out["reason"]) == ("block", "caller_auth_failed")
    assert out["caller_auth"]["verification"]["verstat"] == "TN-Validation-Failed"


def test_unsigned_call_from_another_network_gets_a_warning(api_client: TestClient, credentials: Any) -> None:
    out = _screen(api_client, credentials, origin="domestic_interconnect")
    assert (out["decision"], out["reason"]) == ("warn", "caller_unverified")


def test_without_caller_auth_data_nothing_changes(api_client: TestClient, credentials: Any) -> None:
    out = _screen(api_client, credentials)
    assert (out["decision"], out["reason"]) == ("allow", "default_allow")
    assert "caller_auth" not in out


def test_the_subscribers_allow_list_still_comes_first(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    registry.add_list_entry(
        runtime, Actor.operator("t"), parse(SUBSCRIBER), ListName.ALLOW, EntryKind.NUMBER, CALLER
    )
    out = _screen(api_client, credentials, origin="international_gateway")
    assert (out["decision"], out["reason"]) == ("allow", "personal_allow")


def test_bad_origin_names_the_field(api_client: TestClient, credentials: Any) -> None:
    r = api_client.get(
        "/v1/screen",
        params={"caller": CALLER, "callee": SUBSCRIBER, "origin": "moon"},
        headers=credentials.headers(Role.CARRIER),
    )
    assert r.status_code == 422 and r.json()["field"] == "origin"


def test_cli_screen_runs_caller_authentication(sqlite_url: str) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).parent / "quietline")
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": sqlite_url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "t",
    }
    args = [
        cli,
        "screen",
        "--caller",
        CALLER,
        "--callee",
        SUBSCRIBER,
        "--origin",
        "international_gateway",
        "--json",
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["decision"], out["reason"]) == ("block", "caller_auth_failed")
    bad_args = [*args[:-3], "--origin", "moon"]
    bad = subprocess.run(bad_args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "origin" in bad.stderr
