"""Across processes, as deployed: the CLI contract, and a change committed by one process reaching a
separately running server within a second (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from quietline.accounts.model import uscc_check_character
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.registry import actions as registry
from quietline.vocabulary import Category, Channel

CLI = str(Path(sys.executable).parent / "quietline")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")
OPERATOR = Actor.operator("test")


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_SECRET_KEY": "t",
        "QUIETLINE_ENV": "test",
        **extra,
    }


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow  # about ten CLI processes per database
def test_cli_screen_and_wash_contract(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url)
    assert (
        run(
            env, tmp_path, "registry", "refuse", "13800138000", "--category", "all", "--channel", "call"
        ).returncode
        == 0
    )
    r = run(
        env,
        tmp_path,
        "screen",
        "--caller",
        "13700137000",
        "--callee",
        "13800138000",
        "--category",
        "贷款理财",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["decision"], out["reason"]) == ("block", "refused_category")
    assert out["explanation"]
    r = run(
        _env(db_url, QUIETLINE_CONSENT_POLICY="opt_out"),
        tmp_path,
        "screen",
        "--caller",
        "13700137000",
        "--callee",
        "13900139000",
        "--category",
        "loan_finance",
        "--json",
    )
    assert json.loads(r.stdout)["reason"] == "default_allow"
    bad = run(env, tmp_path, "screen", "--caller", "x", "--callee", "13800138000", "--json")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr

    listing = tmp_path / "list.csv"
    listing.write_text("number\n13800138000\n+86 139 0013 9000\n13900139000\n12\n")
    out_csv = tmp_path / "out.csv"
    opt_out = _env(db_url, QUIETLINE_CONSENT_POLICY="opt_out")
    r = run(
        opt_out,
        tmp_path,
        "wash",
        str(listing),
        "--enterprise",
        USCC,
        "--category",
        "loan_finance",
        "--out",
        str(out_csv),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert {k: summary[k] for k in ("callable", "refused", "invalid", "duplicates")} == {
        "callable": 1,
        "refused": 1,
        "invalid": 1,
        "duplicates": 1,
    }
    assert out_csv.read_text() == "+8613900139000\n"
    r = run(
        env,
        tmp_path,
        "wash",
        str(listing),
        "--enterprise",
        "nope",
        "--category",
        "loan_finance",
        "--out",
        str(out_csv),
        "--json",
    )
    assert r.returncode == 2
    assert "enterprise" in r.stderr
    r = run(env, tmp_path, "screening", "rebuild", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["agree"] is True


@pytest.fixture
def server(
    db_url: str, tmp_path: Path, serve_process: Callable[..., AbstractContextManager[tuple[str, Any]]]
) -> Iterator[str]:
    """``quietline serve`` in its own process, with the development switch that opens /v1/screen."""
    env = _env(db_url, QUIETLINE_ENV="development", QUIETLINE_DEV_OPEN_SCREEN="1")
    with serve_process(env, cwd=tmp_path) as (base, _):
        yield base


@pytest.mark.slow  # a server process per database
def test_a_change_committed_elsewhere_reaches_a_running_server_within_a_second(
    server: str, db_url: str, tmp_path: Path
) -> None:
    rt = Runtime.build(
        Settings(env=Environment.TEST, database_url=db_url, secret_key="t"), sms=RecordingSmsSender()
    )
    latencies = []
    with httpx.Client(base_url=server, timeout=5) as client:
        params = {"caller": "13700137000", "channel": "call", "category": "insurance"}
        assert client.get("/v1/screen", params={**params, "callee": "13800138000"}).status_code == 200
        try:
            for i in range(10):
                callee = parse(f"1380013{8000 + i:04d}")
                registry.refuse(rt, OPERATOR, callee, [Category.INSURANCE], (Channel.CALL,), notify=False)
                committed = time.monotonic()
                while True:
                    reason = client.get("/v1/screen", params={**params, "callee": callee.e164}).json()[
                        "reason"
                    ]
                    if reason == "refused_category":
                        break
                    assert time.monotonic() - committed < 5, "the change never arrived"
                latencies.append(time.monotonic() - committed)
        finally:
            rt.close()
    assert max(latencies) < 1.0, latencies
