"""`quietline numbers recycle` (the marks issue's contract) clears the number's marks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "quietline")


def test_numbers_recycle_clears_marks(sqlite_url: str) -> None:
    env = {
        **os.environ,
        "QUIETLINE_DATABASE_URL": sqlite_url,
        "QUIETLINE_ENV": "test",
        "QUIETLINE_SECRET_KEY": "t",
    }

    def run(*args: str) -> dict[str, object]:
        done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    run(
        "marks",
        "add",
        "--number",
        "13012345678",
        "--label",
        "real_estate",
        "--reporter",
        "13800138000",
        "--json",
    )
    assert run("marks", "show", "13012345678", "--json")["labels"] != []
    assert run("numbers", "recycle", "13012345678", "--json")["marks_cleared"] == 1
    assert run("marks", "show", "13012345678", "--json")["labels"] == []
