"""The same Ibis detector code on local PySpark gives the same findings as on DuckDB (slow job)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quietline.traffic.detect import detect
from quietline.traffic.generator import generate

pytest.importorskip("pyspark", reason="the pyspark backend is the optional extra quietline[spark]")


@pytest.mark.slow
@pytest.mark.timeout(600)
# py4j leaves its gateway sockets to the garbage collector when the session stops.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pyspark_and_duckdb_agree(tmp_path: Path) -> None:
    generate(1500, 3, 2024, tmp_path)
    duck = detect(tmp_path / "calls.parquet", backend="duckdb")
    spark = detect(tmp_path / "calls.parquet", backend="pyspark")
    assert spark.rows == duck.rows
    assert spark.rejected == duck.rejected
    assert {f.pattern for f in duck.findings} >= {"bombing", "one_ring", "bulk_dialer", "spoofed"}
    assert [f.as_dict() for f in spark.findings] == [f.as_dict() for f in duck.findings]
    by_number = {r["number"]: r for r in duck.features}
    for row in spark.features:
        other = by_number[row["number"]]
        for key in (
            "calls",
            "distinct_callees",
            "in_calls",
            "active_days",
            "max_day_calls",
            "max_window_calls",
        ):
            assert row[key] == other[key], key
        assert row["reciprocity"] == pytest.approx(other["reciprocity"])
