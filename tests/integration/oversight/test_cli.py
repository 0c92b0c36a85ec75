"""``quietline oversight`` through the installed console script: JSON out, one-line errors, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "quietline")


def test_review_and_publish_from_the_cli(sqlite_url: str) -> None:
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": sqlite_url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "s",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "oversight", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    draft = run("review", "2025Q4", "--json")
    assert draft.returncode == 0, draft.stderr
    body = json.loads(draft.stdout)
    assert (body["quarter"], body["calls"]["total"], body["sms"]["total"]) == ("2025Q4", 0, 0)
    bad = run("review", "2025Q5")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: quarter: '2025Q5' is not a quarter; write it like 2026Q3"
    published = run("publish", "2025Q4", "--json")
    assert published.returncode == 0, published.stderr
    listed = run("published", "--json")
    assert [r["quarter"] for r in json.loads(listed.stdout)] == ["2025Q4"]
    future = run("publish", "2099Q1")
    assert future.returncode == 2 and "has not ended yet" in future.stderr
