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
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

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


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu(pids: set[int]) -> float | None:
    """CPU seconds used so far by local PostgreSQL backends (None when /proc cannot show them)."""
    if not pids:
        return None
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _import(url: str, path: Path) -> dict[str, Any]:
    """Import twice (new numbers, then the same file again: all unchanged) and report wall time and,
    because the benchmark often shares a small machine, the CPU time of this process (which includes
    SQLite's own work) and of the database server processes (PostgreSQL, when local)."""
    migrate.upgrade(url)
    settings = Settings(env=Environment.TEST, database_url=url, secret_key="bench-" + uuid.uuid4().hex)
    rt = Runtime.build(settings)
    backends: set[int] = set()
    if rt.engine.dialect.name == "postgresql":
        event.listen(rt.engine, "connect", lambda dbapi, _record: backends.add(dbapi.info.backend_pid))
        with rt.engine.connect():  # open the pooled connection the import will use, to measure it
            pass
    try:
        cpu, server = _process_cpu(), _backend_cpu(backends)
        summary = actions.import_portability(rt, Actor.operator("bench"), path, ImportMode.ALL_OR_NOTHING)
        cpu, server_after = _process_cpu() - cpu, _backend_cpu(backends)
        again = actions.import_portability(rt, Actor.operator("bench"), path, ImportMode.ALL_OR_NOTHING)
    finally:
        rt.close()
    if not (summary.written and summary.rejected == 0):
        raise SystemExit(f"import failed: {summary.as_dict()['errors'][:3]}")
    result: dict[str, Any] = {
        "seconds": round(summary.seconds, 2),
        "rows_per_second": round(summary.rows_per_second),
        "python_cpu_seconds": round(cpu, 2),
    }
    if server is not None and server_after is not None:
        result["server_cpu_seconds"] = round(server_after - server, 2)
    result |= {
        "details": summary.details,
        "reimport_unchanged_seconds": round(again.seconds, 2),
        "reimport_details": again.details,
    }
    return result


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
    load = os.getloadavg()  # other work on the machine inflates wall times; CPU times are reported too
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
                "cpus": os.cpu_count(),
                "load_average_at_start": [round(x, 2) for x in load],
                "target_seconds": TARGET_SECONDS,
                "results": results,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
