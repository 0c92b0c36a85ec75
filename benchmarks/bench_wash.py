"""Bulk wash of a call list against a large 谢绝来电 registry, end to end, against DuckDB in the same run.

The list (``--lines``) mixes plain 11-digit mobiles, ``+86``-prefixed ones, duplicates (5 %) and invalid
lines (1 %); half of its numbers are registered. The registry holds ``--numbers`` refusing numbers.

- quietline: read the file, parse every line, de-duplicate, decide each unique number against the
  snapshot (opt-out policy, so refusals decide), write the callable numbers in E.164;
- baseline: DuckDB reading the same CSV, normalising the numbers in SQL, de-duplicating, anti-joining
  against the registry table and writing the result CSV (``COPY … TO``), with all its threads.

Target: quietline no slower than DuckDB. Both produce the same set of callable numbers (checked).

    .venv/bin/python benchmarks/bench_wash.py                                   # 1 M lines, 10 M registry
    .venv/bin/python benchmarks/bench_wash.py --lines 10000000 --numbers 100000000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from quietline.platform.settings import ConsentPolicy
from quietline.screening import wash
from quietline.screening.snapshot import RegistryState, Snapshot
from quietline.vocabulary import Category, Channel

ENTERPRISE = "911100001000000009"
PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        155,
        156,
        158,
        159,
        166,
        176,
        177,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        198,
        199,
    ],
    dtype=np.int64,
)


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    return 86 * 10**11 + PREFIXES[rng.integers(0, len(PREFIXES), n)] * 10**8 + rng.integers(0, 10**8, n)


def write_list(path: Path, rng: np.random.Generator, refusing: np.ndarray, lines: int) -> None:
    numbers = np.where(
        rng.random(lines) < 0.5, refusing[rng.integers(0, len(refusing), lines)], mobiles(rng, lines)
    )
    dup = rng.random(lines) < 0.05
    numbers[dup] = numbers[rng.integers(0, lines, int(dup.sum()))]
    text = wash.e164_lines(numbers).decode().split("\n")[:-1]
    out = []
    for i, line in enumerate(text):
        if i % 100 == 7:
            out.append("n/a")  # invalid
        elif i % 3 == 0:
            out.append(line)  # +86…
        else:
            out.append(line[3:])  # plain 11 digits
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    refusing = np.unique(mobiles(rng, args.numbers))
    snap = Snapshot.compile(RegistryState(refusals={("all", "call"): refusing}), policy=ConsentPolicy.OPT_OUT)
    result: dict[str, Any] = {
        "benchmark": "wash",
        "numbers": len(refusing),
        "lines": args.lines,
        "cpu_count": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        src, ours, theirs = Path(tmp) / "list.csv", Path(tmp) / "ours.csv", Path(tmp) / "duck.csv"
        write_list(src, rng, refusing, args.lines)

        t = time.perf_counter()
        res = wash.wash(
            snap, src.read_bytes(), enterprise=ENTERPRISE, category=Category.INSURANCE, channel=Channel.CALL
        )
        ours.write_bytes(wash.e164_lines(res.callable_numbers))
        ours_s = time.perf_counter() - t

        import duckdb

        con = duckdb.connect()
        con.register("refusing_arr", {"number": refusing})
        con.execute("CREATE TABLE refused AS SELECT number FROM refusing_arr")
        t = time.perf_counter()
        con.execute(
            f"""
            COPY (
              WITH raw AS (
                SELECT regexp_replace(line, '[^0-9]', '', 'g') AS d
                FROM read_csv('{src}', header = false, columns = {{'line': 'VARCHAR'}}, delim = '\\t')
              ),
              parsed AS (
                SELECT DISTINCT CAST(CASE WHEN length(d) = 13 THEN d ELSE '86' || d END AS BIGINT) AS n
                FROM raw
                WHERE (length(d) = 11 AND d[1] = '1') OR (length(d) = 13 AND d[1:3] = '861')
              )
              SELECT '+' || CAST(n AS VARCHAR) FROM parsed p ANTI JOIN refused r ON p.n = r.number
            ) TO '{theirs}' (HEADER false, QUOTE '')
            """
        )
        duck_s = time.perf_counter() - t
        ours_set = set(ours.read_text().split())
        duck_set = set(theirs.read_text().split())
        assert ours_set == duck_set, (sorted(ours_set - duck_set)[:5], sorted(duck_set - ours_set)[:5])
    result.update(
        {
            "summary": res.summary(),
            "quietline_s": round(ours_s, 2),
            "duckdb_s": round(duck_s, 2),
            "duckdb_threads": int(con.execute("SELECT current_setting('threads')").fetchone()[0]),  # type: ignore[index]
            "quietline_lines_per_s": round(args.lines / ours_s),
            "speedup_vs_duckdb": round(duck_s / ours_s, 2),
            "target": "quietline_s <= duckdb_s",
        }
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
