"""Abnormal-traffic detection end to end: DuckDB (Ibis) against a pandas implementation.

Both sides start from the same Parquet file of generated call records and produce the same thing:
numbers normalised from their mixed spellings, the per-caller features (volume, answer rate, ring
and talk time, night share, device and trunk counts, distinct callees, reciprocity, inbound
calls, active days, busiest day, calls to one callee in sliding 10-minute windows) and the four
rule findings. The pandas baseline is vectorised (no Python loop per row). The run checks that
both found the same numbers under the same patterns. Targets (issue 7): 10 M records in ≤ 10 s on
DuckDB and ≥ 5x the pandas baseline; the generator writes 10 M calls in under a minute.

    .venv/bin/python benchmarks/bench_traffic.py              # ~2 M calls
    .venv/bin/python benchmarks/bench_traffic.py --calls 10m  # the issue's 10 M
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from quietline.traffic.detect import detect
from quietline.traffic.generator import generate
from quietline.traffic.rules import Thresholds

#: Subscribers and days giving about the requested number of calls (about 3.2 calls a day each).
SIZES = {"2m": (22_000, 30), "10m": (110_000, 30), "500k": (5_500, 30)}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _normalise(s: pd.Series) -> pd.Series:
    """The same spelling rules as features.normalise_number, with pandas string methods."""
    s = s.str.replace(r"[ \t\-().]", "", regex=True).str.replace(r"^00", "+", regex=True)
    national = "+86" + s.str.replace(r"^(86|0)", "", regex=True)
    e164 = s.where(s.str.startswith("+"), national)
    digits = e164.str.extract(r"^\+([1-9][0-9]{4,14})$", expand=False)
    return pd.to_numeric(digits, errors="coerce").astype("Int64")


def pandas_detect(path: Path, th: Thresholds) -> tuple[set[tuple[int, str]], int]:
    df = pq.read_table(path).to_pandas()
    df["caller_n"] = _normalise(df.caller)
    df["callee_n"] = _normalise(df.callee)
    ok = df.caller_n.notna() & df.callee_n.notna() & df.ring_seconds.notna() & df.duration_seconds.notna()
    ok &= df.start_time.notna()
    c = pd.DataFrame(
        {
            "caller": df.caller_n[ok].astype("int64"),
            "callee": df.callee_n[ok].astype("int64"),
            "ts": df.start_time[ok].dt.as_unit("s").astype("int64"),
            "ring": df.ring_seconds[ok].astype("float64"),
            "dur": df.duration_seconds[ok].astype("float64"),
            "imei": df.caller_imei[ok],
            "trunk": df.trunk[ok].astype("string"),
        }
    )
    local = c.ts + 8 * 3600
    c["day"] = local // 86_400
    c["night"] = (local % 86_400) < 6 * 3600
    c["answered"] = c.dur > 0
    c["one_ring"] = (c.ring <= 3.0) & (c.dur == 0)
    c["short"] = (c.dur > 0) & (c.dur < 10)
    c["intl86"] = c.trunk.str.startswith("intl").fillna(False).astype(bool) & (
        ((c.caller >= 86 * 10**8) & (c.caller < 87 * 10**8))
        | ((c.caller >= 86 * 10**9) & (c.caller < 87 * 10**9))
        | ((c.caller >= 86 * 10**10) & (c.caller < 87 * 10**10))
        | ((c.caller >= 86 * 10**11) & (c.caller < 87 * 10**11))
    )
    g = c.groupby("caller")
    f = g.agg(
        calls=("ts", "size"),
        answered=("answered", "sum"),
        one_ring=("one_ring", "sum"),
        short=("short", "sum"),
        night=("night", "sum"),
        ring_sum=("ring", "sum"),
        talk_sum=("dur", "sum"),
        imei_count=("imei", "nunique"),
        trunk_count=("trunk", "nunique"),
        intl86=("intl86", "sum"),
    )
    pairs = c.groupby(["caller", "callee"]).size().rename("n").reset_index()
    rev = pairs[["caller", "callee"]].rename(columns={"caller": "callee", "callee": "caller"})
    rev["back"] = True
    pairs = pairs.merge(rev, on=["caller", "callee"], how="left")
    pp = pairs.groupby("caller").agg(distinct_callees=("callee", "size"), reciprocated=("back", "count"))
    inbound = c.groupby("callee").size().rename("in_calls")
    days = c.groupby(["caller", "day"]).size().rename("n").reset_index()
    pd_days = days.groupby("caller").agg(active_days=("n", "size"), max_day_calls=("n", "max"))
    heavy = pairs.loc[pairs.n >= max(2, th.bombing_window_calls), ["caller", "callee"]]
    hc = c.merge(heavy, on=["caller", "callee"])
    hc["bucket"] = hc.ts // 300
    b = hc.groupby(["caller", "callee", "bucket"]).size().rename("n").reset_index()
    b = b.sort_values(["caller", "callee", "bucket"])
    same = (
        (b.caller == b.caller.shift()) & (b.callee == b.callee.shift()) & (b.bucket - 1 == b.bucket.shift())
    )
    b["win"] = b.n + np.where(same, b.n.shift().fillna(0), 0)
    win = b.groupby("caller").win.max().rename("max_window_calls")
    f = f.join(pp).join(pd_days).join(win).join(inbound)
    f = f.fillna({"max_window_calls": 1, "in_calls": 0, "distinct_callees": 0, "reciprocated": 0})
    f["distinct_ratio"] = f.distinct_callees / f.calls
    f["calls_per_callee"] = f.calls / f.distinct_callees.clip(lower=1)
    f["answer_rate"] = f.answered / f.calls
    f["short_ring_ratio"] = f.one_ring / f.calls
    f["reciprocity"] = f.reciprocated / f.distinct_callees.clip(lower=1)
    f["outgoing_share"] = f.calls / (f.calls + f.in_calls)
    rules = {
        "bombing": f.max_window_calls >= th.bombing_window_calls,
        "one_ring": (f.calls >= th.one_ring_min_calls)
        & (f.short_ring_ratio >= th.one_ring_min_short_ring_ratio)
        & (f.distinct_ratio >= th.one_ring_min_distinct_ratio)
        & (f.answer_rate <= th.one_ring_max_answer_rate),
        "spoofed": f.intl86 >= max(1, th.spoofed_min_calls),
        "bulk_dialer": (f.max_day_calls > th.bulk_daily_quota)
        & (f.calls_per_callee <= th.bulk_max_calls_per_callee)
        & (f.short_ring_ratio < th.bulk_max_short_ring_ratio),
    }
    found: dict[int, str] = {}
    for pattern, mask in rules.items():  # precedence order, as in rules.PRECEDENCE
        for number in f.index[mask.to_numpy()]:
            found.setdefault(int(number), pattern)
    return set(found.items()), len(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", choices=sorted(SIZES), default="2m", help="Dataset size.")
    parser.add_argument("--data", type=Path, help="Reuse/keep the generated data in this directory.")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    subscribers, days = SIZES[args.calls]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        t0 = time.perf_counter()
        if not (data / "calls.parquet").exists():
            gen = generate(subscribers, days, args.seed, data)
            generator_seconds: float | None = round(gen.seconds, 2)
        else:
            generator_seconds = None
        rows = pq.ParquetFile(data / "calls.parquet").metadata.num_rows
        th = Thresholds()
        t0, c0 = time.perf_counter(), _cpu()
        duck = detect(data / "calls.parquet", thresholds=th)
        duck_s, duck_cpu = time.perf_counter() - t0, _cpu() - c0
        t0, c0 = time.perf_counter(), _cpu()
        pandas_found, pandas_callers = pandas_detect(data / "calls.parquet", th)
        pandas_s, pandas_cpu = time.perf_counter() - t0, _cpu() - c0
    duck_found = {(int(f.number.lstrip("+")), f.pattern) for f in duck.findings}
    print(
        json.dumps(
            {
                "benchmark": "traffic_detect",
                "rows": rows,
                "generator_seconds": generator_seconds,
                "duckdb_seconds": round(duck_s, 2),
                "duckdb_cpu_seconds": round(duck_cpu, 2),
                "duckdb_stage_seconds": duck.timing,
                "baseline": "pandas (vectorised, same features and rules)",
                "pandas_seconds": round(pandas_s, 2),
                "pandas_cpu_seconds": round(pandas_cpu, 2),
                "speedup": round(pandas_s / duck_s, 2),
                "target": {"duckdb_seconds_at_10m": 10, "speedup": 5},
                "callers": {"duckdb": len(duck.features), "pandas": pandas_callers},
                "findings": len(duck_found),
                "same_findings": duck_found == pandas_found,
                "findings_only_duckdb": len(duck_found - pandas_found),
                "findings_only_pandas": len(pandas_found - duck_found),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
