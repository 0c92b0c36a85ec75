"""The complaints commands as a user runs them (the contract of issue 5): real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "quietline")


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUIETLINE_DATABASE_URL": sqlite_url,
        "QUIETLINE_SECRET_KEY": "cli-test",
        "QUIETLINE_ENV": "test",
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "complaints", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_file_show_respond_breaches(env: dict[str, str]) -> None:
    r = run(
        env,
        "file",
        "--reporter", "13800138000",
        "--reported", "13012345678",
        "--channel", "call",
        "--at", "2025-09-26T09:30:00+08:00",
        "--duration", "42",
        "--form", "recorded",
        "--category", "贷款理财",
        "--received-at", "2025-09-26T10:00:00+08:00",
        "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    case = json.loads(r.stdout)
    assert case["state"] == "forwarded"
    assert case["responsible_carrier"] == "china_unicom"
    # Received Friday 2025-09-26; Sunday Sep 28 is a make-up working day (2025 National Day).
    assert case["deadlines"]["forward"] == "2025-09-30"
    assert all(v is None or len(v) == 10 for v in case["deadlines"].values())

    shown = json.loads(run(env, "show", str(case["id"]), "--json").stdout)
    assert shown["id"] == case["id"]
    assert [h["action"] for h in shown["history"]] == [
        "complaint.received",
        "complaint.accept",
        "complaint.forward",
    ]

    late = json.loads(run(env, "breaches", "--as-of", "2025-10-15T00:00:00+08:00", "--json").stdout)
    assert [(b["id"], b["stage"], b["kind"]) for b in late] == [(case["id"], "forward", "breach")]

    done = run(env, "respond", str(case["id"]), "--result", "substantiated", "--action", "已警示", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "acted"
    again = run(env, "respond", str(case["id"]), "--result", "unsubstantiated", "--action", "x", "--json")
    assert again.returncode == 2
    assert again.stderr.startswith("error: state:")


@pytest.mark.slow  # several CLI processes (each pays the CLI's start-up)
def test_sms_report_and_contradictions(env: dict[str, str]) -> None:
    base = (
        "file",
        "--reporter",
        "13800138000",
        "--reported",
        "10690000123",
        "--at",
        "2026-01-05T08:00:00+08:00",
    )
    ok = run(env, *base, "--channel", "sms", "--text", "【某贷】额度已批 回T退订", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["channel"] == "sms"
    for extra, field in (
        (("--channel", "sms", "--text", "x", "--duration", "3"), "duration"),
        (("--channel", "call", "--text", "短信内容"), "text"),
    ):
        bad = run(env, *base, *extra, "--json")
        assert bad.returncode == 2, (extra, bad.stdout)
        assert bad.stderr.count("\n") == 1
        assert bad.stderr.startswith(f"error: {field}:"), bad.stderr
    missing = run(env, "show", "4242", "--json")
    assert (missing.returncode, missing.stderr) == (2, "error: id: no complaint 4242\n")


@pytest.mark.slow  # several CLI processes (each pays the CLI's start-up)
def test_calendar_commands(env: dict[str, str]) -> None:
    shown = run(env, "calendar", "show", "--from", "2025-09-26", "--to", "2025-10-12", "--add", "3", "--json")
    data = json.loads(shown.stdout)
    assert data["days"]["2025-09-28"] is True
    assert data["days"]["2025-10-08"] is False
    assert data["deadline"] == "2025-09-30"
    gap = run(env, "calendar", "show", "--from", "2031-01-01", "--to", "2031-01-02", "--json")
    assert gap.returncode == 2
    assert "2031" in gap.stderr
    assert run(env, "calendar", "set", "2031-01-01", "--rest", "--note", "元旦").returncode == 0
    assert run(env, "calendar", "declare-year", "2031", "--source", "国办发明电").returncode == 0
    known = json.loads(
        run(env, "calendar", "show", "--from", "2031-01-01", "--to", "2031-01-02", "--json").stdout
    )
    assert known["days"] == {"2031-01-01": False, "2031-01-02": True}


@pytest.mark.slow
def test_import_keeps_good_rows_and_names_bad_ones(env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "reports.csv"
    csv.write_text(
        "reporter,reported,channel,at,received_at,duration,form,text\n"
        "13800138000,13012345678,call,2025-09-26T09:00:00+08:00,2025-09-26T10:00:00+08:00,30,live,\n"
        "13800138001,13012345678,sms,2025-09-26T09:00:00+08:00,,5,,hello\n",
        encoding="utf-8",
    )
    r = run(env, "import", str(csv), "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["filed"] == 1
    assert out["errors"] == [
        {"line": 3, "field": "duration", "message": "duration: an SMS has no call duration"}
    ]
