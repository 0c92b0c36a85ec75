"""The registry and consent commands as a user runs them: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quietline.accounts.model import uscc_check_character

CLI = str(Path(sys.executable).parent / "quietline")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_SECRET_KEY": "cli-test",
        "QUIETLINE_ENV": "test",
    }


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    """Both databases, for commands that write."""
    return _env(db_url)


@pytest.fixture
def sqlite_env(sqlite_url: str) -> dict[str, str]:
    """Input checking happens before any database work: SQLite suffices."""
    return _env(sqlite_url)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_refuse_show_withdraw_and_audit(env: dict[str, str]) -> None:
    r = run(
        env, "registry", "refuse", "+86 138 0013 8000", "--category", "loan_finance", "--category", "保险推销"
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(run(env, "registry", "show", "13800138000", "--json").stdout)
    assert {(x["category"], x["channel"]) for x in shown["refusals"]} == {
        ("loan_finance", "call"),
        ("loan_finance", "sms"),
        ("insurance", "call"),
        ("insurance", "sms"),
    }
    r = run(env, "registry", "withdraw", "13800138000", "--category", "insurance", "--channel", "sms")
    assert r.returncode == 0, r.stderr
    shown = json.loads(run(env, "registry", "show", "13800138000", "--json").stdout)
    assert len(shown["refusals"]) == 3
    tail = json.loads(run(env, "audit", "tail", "--limit", "1", "--json").stdout)
    assert tail[0]["action"] == "registry.withdraw_refusal" and tail[0]["actor"].startswith("operator:cli:")
    assert tail[0]["before"]["active"] is True and tail[0]["after"]["active"] is False


def test_consent_grant_and_revoke(env: dict[str, str]) -> None:
    assert run(env, "enterprise", "add", "--uscc", USCC, "--name", "示例银行", "--json").returncode == 0
    r = run(
        env,
        "consent",
        "grant",
        "--enterprise",
        USCC,
        "--number",
        "13800138000",
        "--category",
        "loan_finance",
        "--evidence",
        "录音编号 A-1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert {c["channel"] for c in json.loads(r.stdout)} == {"call", "sms"}
    r = run(
        env, "consent", "revoke", "--enterprise", USCC, "--number", "13800138000", "--category", "贷款理财"
    )
    assert r.returncode == 0, r.stderr
    r = run(
        env, "consent", "revoke", "--enterprise", USCC, "--number", "13800138000", "--category", "贷款理财"
    )
    assert r.returncode == 2 and "no active consent" in r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("registry", "refuse", "12345", "--category", "all"), "number"),
        (("registry", "refuse", "13800138000", "--category", "lottery"), "category"),
        (("registry", "refuse", "13800138000", "--category", "all", "--channel", "fax"), "channel"),
        (("registry", "refuse", "13800138000", "--category", "all", "--until", "soon"), "until"),
        (("registry", "show", "abc", "--json"), "number"),
        (
            (
                "consent",
                "grant",
                "--enterprise",
                "X",
                "--number",
                "13800138000",
                "--category",
                "insurance",
                "--evidence",
                "e",
            ),
            "enterprise",
        ),
        (("registry", "list-add", "13800138000", "--list", "block", "--prefix", "4"), "value"),
        (("audit", "tail", "--limit", "0"), "limit"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    sqlite_env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    r = run(sqlite_env, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
