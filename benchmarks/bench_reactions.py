"""Reaction latency: a traffic finding of a call bombing in progress, committed by this process, until a
separately running ``quietline serve`` blocks the bomber's calls (the relay job turns the finding into a
system block; the screening engine picks the block up from the change feed).

For each change: commit one ``traffic.finding`` feed row here (as ``traffic detect --store`` does), then ask
the server's ``GET /v1/screen`` until it answers ``system_block``. Baseline in the same run: the same
block written straight to the system block list by this process (screening propagation alone), so the
ratio shows what the relay adds (its one-second job period, the job's own transactions).

    .venv/bin/python benchmarks/bench_reactions.py [--changes 30] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from quietline.numbers import parse
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.reactions.relay import TOPIC_TRAFFIC_FINDING
from quietline.registry import actions as registry
from quietline.registry.model import ListName

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_screening_propagation import on_databases, served

CLI = str(Path(sys.executable).parent / "quietline")
CALLEE = "13800138000"


def _until_blocked(client: httpx.Client, caller: str, since: float) -> float:
    while (
        client.get("/v1/screen", params={"caller": caller, "callee": CALLEE}).json()["reason"]
        != "system_block"
    ):
        if time.perf_counter() - since > 20:
            raise RuntimeError(f"{caller} was not blocked within 20 s")
        time.sleep(0.01)
    return time.perf_counter() - since


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def measure(url: str, workdir: Path, changes: int) -> dict[str, Any]:
    direct: list[float] = []
    relayed: list[float] = []
    # With its jobs on: the server's own scheduler thread runs the relay, as in `make run`.
    with served(url, workdir, jobs=True) as (client, rt):
        client.get("/v1/screen", params={"caller": "17000000000", "callee": CALLEE})  # starts the engine
        operator = Actor.operator("bench")
        for i in range(changes):
            caller = parse(f"1701{i:07d}")
            registry.set_system_list(
                rt, operator, ListName.BLOCK, caller, active=True, reason="bench baseline"
            )
            direct.append(_until_blocked(client, caller.e164, time.perf_counter()))

            bomber = parse(f"1711{i:07d}")
            with rt.sessions.begin() as session:
                changefeed.emit(
                    session,
                    topic=TOPIC_TRAFFIC_FINDING,
                    key=bomber.e164,
                    payload={
                        "number": bomber.e164,
                        "pattern": "bombing",
                        "score": 0.99,
                        "in_progress": True,
                        "evidence": {"calls_30min": 812, "distinct_callees": 1},
                    },
                    at=rt.clock.now(),
                )
            relayed.append(_until_blocked(client, bomber.e164, time.perf_counter()))
    d, r = _summary(direct), _summary(relayed)
    return {
        "changes": changes,
        "finding_to_block": r,
        "baseline_direct_block": d,
        "p50_ratio_to_baseline": round(r["p50_ms"] / max(d["p50_ms"], 0.1), 1),
        "relay_period_ms": 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    out = on_databases(
        measure, args.changes, args.db, {"benchmark": "reactions", "load_average": os.getloadavg()[0]}
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
