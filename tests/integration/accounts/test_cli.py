"""The accounts CLI through the real console entry point (exit codes, JSON, one-line errors)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from quietline.cli import common
from quietline.cli.main import app
from quietline.platform.settings import get_settings

USCC = "91350100M000100Y43"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``quietline ARGS`` in-process against a fresh migrated database; returns (code, out, err)."""
    monkeypatch.setenv("QUIETLINE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("QUIETLINE_SECRET_KEY", "cli-test")
    monkeypatch.setenv("QUIETLINE_ENV", "development")

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        common.runtime.cache_clear()
        monkeypatch.setattr(sys, "argv", ["quietline", *args])
        code = 0
        try:
            app()
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            if common.runtime.cache_info().currsize:
                common.runtime().close()
            common.runtime.cache_clear()
            get_settings.cache_clear()
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _json(out: str) -> Any:
    return json.loads(out)


def test_enterprise_add_show_list(run_cli: Run) -> None:
    code, out, err = run_cli(
        "enterprise", "add", "--uscc", USCC.lower(), "--name", "福建测试公司", "--category", "insurance",
        "--category", "贷款理财", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    added = _json(out)
    assert (added["uscc"], added["categories"], added["status"]) == (
        USCC,
        ["loan_finance", "insurance"],
        "active",
    )
    code, out, _ = run_cli("enterprise", "show", USCC, "--json")
    assert _json(out)["name"] == "福建测试公司"
    code, out, _ = run_cli("enterprise", "list", "--json")
    assert [e["uscc"] for e in _json(out)] == [USCC]
    code, out, _ = run_cli("enterprise", "suspend", USCC, "--reason", "处罚", "--json")
    assert _json(out)["status"] == "suspended"
    code, out, _ = run_cli("enterprise", "list", "--status", "active", "--json")
    assert _json(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uscc", "91350100M000100Y44", "--name", "x"], "checksum mismatch"),
        (["--uscc", "9135010", "--name", "x"], "18 characters"),
        (["--uscc", USCC, "--name", "x", "--category", "gambling"], "category"),
        (["--uscc", USCC, "--name", "  "], "name"),
    ],
)
def test_enterprise_add_bad_input_exits_2_with_one_line(run_cli: Run, args: list[str], message: str) -> None:
    code, out, err = run_cli("enterprise", "add", *args, "--json")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert message in err


def test_enterprise_duplicates_and_unknown_codes_exit_2(run_cli: Run) -> None:
    assert run_cli("enterprise", "add", "--uscc", USCC, "--name", "x")[0] == 0
    code, _, err = run_cli("enterprise", "add", "--uscc", USCC, "--name", "x")
    assert (code, "already registered" in err) == (2, True)
    code, _, err = run_cli("enterprise", "show", "91440300708461136T")
    assert (code, "no enterprise" in err) == (2, True)
    code, _, err = run_cli("enterprise", "list", "--status", "sleeping")
    assert (code, "--status" in err) == (2, True)


def test_keys_create_list_revoke(run_cli: Run) -> None:
    run_cli("enterprise", "add", "--uscc", USCC, "--name", "x")
    code, out, _ = run_cli(
        "keys", "create", "--role", "enterprise", "--subject", USCC, "--scope", "consent:write",
        "--label", "CRM", "--json",
    )  # fmt: skip
    assert code == 0
    created = _json(out)
    assert created["key"].startswith(f"ql_{created['id']}_")
    code, out, _ = run_cli("keys", "list", "--json")
    [listed] = _json(out)
    assert listed["id"] == created["id"]
    assert "key" not in listed
    assert created["key"] not in out
    code, out, _ = run_cli("keys", "revoke", created["id"], "--json")
    assert _json(out)["active"] is False
    assert _json(run_cli("keys", "list", "--json")[1]) == []
    code, _, err = run_cli("keys", "revoke", created["id"])
    assert (code, "already revoked" in err) == (2, True)
    code, _, err = run_cli("keys", "create", "--role", "subscriber", "--subject", "+8613800138000")
    assert (code, "one-time SMS code" in err) == (2, True)


def test_sms_outbox_shows_the_development_outbox(run_cli: Run) -> None:
    from quietline.accounts import actions
    from quietline.platform.runtime import Runtime

    get_settings.cache_clear()
    rt = Runtime.build(get_settings())
    try:
        actions.request_code(rt, "13800138000", client="ip:cli")
        actions.request_code(rt, "13900139000", client="ip:cli")
    finally:
        rt.close()
    code, out, _ = run_cli("sms", "outbox", "--json")
    assert code == 0
    messages = _json(out)
    assert [m["to"] for m in messages] == ["+8613900139000", "+8613800138000"]
    assert "验证码" in messages[0]["text"]
    code, out, _ = run_cli("sms", "outbox", "--to", "138 0013 8000", "--limit", "5", "--json")
    assert [m["to"] for m in _json(out)] == ["+8613800138000"]
    code, _, err = run_cli("sms", "outbox", "--limit", "0")
    assert code == 2
    assert "--limit" in err


def test_sms_outbox_refuses_without_the_development_sender(run_cli: Run) -> None:
    code, out, err = run_cli("sms", "outbox", "--json", env={"QUIETLINE_ENV": "production"})
    assert (code, out) == (2, "")
    assert err == (
        "error: the development SMS sender is not configured (set QUIETLINE_ENV=development); "
        "there is no outbox to show\n"
    )
