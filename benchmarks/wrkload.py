"""Run ``wrk`` (C, event-driven: a load generator whose own cost stays small beside the server's on a
2-core machine) with a Lua script whose ``done`` hook prints one JSON line, and return that line.

Shared by the HTTP benchmarks; each brings its own script (what to request, what to report).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any


def run_wrk(script: str, url: str, *, connections: int, seconds: float) -> dict[str, Any]:
    """``wrk -t1 -c<connections> -d<seconds>s -s <script> <url>``; the JSON its script printed last."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        run = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", handle.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result
