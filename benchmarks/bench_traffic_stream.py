"""The API's streaming bombing detector (``traffic.live.LiveDetectors``, its state in the database so
every server worker sees every record) against the in-process ``BombingDetector`` on the same events.

Traffic: a carrier's records in batches of ``--batch`` (a switch's second), ``--callers`` ordinary
callers dialling at random plus bombers dialling one victim every 2.5 s. Both detectors get the same
batches in the same order; the run checks they raise the same alerts (caller, victim, onset, time).
Reported: records per second, batch latency (p50/p99) and the ratio to the in-process baseline,
on SQLite and PostgreSQL (fresh databases).

    .venv/bin/python benchmarks/bench_traffic_stream.py [--records 200000] [--batch 1000] [--db both]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.traffic.live import LiveDetectors
from quietline.traffic.streaming import BombingDetector, CallEvent
from quietline.vocabulary import Role

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_screening_propagation import on_databases

T0 = 1_790_000_000.0
#: The carrier posting its records (as its API key would authenticate it).
CARRIER = Actor(Role.CARRIER, "china_mobile", key_id="bench")


def traffic(records: int, batch: int, callers: int, bombers: int, seed: int) -> list[list[CallEvent]]:
    """Batches of one second each, in time order."""
    rng = random.Random(seed)
    batches: list[list[CallEvent]] = []
    t = T0
    n = 0
    while n < records:
        events = [
            CallEvent(
                f"+86139{rng.randrange(callers):08d}", f"+86186{rng.randrange(10**8):08d}", t + rng.random()
            )
            for _ in range(batch - bombers)
        ]
        if int(t - T0) % 5 < 2:  # each bomber dials its victim every 2.5 s
            events += [CallEvent(f"+86170{b:08d}", f"+86138{b:08d}", t + 0.5) for b in range(bombers)]
        events.sort(key=lambda e: e.ts)
        batches.append(events)
        n += len(events)
        t += 1.0
    return batches


def _reference(batches: list[list[CallEvent]]) -> tuple[list[tuple[str, str, str]], float]:
    det = BombingDetector()
    found = []
    started = time.perf_counter()
    for events in batches:
        for e in events:
            alert = det.observe(e)
            if alert is not None:
                found.append((alert.caller, alert.callee, alert.onset))
    return found, time.perf_counter() - started


def measure_on(
    url: str, _work: Path, _n: int, *, batches: list[list[CallEvent]], actor: Actor
) -> dict[str, Any]:
    migrate.upgrade(url)
    rt = Runtime.build(
        Settings(env=Environment.TEST, database_url=url, secret_key="bench"), sms=RecordingSmsSender()
    )
    try:
        live = LiveDetectors(rt)
        reference, baseline_s = _reference(batches)
        latencies = []
        found = []
        started = time.perf_counter()
        for events in batches:
            t = time.perf_counter()
            result = live.feed(actor, events)
            latencies.append(time.perf_counter() - t)
            found += [(a.number, a.evidence["victim"], a.evidence["onset"]) for a in result.alerts]
        shared_s = time.perf_counter() - started
        reference_after, baseline_after = _reference(batches)  # the baseline again: the load drifts
    finally:
        rt.close()
    records = sum(len(b) for b in batches)
    baseline = (baseline_s + baseline_after) / 2
    ms = np.array(latencies) * 1000
    return {
        "records": records,
        "batches": len(batches),
        "shared_records_per_s": round(records / shared_s),
        "in_process_records_per_s": round(records / baseline),
        "ratio_in_process_to_shared": round(shared_s / baseline, 1),
        "batch_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "batch_p99_ms": round(float(np.percentile(ms, 99)), 1),
        "alerts": len(found),
        "same_alerts": sorted(found) == sorted(reference) == sorted(reference_after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--callers", type=int, default=50_000)
    parser.add_argument("--bombers", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    batches = traffic(args.records, args.batch, args.callers, args.bombers, args.seed)
    actor = CARRIER
    load = os.getloadavg()
    out: dict[str, Any] = {"benchmark": "traffic_stream", "batch": args.batch, "load_average_start": load}

    def measure(url: str, work: Path, n: int) -> dict[str, Any]:
        return measure_on(url, work, n, batches=batches, actor=actor)

    on_databases(measure, 0, args.db, out)
    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
