"""The synthetic call-record generator: schema, determinism, ground truth."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from quietline.platform.errors import InvalidInput
from quietline.traffic.generator import ABUSE_PATTERNS, TRUNKS, generate

SCHEMA = [
    "caller",
    "callee",
    "start_time",
    "ring_seconds",
    "duration_seconds",
    "caller_imei",
    "callee_carrier",
    "trunk",
    "caller_cell",
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "a"
    generate(2000, 5, 11, out)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(pq.read_table(path).to_pandas().to_csv().encode()).hexdigest()


def test_writes_the_contract_schema_and_labels(small: Path) -> None:
    table = pq.read_table(small / "calls.parquet")
    assert table.column_names == SCHEMA
    assert table.num_rows > 20_000
    assert set(pc.unique(table.column("trunk").combine_chunks().dictionary_decode()).to_pylist()) <= set(
        TRUNKS
    )
    with (small / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    patterns = Counter(r["pattern"] for r in rows)
    for p in ABUSE_PATTERNS:
        assert patterns[p] > 0, p
    assert patterns["delivery"] > 0
    assert patterns["normal"] > 1000
    assert all(r["number"].startswith("+") for r in rows)
    assert len({r["number"] for r in rows}) == len(rows), "a number has exactly one label"


def test_same_seed_same_data_other_seed_other_data(small: Path, tmp_path: Path) -> None:
    generate(2000, 5, 11, tmp_path / "b")
    generate(2000, 5, 12, tmp_path / "c")
    assert _digest(small / "calls.parquet") == _digest(tmp_path / "b" / "calls.parquet")
    assert _digest(small / "calls.parquet") != _digest(tmp_path / "c" / "calls.parquet")
    assert (small / "labels.csv").read_bytes() == (tmp_path / "b" / "labels.csv").read_bytes()


def test_bombers_dial_every_two_to_three_seconds(small: Path) -> None:
    table = pq.read_table(small / "calls.parquet").to_pandas()
    with (small / "labels.csv").open() as fh:
        bombers = {r["number"] for r in csv.DictReader(fh) if r["pattern"] == "bombing"}
    caller = table.caller.str.replace(" ", "").str.replace(r"^(00|\+)", "", regex=True)
    caller = caller.where(caller.str.startswith("86"), "86" + caller)
    rows = table[("+" + caller).isin(bombers)].sort_values("start_time")
    assert len(rows) > 100
    first = rows[rows.caller == rows.caller.iloc[0]]
    gaps = first.start_time.diff().dt.total_seconds().dropna()
    typical = gaps[gaps < 60]
    assert 1.5 <= typical.median() <= 3.5
    assert rows.ring_seconds.max() <= 2.5


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        generate(10, 5, 1, tmp_path)
    assert err.value.field == "subscribers"
    with pytest.raises(InvalidInput):
        generate(1000, 0, 1, tmp_path)
    with pytest.raises(InvalidInput):
        generate(1000, 5, -1, tmp_path)
