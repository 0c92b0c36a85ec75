"""``GET /v1/numbers/{number}`` through the real application."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient  # imported (warning silenced) by tests/integration/conftest.py

from quietline.numbers import actions
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role


@pytest.mark.parametrize("role", [Role.CARRIER, Role.REGULATOR, Role.OPERATOR])
def test_readers_see_current_and_original_carrier(
    api_client: TestClient, credentials: object, runtime: Runtime, tmp_path: Path, role: Role
) -> None:
    path = tmp_path / "ports.csv"
    path.write_text("number,carrier\n13800138000,china_telecom\n", encoding="utf-8")
    actions.import_portability(runtime, Actor.operator("t"), path)
    r = api_client.get("/v1/numbers/+86 138 0013 8000", headers=credentials.headers(role))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["e164"], body["original_carrier"], body["current_carrier"], body["ported"]) == (
        "+8613800138000",
        "china_mobile",
        "china_telecom",
        True,
    )


def test_short_codes_and_fixed_lines(api_client: TestClient, credentials: object) -> None:
    headers = credentials.headers(Role.CARRIER)  # type: ignore[attr-defined]
    body = api_client.get("/v1/numbers/110", headers=headers).json()
    assert (body["e164"], body["type"], body["never_block"]) == ("+86110", "short_code", True)
    body = api_client.get("/v1/numbers/0755-12345678", headers=headers).json()
    assert (body["type"], body["area_code"], body["current_carrier"]) == ("fixed_line", "0755", None)


@pytest.mark.parametrize("role", [None, Role.SUBSCRIBER, Role.ENTERPRISE])
def test_other_callers_are_refused(api_client: TestClient, credentials: object, role: Role | None) -> None:
    r = api_client.get("/v1/numbers/13800138000", headers=credentials.headers(role))  # type: ignore[attr-defined]
    assert r.status_code == (401 if role is None else 403)


@pytest.mark.parametrize(("number", "why"), [("abc", "letters"), ("14012345678", "not allocated")])
def test_invalid_numbers_answer_422_naming_the_field(
    api_client: TestClient, credentials: object, number: str, why: str
) -> None:
    r = api_client.get(f"/v1/numbers/{number}", headers=credentials.headers(Role.REGULATOR))  # type: ignore[attr-defined]
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "number"
    assert why in body["message"]
