"""The marks CLI contract through the real console entry point (exit codes, JSON, one-line errors):
``marks add``, ``marks show``, ``marks recycle``, ``marks evaluate`` and the operator commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from quietline.cli import common
from quietline.cli.main import app
from quietline.platform.settings import get_settings

Run = Callable[..., tuple[int, str, str]]
NUMBER = "+8613912345678"


@pytest.fixture
def run_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``quietline ARGS`` in-process against a fresh migrated database; returns (code, out, err)."""
    monkeypatch.setenv("QUIETLINE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("QUIETLINE_SECRET_KEY", "cli-test")
    monkeypatch.setenv("QUIETLINE_ENV", "development")

    def run(*args: str) -> tuple[int, str, str]:
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


def ok(run: Run, *args: str) -> Any:
    code, out, err = run(*args)
    assert (code, err) == (0, ""), err
    return json.loads(out)


def add(run: Run, reporter: int, label: str = "房产中介", *extra: str) -> Any:
    return ok(
        run,
        "marks",
        "add",
        "--number",
        "139-1234-5678",
        "--label",
        label,
        "--reporter",
        f"1380013{reporter:04d}",
        "--json",
        *extra,
    )


def test_add_show_until_displayed_then_recycle(run_cli: Run) -> None:
    for i in range(3):
        add(run_cli, i)
    shown = ok(run_cli, "marks", "show", "13912345678", "--json")
    assert shown["number"] == NUMBER
    assert shown["verified_name"] is None
    [real_estate] = [lb for lb in shown["labels"] if lb["label"] == "real_estate"]
    assert (real_estate["count"], real_estate["displayed"]) == (3, False)
    added = add(run_cli, 3, "real_estate", "--at", "2026-11-20T10:00:00+08:00")
    assert added["number"] == NUMBER
    shown = ok(run_cli, "marks", "show", NUMBER, "--json")
    [real_estate] = [lb for lb in shown["labels"] if lb["label"] == "real_estate"]
    assert real_estate["count"] == 4
    assert real_estate["displayed"] is True
    assert 0.0 < real_estate["confidence"] <= 1.0
    assert real_estate["explanation"].startswith("被 4 位用户标记为房产中介")
    assert "8613800130" not in json.dumps(shown)  # no reporter identity is ever shown
    recycled = ok(run_cli, "marks", "recycle", NUMBER, "--json")
    assert recycled["marks_cleared"] == 4
    shown = ok(run_cli, "marks", "show", NUMBER, "--json")
    assert shown["labels"] == []


def test_verified_name_shows_and_crowd_cannot_turn_it_red(run_cli: Run) -> None:
    ok(
        run_cli, "marks", "identity", "register", "--number", NUMBER, "--name", "某某银行信用卡中心",
        "--purpose", "客服", "--owner", "91350100M000100Y43", "--proof", "ledger", "--json",
    )  # fmt: skip
    for i in range(6):
        add(run_cli, i, "fraud_suspected")
    shown = ok(run_cli, "marks", "show", NUMBER, "--json")
    assert shown["verified_name"] == "某某银行信用卡中心 · 客服"
    assert not any(lb["displayed"] for lb in shown["labels"])
    assert shown["review_open"] is not None
    reviews = ok(run_cli, "marks", "review", "list", "--state", "open", "--json")
    assert [r["number"] for r in reviews] == [NUMBER]


def test_user_errors_are_one_line_exit_2(run_cli: Run) -> None:
    for args in (
        ("marks", "add", "--number", NUMBER, "--label", "nonsense", "--reporter", "13800130000", "--json"),
        ("marks", "add", "--number", "12", "--label", "harassment", "--reporter", "13800130000", "--json"),
        (
            "marks",
            "add",
            "--number",
            NUMBER,
            "--label",
            "harassment",
            "--reporter",
            "13800130000",
            "--at",
            "yesterday",
        ),
        ("marks", "show", "not-a-number", "--json"),
        ("marks", "high-risk", "move", NUMBER, "--state", "acted"),
        ("marks", "appeal", "decide", "99", "--outcome", "upheld"),
    ):
        code, _, err = run_cli(*args)
        assert code == 2, args
        assert err.startswith("error: ")
        assert err.count("\n") == 1
        assert "Traceback" not in err


def test_high_risk_and_appeal_commands(run_cli: Run) -> None:
    flagged = ok(
        run_cli, "marks", "high-risk", "flag", NUMBER, "--source", "traffic", "--reason", "异常外呼", "--json"
    )
    assert flagged["state"] == "suspected"
    moved = ok(run_cli, "marks", "high-risk", "move", NUMBER, "--state", "verified", "--json")
    assert moved["screening"] == "block"
    assert [e["number"] for e in ok(run_cli, "marks", "high-risk", "list", "--json")] == [NUMBER]
    for i in range(4):
        add(run_cli, i, "harassment")
    appeal = ok(
        run_cli, "marks", "appeal", "open", "--number", NUMBER, "--label", "harassment",
        "--reason", "本人号码",
        "--proof", "carrier_statement", "--json",
    )  # fmt: skip
    decided = ok(run_cli, "marks", "appeal", "decide", str(appeal["id"]), "--outcome", "upheld", "--json")
    assert decided["outcome"] == "upheld"
    assert decided["owner_notified"] is True
    assert ok(run_cli, "marks", "refresh", "--json") == {"label_changes": 0}


def test_evaluate_prints_the_figures(run_cli: Run) -> None:
    report = ok(run_cli, "marks", "evaluate", "--seed", "3", "--days", "30", "--scale", "0.05", "--json")
    assert report["config"]["seed"] == 3
    assert set(report) >= {"quality", "marks_to_flag_new_spam", "brigades", "targets"}
    assert "precision" in report["quality"]["warnings"]
    assert report["marks_to_flag_new_spam"]["max"] <= 5


def test_identities_follow_the_caller_number_ledger(run_cli: Run) -> None:
    uscc = "91350100M000100Y43"
    ok(run_cli, "enterprise", "add", "--uscc", uscc, "--name", "某某银行信用卡中心", "--json")
    for args in (
        ("callerauth", "ledger", "add-line", "--line", "L1", "--enterprise", uscc, "--name", "客服中心",
         "--kind", "call_centre"),
        ("callerauth", "ledger", "add-number", "--line", "L1", "--number", NUMBER,
         "--purpose", "customer_service"),
    ):  # fmt: skip
        code, _, err = run_cli(*args)
        assert code == 0, err
    assert ok(run_cli, "marks", "identity", "sync-ledger", "--json") == {
        "registered": 1,
        "updated": 0,
        "removed": 0,
        "conflicts": [],
    }
    shown = ok(run_cli, "marks", "show", NUMBER, "--json")
    assert shown["verified_name"] == "某某银行信用卡中心 · 客户服务"
    assert shown["verified"]["proof"] == "ledger"
    code, _, err = run_cli("callerauth", "ledger", "remove-number", "--line", "L1", "--number", NUMBER)
    assert code == 0, err
    assert ok(run_cli, "marks", "identity", "sync-ledger", "--json")["removed"] == 1
    assert ok(run_cli, "marks", "show", NUMBER, "--json")["verified_name"] is None
