"""Benchmark: bulk import of portability (携号转网) records, on SQLite and on PostgreSQL.

Generates N rows (default 1,000,000) of ``number,carrier`` to a temporary CSV, imports them with
``quietline.numbers.actions.import_portability`` (streaming validation, staging, set-based merge,
per-number audit rows and change-feed rows, one transaction) into a freshly migrated scratch database,
and compares with a baseline measured in the same run on the same file: the fastest raw load with no
validation, no audit and no merge (``csv.reader`` + ``executemany`` on SQLite, ``csv.reader`` + ``COPY``
on PostgreSQL). Target (issue 3): 1,000,000 rows within a minute on both.

    .venv/bin/python benchmarks/bench_portability_import.py [--rows N] [--backends sqlite,postgres]

Prints JSON on stdout. PostgreSQL: ``--pg-url`` (default postgresql://postgres@127.0.0.1:5432/test)
is used to create and drop a scratch database; it is skipped with a note when unreachable.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from quietline.numbers import actions
from quietline.platform import migrate
from quietline.platform.actor import Actor
from quietline.platform.bulk import ImportMode
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings

TARGET_SECONDS = 60.0
CARRIERS = ("china_mobile", "china_unicom", "china_telecom", "china_broadnet")
#: Portable ranges of the four basic carriers; each holds 10^8 numbers.
PREFIXES = ("138", "139", "186", "189", "192", "150", "177", "131")


def generate(path: Path, rows: int) -> None:
    """Unique portable mobiles, mostly plain 11 digits, every tenth written as +86 with spaces."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("number,carrier\n")
        chunk: list[str] = []
        for i in range(rows):
            prefix = PREFIXES[i % len(PREFIXES)]
            local = f"{i // len(PREFIXES):08d}"
            number = f"+86 {prefix} {local[:4]} {local[4:]}" if i % 10 == 0 else prefix + local
            chunk.append(f"{number},{CARRIERS[(i * 7) % 4]}\n")
            if len(chunk) >= 100_000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))


def _import(url: str, path: Path) -> dict[str, Any]:
    migrate.upgrade(url)
    settings = Settings(env=Environment.TEST, database_url=url, secret_key="bench-" + uuid.uuid4().hex)
    rt = Runtime.build(settings)
    try:
        summary = actions.import_portability(rt, Actor.operator("bench"), path, ImportMode.ALL_OR_NOTHING)
        again = actions.import_portability(rt, Actor.operator("bench"), path, ImportMode.ALL_OR_NOTHING)
    finally:
        rt.close()
    if not (summary.written and summary.rejected == 0):
        raise SystemExit(f"import failed: {summary.as_dict()['errors'][:3]}")
    return {
        "seconds": round(summary.seconds, 2),
        "rows_per_second": round(summary.rows_per_second),
        "details": summary.details,
        "reimport_unchanged_seconds": round(again.seconds, 2),
        "reimport_details": again.details,
    }


def _rows(path: Path) -> Any:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        yield from reader


def baseline_sqlite(path: Path, db: Path, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE raw_port (number TEXT PRIMARY KEY, carrier TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO raw_port VALUES (?, ?)", _rows(path))
    conn.execute("COMMIT")
    conn.close()
    return {
        "name": "csv.reader + sqlite3 executemany (no validation, audit or merge)",
        **_rate(started, rows),
    }


def baseline_postgres(path: Path, url: str, rows: int) -> dict[str, Any]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_port (number text PRIMARY KEY, carrier text NOT NULL)")
        with conn.cursor() as cursor, cursor.copy("COPY raw_port (number, carrier) FROM STDIN") as copy:
            for row in _rows(path):
                copy.write_row(row)
    return {"name": "csv.reader + psycopg COPY (no validation, audit or merge)", **_rate(started, rows)}


def _rate(started: float, rows: int) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}


def run_sqlite(path: Path, work: Path, rows: int) -> dict[str, Any]:
    result = _import(f"sqlite:///{work / 'bench.db'}", path)
    result["baseline"] = baseline_sqlite(path, work / "baseline.db", rows)
    return result


def run_postgres(path: Path, admin_url: str, rows: int) -> dict[str, Any]:
    import psycopg

    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        return {"skipped": f"PostgreSQL not reachable at {admin_url}: {exc}"}
    name = f"ql_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = admin_url.rsplit("/", 1)[0]
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.execute(f'CREATE DATABASE "{name}_raw"')
    try:
        result = _import(f"{base}/{name}", path)
        result["baseline"] = baseline_postgres(path, f"{base}/{name}_raw", rows)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_raw" WITH (FORCE)')
        admin.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("QUIETLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ql-bench-port-") as tmp:
        work = Path(tmp)
        path = work / "ports.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        generated = time.perf_counter() - started
        file_bytes = path.stat().st_size
        for backend in args.backends.split(","):
            print(f"importing {args.rows:,} rows into {backend} …", file=sys.stderr)
            if backend == "sqlite":
                result = run_sqlite(path, work, args.rows)
            else:
                result = run_postgres(path, args.pg_url, args.rows)
            if "seconds" in result:
                result["slowdown_vs_baseline"] = round(result["seconds"] / result["baseline"]["seconds"], 2)
                result["within_target"] = result["seconds"] <= TARGET_SECONDS
            results[backend] = result
    print(
        json.dumps(
            {
                "benchmark": "portability_import",
                "rows": args.rows,
                "file_bytes": file_bytes,
                "generate_seconds": round(generated, 2),
                "target_seconds": TARGET_SECONDS,
                "results": results,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
