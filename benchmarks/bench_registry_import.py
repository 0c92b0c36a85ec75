"""Refusal import rate: N rows of ``number,category,channel`` through ``quietline registry import``'s
code path (streaming parse and validation, staging, set-based merge with per-number audit and change-feed
rows), on SQLite and on PostgreSQL.

Baseline, measured in the same run on the same database: loading the same rows, already parsed, into a
plain table with executemany (SQLite) or COPY (PostgreSQL) — the floor any import must pay.
The issue's figure: 1,000,000 rows within a minute on both databases.

    .venv/bin/python benchmarks/bench_registry_import.py [--rows 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import Column, MetaData, String, Table, insert

from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sqlbulk import stage_rows
from quietline.registry.imports import import_refusals
from quietline.vocabulary import Category

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CHANNELS = ("call", "sms")


def make_file(path: Path, rows: int, seed: int = 7) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    categories = [c.value for c in Category] + ["all"]
    prefixes = ("138", "139", "150", "186", "189", "199", "177", "135")
    data = []
    seen: set[int] = set()
    while len(data) < rows:
        n = int(rng.choice(prefixes)) * 10**8 + rng.randrange(10**8)
        if n in seen:
            continue
        seen.add(n)
        data.append((str(n), rng.choice(categories), rng.choice(CHANNELS)))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "category", "channel"])
        writer.writerows(data)
    return data


def baseline(rt: Runtime, data: list[tuple[str, str, str]]) -> float:
    table = Table(
        "bench_baseline_" + uuid.uuid4().hex[:6],
        MetaData(),
        Column("number", String(24)),
        Column("category", String(32)),
        Column("channel", String(8)),
    )
    started = time.perf_counter()
    with rt.sessions.begin() as session:
        table.create(session.connection())
        for i in range(0, len(data), 10_000):
            chunk = [("+86" + n, c, ch) for n, c, ch in data[i : i + 10_000]]
            if session.connection().dialect.name == "postgresql":
                stage_rows(session, table, ("number", "category", "channel"), chunk)
            else:
                session.execute(
                    insert(table), [{"number": a, "category": b, "channel": c} for a, b, c in chunk]
                )
    return time.perf_counter() - started


def run_one(url: str, path: Path, data: list[tuple[str, str, str]], tmp: Path) -> dict[str, object]:
    migrate.upgrade(url)
    rt = Runtime.build(Settings(env=Environment.TEST, database_url=url, secret_key="bench"))
    try:
        base = baseline(rt, data)
        started = time.perf_counter()
        summary = import_refusals(rt, Actor.operator("bench"), path)
        took = time.perf_counter() - started
        assert summary.written and summary.accepted == len(data), summary.errors[:3]
    finally:
        rt.close()
    return {
        "rows": len(data),
        "import_seconds": round(took, 2),
        "import_rows_per_second": round(len(data) / took),
        "baseline_seconds": round(base, 2),
        "baseline_rows_per_second": round(len(data) / base),
        "import_vs_baseline_time_ratio": round(took / base, 2),
        "within_a_minute": took <= 60,
        "refusals_written": summary.details.get("refusals"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        path = tmp / "refusals.csv"
        data = make_file(path, args.rows)
        results: dict[str, object] = {
            "benchmark": "registry_refusal_import",
            "file_bytes": path.stat().st_size,
        }
        results["sqlite"] = run_one(f"sqlite:///{tmp / 'bench.db'}", path, data, tmp)
        if not args.no_postgres:
            name = "ql_bench_" + uuid.uuid4().hex[:8]
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                results["postgresql"] = run_one(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, path, data, tmp)
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
