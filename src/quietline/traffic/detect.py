"""Batch detection: read call records, compute features on a backend, apply rules and the risk score.

DuckDB (embedded) is the default; PySpark runs the very same Ibis expressions (optional extra
``quietline[spark]``) for data that outgrows one machine (DESIGN.md "Architecture").
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from quietline.platform.errors import InvalidInput
from quietline.traffic.features import (
    call_volume,
    caller_features,
    data_span,
    hash_is_unique,
    normalise_number,
    prepare,
    quality,
    quiet_engine_deprecations,
    spellings,
    to_arrow,
    usable,
    volume_step,
)
from quietline.traffic.rules import RULE_PATTERNS, Finding, Thresholds, findings_from_rows, flag

BACKENDS = ("duckdb", "pyspark")
_SIDE_FILES = ("labels.csv", "allowlist.csv")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass
class DetectionResult:
    findings: list[Finding]
    rows: int
    rejected: dict[str, int]
    #: One row per caller: the features, rule flags (``is_<pattern>``) and evidence columns.
    feature_table: pa.Table = field(repr=False)
    timing: dict[str, float]
    backend: str
    #: First and last call (epoch seconds) of the usable records; None when there were none.
    data_start: float | None = None
    data_end: float | None = None
    #: Calls per time step (``detect(summarise=True)``): ``start`` (epoch seconds), ``step``,
    #: ``calls`` and ``flagged_calls`` (placed by numbers with a finding).
    volume: list[dict[str, int]] = field(default_factory=list, repr=False)

    @property
    def features(self) -> list[dict[str, Any]]:
        """The feature table as dicts (for training and comparisons; a few hundred bytes a caller)."""
        rows: list[dict[str, Any]] = self.feature_table.to_pylist()
        return rows

    @property
    def callers(self) -> int:
        return int(self.feature_table.num_rows)

    def summary(self) -> dict[str, Any]:
        by_pattern: dict[str, int] = {}
        for f in self.findings:
            by_pattern[f.pattern] = by_pattern.get(f.pattern, 0) + 1
        return {
            "backend": self.backend,
            "rows": self.rows,
            "rejected_rows": self.rejected,
            "findings": by_pattern,
            "timing_seconds": self.timing,
        }


def input_files(path: Path) -> tuple[str, list[Path]]:
    """The call-record files of INPUT and their format.

    A directory contributes its Parquet files, or, when it has none, its CSV files other than the
    generator's side files (labels.csv, allowlist.csv), so a generated directory can be given as is.
    """
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", field="input")
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)
        parquet = [p for p in found if _SUFFIXES[p.suffix.lower()] == "parquet"]
        files = parquet or [p for p in found if p.name not in _SIDE_FILES]
        if not files:
            raise InvalidInput(f"{path} holds no .parquet or .csv call-record files", field="input")
    else:
        files = [path]
    kind = _SUFFIXES.get(files[0].suffix.lower())
    if kind is None:
        raise InvalidInput(f"{path}: call records must be .parquet or .csv", field="input")
    return kind, files


@contextmanager
def connect(backend: str, *, threads: int | None = None) -> Iterator[Any]:
    """An Ibis connection on the chosen backend, closed afterwards.

    ``threads`` caps the engine's worker threads (DuckDB's ``threads`` setting, Spark's
    ``local[N]``); by default DuckDB uses every core and Spark two. A carrier running detection
    beside live screening on one box caps it; the benchmark uses it to measure per-core speed.
    """
    if threads is not None and threads < 1:
        raise InvalidInput("threads must be at least 1", field="threads")
    if backend == "duckdb":
        con = ibis.duckdb.connect()
        if threads is not None:
            con.raw_sql(f"SET threads = {int(threads)}")
        # Local times are computed from epoch seconds; pin the session zone so casts never shift.
        con.raw_sql("SET TimeZone = 'UTC'")
        con.raw_sql("SET enable_progress_bar = false")
        # Nothing downstream depends on row order (every result is aggregated or sorted), so DuckDB
        # may write and combine in whatever order its threads finish.
        con.raw_sql("SET preserve_insertion_order = false")
        try:
            yield con
        finally:
            con.disconnect()
    elif backend == "pyspark":
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise InvalidInput(
                "the pyspark backend needs the optional extra: pip install 'quietline[spark]'",
                field="backend",
            ) from None
        session = (
            SparkSession.builder.master(f"local[{threads or 2}]")
            .appName("quietline-traffic")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        try:
            yield ibis.pyspark.connect(session)
        finally:
            session.stop()
    else:
        raise InvalidInput(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}", field="backend")


def read_calls(con: Any, path: Path, *, engine_times: bool = True) -> ir.Table:
    """The call records at ``path`` as a table; a file the engine cannot read is a user error.

    ``engine_times=False`` leaves the columns as stored (see :func:`_engine_times`): a plain table
    that queries reading it twice (the union of callers and callees in ``features.spellings``)
    scan twice, where a derived one is shared through a CTE whose fan-out copies every string
    (measured at 10 M calls, best of five interleaved runs: 2.8 -> 2.5 CPU seconds for that step).
    """
    kind, files = input_files(path)
    try:
        with quiet_engine_deprecations():
            table = _read_calls(con, kind, files)
            return _engine_times(con, table) if engine_times else table
    except InvalidInput:
        raise
    except Exception as exc:  # the engines raise their own error types (duckdb, Spark analysis)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read {path} as {kind} call records: {first}", field="input") from None


def _epoch(ts: Any) -> Any:
    """DuckDB's own ``epoch()``: seconds since 1970 of a TIMESTAMPTZ, read off the stored instant."""


_duckdb_epoch: Callable[[ir.Value], ir.FloatingValue] = ibis.udf.scalar.builtin(
    _epoch, name="epoch", signature=((dt.Timestamp(timezone="UTC"),), dt.float64)
)


def _engine_times(con: Any, table: ir.Table) -> ir.Table:
    """Hand a timestamp-with-zone ``start_time`` to the features as epoch seconds on DuckDB.

    Ibis spells ``epoch_seconds`` on DuckDB as ``EPOCH(CAST(x AS TIMESTAMP))``, and that cast goes
    through the ICU time-zone code row by row (about a second per ten million rows, a tenth of the
    budget); DuckDB's ``epoch()`` reads the instant directly. The features accept numeric times
    (``features.epoch_seconds``), so only this adapter knows the engine.
    """
    if con.name != "duckdb" or "start_time" not in table.columns:
        return table
    dtype = table.start_time.type()
    if not (dtype.is_timestamp() and dtype.timezone is not None):
        return table
    return table.mutate(start_time=_duckdb_epoch(table.start_time))


def _read_calls(con: Any, kind: str, files: list[Path]) -> ir.Table:
    names = [str(p) for p in files]
    if kind == "parquet":
        return con.read_parquet(names if len(names) > 1 else names[0])
    # CSV: numbers must stay text (a leading 0 or + is part of the spelling).
    if con.name == "duckdb":
        with files[0].open(encoding="utf-8", newline="") as fh:
            header = set(next(csv.reader(fh), []))
        text = ("caller", "callee", "caller_imei", "caller_cell")
        return con.read_csv(names, types={c: "VARCHAR" for c in text if c in header})
    return con.read_csv(names, header=True, inferSchema=False)


def materialise(con: Any, expr: ir.Table, name: str) -> ir.Table:
    """Compute the normalised records once; every feature query then reads them (not the files)."""
    if con.name == "duckdb":
        with quiet_engine_deprecations():
            return con.create_table(name, expr, temp=True)
    con.create_view(name, expr, overwrite=True)
    con._session.catalog.cacheTable(name)
    return con.table(name)


def execute_scalar(expr: ir.Scalar) -> Any:
    """Execute a scalar expression on its backend."""
    with quiet_engine_deprecations():
        return expr.execute()


def read_allow_list(path: Path | None) -> frozenset[int]:
    """Numbers (any spelling) from a CSV with a ``number`` column, normalised like the calls."""
    if path is None:
        return frozenset()
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="allow_list")
    con = ibis.duckdb.connect()
    try:
        with quiet_engine_deprecations():
            t = con.read_csv(str(path), types={"number": "VARCHAR"})
        if "number" not in t.columns:
            raise InvalidInput(f"{path} has no 'number' column", field="allow_list")
        n = t.select(n=normalise_number(t.number).cast("int64"))
        values = to_arrow(n.filter(n.n.notnull())).column("n").to_pylist()
    finally:
        con.disconnect()
    return frozenset(int(v) for v in values)


def detect(
    path: Path,
    *,
    backend: str = "duckdb",
    thresholds: Thresholds | None = None,
    allow_list: frozenset[int] = frozenset(),
    risk_model: Any | None = None,
    summarise: bool = False,
    threads: int | None = None,
) -> DetectionResult:
    """Run every detector over the call records at ``path``.

    With ``summarise`` the result also carries the call volume over time (all calls, and those of
    numbers with a finding), which a stored run keeps for the carrier's report page. ``threads``
    caps the engine's threads (see :func:`connect`).
    """
    th = thresholds or Thresholds()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    with connect(backend, threads=threads) as con:
        stored = read_calls(con, path, engine_times=False)
        raw = _engine_times(con, stored)
        numbers = materialise(con, spellings(stored), "quietline_numbers")
        by_hash = bool(execute_scalar(hash_is_unique(numbers)))
        timing["spellings"] = round(time.perf_counter() - t0, 3)  # part of "prepare"
        prepared = materialise(con, prepare(raw, numbers, by_hash=by_hash), "quietline_calls")
        counts = {r["status"]: int(r["rows"]) for r in to_arrow(quality(prepared)).to_pylist()}
        calls = usable(prepared)
        timing["prepare"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        span = to_arrow(data_span(calls)).to_pylist()[0]
        table = to_arrow(flag(caller_features(calls, th.bombing_window_calls), th))
        timing["features"] = round(time.perf_counter() - t1, 3)
        t2 = time.perf_counter()
        scores: dict[int, float] = {}
        if risk_model is not None:
            scores = risk_model.score_table(table)
            timing["risk_score"] = round(time.perf_counter() - t2, 3)
        # Only candidates become Python objects: a rule matched, or the risk score reached its threshold.
        findings = findings_from_rows(
            candidate_rows(table, scores, th.fraud_risk_min_score),
            th,
            data_end=span["last_ts"],
            allow_list=allow_list,
            risk_scores=scores,
        )
        volume: list[dict[str, int]] = []
        if summarise and span["rows"]:
            t3 = time.perf_counter()
            flagged = sorted({int(f.number.lstrip("+")) for f in findings})
            step = volume_step(int(span["first_ts"]), int(span["last_ts"]))
            volume = to_arrow(call_volume(calls, flagged, step)).to_pylist()
            timing["summary"] = round(time.perf_counter() - t3, 3)
    timing["total"] = round(time.perf_counter() - t0, 3)
    total = sum(counts.values())
    rejected = {k: v for k, v in counts.items() if k != "ok"}
    return DetectionResult(
        findings,
        total,
        rejected,
        table,
        timing,
        backend,
        data_start=span["first_ts"],
        data_end=span["last_ts"],
        volume=volume,
    )


def candidate_rows(table: pa.Table, scores: dict[int, float], min_score: float) -> list[dict[str, Any]]:
    """The feature rows that can become findings, as dicts (column-wise selection, no loop per caller)."""
    if table.num_rows == 0:
        return []
    mask = np.zeros(table.num_rows, dtype=bool)
    for p in RULE_PATTERNS:
        mask |= table.column(f"is_{p}").to_numpy(zero_copy_only=False).astype(bool)
    if scores:
        numbers = table.column("number").to_numpy(zero_copy_only=False)
        risky = np.fromiter((n for n, v in scores.items() if v >= min_score), dtype=np.int64)
        mask |= np.isin(numbers, risky)
    rows: list[dict[str, Any]] = table.filter(pa.array(mask)).to_pylist()
    return rows
