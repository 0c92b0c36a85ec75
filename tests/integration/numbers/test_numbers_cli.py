"""``quietline numbers`` as a user runs it: real processes, real exit codes, both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "quietline")


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUIETLINE_DATABASE_URL": url,
        "QUIETLINE_SECRET_KEY": "cli-test",
        "QUIETLINE_ENV": "test",
    }


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    """Both databases (the full flow)."""
    return _env(db_url)


@pytest.fixture
def sqlite_env(sqlite_url: str) -> dict[str, str]:
    """Bad-input checks fail before touching the database: one backend is enough (process start-up
    dominates these tests)."""
    return _env(sqlite_url)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_info_import_and_info_again(env: dict[str, str], tmp_path: Path) -> None:
    r = run(env, "numbers", "info", "+86 138 0013 8000", "--json")
    assert r.returncode == 0, r.stderr
    before = json.loads(r.stdout)
    assert {k: before[k] for k in ("e164", "type", "original_carrier", "current_carrier")} == {
        "e164": "+8613800138000",
        "type": "mobile",
        "original_carrier": "china_mobile",
        "current_carrier": "china_mobile",
    }
    path = tmp_path / "ports.csv"
    path.write_text("number,carrier\n13800138000,china_unicom\n", encoding="utf-8")
    r = run(env, "numbers", "import-portability", str(path), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["written"], summary["accepted"], summary["details"]["inserted"]) == (True, 1, 1)
    after = json.loads(run(env, "numbers", "info", "13800138000", "--json").stdout)
    assert (after["original_carrier"], after["current_carrier"], after["ported"]) == (
        "china_mobile",
        "china_unicom",
        True,
    )


@pytest.mark.parametrize("number", ["abc", "14012345678"])
def test_invalid_number_exits_2_with_one_line(sqlite_env: dict[str, str], number: str) -> None:
    r = run(sqlite_env, "numbers", "info", number, "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: number: ")


def test_bad_rows_are_listed_and_the_exit_code_tells_the_outcome(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    env = sqlite_env
    path = tmp_path / "ports.csv"
    path.write_text("number,carrier\n13800138000,china_unicom\n17012345678,china_mobile\n", encoding="utf-8")
    r = run(env, "numbers", "import-portability", str(path))
    assert r.returncode == 2
    assert "nothing was written" in r.stderr
    assert "resale" in r.stdout  # why the row was refused …
    assert "│ 3 " in r.stdout  # … and on which line
    r = run(env, "numbers", "import-portability", str(path), "--mode", "skip-bad-rows", "--json")
    assert r.returncode == 1
    summary = json.loads(r.stdout)
    assert summary["errors"][0]["line"] == 3
    assert summary["details"]["inserted"] == 1


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, (), "no such file"),
        ("number,carier\n", (), "missing column 'carrier'"),
        ("number,carrier\n", ("--mode", "sometimes"), "--mode"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    sqlite_env: dict[str, str], tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    r = run(sqlite_env, "numbers", "import-portability", str(path), *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert message in r.stderr
