"""Features, number normalisation and rules on small hand-made call records (DuckDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.numbers import InvalidNumber, parse
from quietline.traffic.features import (
    caller_features,
    hash_is_unique,
    normalise_number,
    prepare,
    quality,
    quiet_engine_deprecations,
    spellings,
    to_arrow,
    usable,
)
from quietline.traffic.rules import Thresholds, findings_from_rows, flag

T0 = int(datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp())  # 10:00 in China


def _run(
    rows: list[dict[str, Any]], th: Thresholds | None = None
) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    th = th or Thresholds()
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    raw = ibis.memtable(pa.Table.from_pylist(rows))
    with quiet_engine_deprecations():
        numbers = con.create_table("numbers", spellings(raw), temp=True)
        prepared = con.create_table("prepared", prepare(raw, numbers), temp=True)
    counts = {r["status"]: r["rows"] for r in to_arrow(quality(prepared)).to_pylist()}
    feats = to_arrow(flag(caller_features(usable(prepared), th.bombing_window_calls), th)).to_pylist()
    con.disconnect()
    return {int(r["number"]): r for r in feats}, counts


def call(
    caller: str, callee: str, t: float, ring: float = 8.0, dur: float = 60.0, **extra: Any
) -> dict[str, Any]:
    return {
        "caller": caller,
        "callee": callee,
        "start_time": datetime.fromtimestamp(t, UTC),
        "ring_seconds": ring,
        "duration_seconds": dur,
        "caller_imei": extra.get("imei", "35000000000001"),
        "trunk": extra.get("trunk", "ran"),
    }


A, B, C = "+8613800138000", "+8613900139000", "+8618600186000"


def test_spellings_of_one_number_are_one_caller_and_reciprocity_counts() -> None:
    rows = [
        call("+86 138 0013 8000", B, T0),
        call("008613800138000", B, T0 + 3600),
        call("13800138000", C, T0 + 7200),
        call("8613800138000", C, T0 + 7300),
        call(B, "138-0013-8000", T0 + 9000),
    ]
    feats, counts = _run(rows)
    a = feats[8613800138000]
    assert a["calls"] == 4
    assert a["distinct_callees"] == 2
    assert a["reciprocity"] == pytest.approx(0.5)  # B called back, C did not
    assert a["in_calls"] == 1
    assert a["outgoing_share"] == pytest.approx(0.8)
    assert counts == {"ok": 5}


def test_rows_missing_fields_or_with_bad_numbers_are_counted_not_used() -> None:
    rows = [
        call(A, B, T0),
        {**call(A, B, T0 + 5), "callee": None},
        {**call(A, B, T0 + 6), "duration_seconds": None},
        call("not a number", B, T0 + 7),
        call(A, "+", T0 + 8),
    ]
    feats, counts = _run(rows)
    assert counts == {"ok": 1, "missing_field": 2, "invalid_number": 2}
    assert feats[8613800138000]["calls"] == 1


def test_bombing_window_and_rule() -> None:
    rows = [call(A, B, T0 + 2.5 * i, ring=2.0, dur=0.0, trunk="sip") for i in range(40)]
    rows += [call(C, B, T0 + 60 * i, ring=20.0, dur=0.0) for i in range(5)]  # an anxious redialler
    feats, _ = _run(rows)
    assert feats[8613800138000]["max_window_calls"] == 40
    assert feats[8613800138000]["is_bombing"]
    assert not feats[8618600186000]["is_bombing"]
    findings = findings_from_rows(list(feats.values()), Thresholds(), data_end=T0 + 100)
    assert [(f.number, f.pattern, f.action) for f in findings] == [(A, "bombing", "temporary_block")]
    ev = findings[0].evidence
    assert ev["victim"] == B
    assert ev["max_calls_to_one_callee_in_10_min"] == 40
    # An old bombing is for review; an allow-listed number is never blocked automatically.
    old = findings_from_rows(list(feats.values()), Thresholds(), data_end=T0 + 86_400)
    assert old[0].action == "review"
    allowed = findings_from_rows(
        list(feats.values()), Thresholds(), data_end=T0 + 100, allow_list=frozenset({8613800138000})
    )
    assert allowed[0].action == "review"
    assert allowed[0].allow_listed


def test_one_ring_bulk_and_spoofed_rules() -> None:
    sweep = [call(A, f"+86139{i:08d}", T0 + 5 * i, ring=1.0, dur=0.0, trunk="sip") for i in range(60)]
    bulk = [call("+862012345678", f"+86150{i:08d}", T0 + 20 * i, ring=9.0, dur=30.0) for i in range(900)]
    spoof = [call(C, B, T0 + 50, trunk="intl-gw-2")]
    roam = [call(B, C, T0 + 70, trunk="roam-intl")]
    foreign = [call("+14155550100", B, T0 + 90, trunk="intl-gw-1")]
    feats, _ = _run(sweep + bulk + spoof + roam + foreign)
    found = {
        f.number: f.pattern for f in findings_from_rows(list(feats.values()), Thresholds(), data_end=None)
    }
    assert found == {A: "one_ring", "+862012345678": "bulk_dialer", C: "spoofed"}
    # Thresholds are configuration: raise the quota and the bulk dialer is within it.
    feats2, _ = _run(bulk, Thresholds(bulk_daily_quota=1000))
    assert not feats2[862012345678]["is_bulk_dialer"]


def test_threshold_overrides_are_checked() -> None:
    th = Thresholds().with_overrides(["bulk_daily_quota=1000", "one_ring_min_short_ring_ratio=0.9"])
    assert th.bulk_daily_quota == 1000
    assert th.one_ring_min_short_ring_ratio == 0.9
    from quietline.platform.errors import InvalidInput

    for bad in (["nope=1"], ["bulk_daily_quota=many"], ["bulk_daily_quota"], ["bulk_daily_quota=-5"]):
        with pytest.raises(InvalidInput):
            Thresholds().with_overrides(bad)


_mobile = st.builds(
    lambda p, rest: f"{p}{rest:08d}",
    st.sampled_from(["138", "139", "186", "189", "199", "170", "150"]),
    st.integers(0, 99_999_999),
)


@st.composite
def _spelling(draw: st.DrawFn) -> tuple[str, str]:
    national = draw(_mobile)
    form = draw(st.sampled_from(["e164", "national", "0086", "86", "grouped", "dashed"]))
    text = {
        "e164": f"+86{national}",
        "national": national,
        "0086": f"0086{national}",
        "86": f"86{national}",
        "grouped": f"+86 {national[:3]} {national[3:7]} {national[7:]}",
        "dashed": f"{national[:3]}-{national[3:7]}-{national[7:]}",
    }[form]
    return text, national


@settings(max_examples=60, deadline=None)
@given(st.lists(_spelling(), min_size=1, max_size=20))
def test_vectorised_normalisation_agrees_with_the_number_parser(samples: list[tuple[str, str]]) -> None:
    t = ibis.memtable(pa.table({"s": [s for s, _ in samples]}))
    out = to_arrow(t.select(n=normalise_number(t.s))).column("n").to_pylist()
    for (text, national), got in zip(samples, out, strict=True):
        assert got == f"86{national}"
        assert parse(text).e164 == f"+{got}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("075512345678", "8675512345678"),
        ("4001234567", "864001234567"),
        ("+14155550100", "14155550100"),
        ("0014155550100", "14155550100"),
        ("12321", "8612321"),
        ("+", None),
        ("abc", None),
        ("+0123456", None),
        ("+1234567890123456", None),
    ],
)
def test_normalisation_of_other_kinds(text: str, expected: str | None) -> None:
    t = ibis.memtable(pa.table({"s": [text]}))
    got = to_arrow(t.select(n=normalise_number(t.s))).column("n").to_pylist()[0]
    assert (got if isinstance(got, str) else None) == expected
    if expected is not None:
        assert parse(text).e164 == "+" + expected
    else:
        with pytest.raises(InvalidNumber):
            parse(text)


def _prepared(rows: list[dict[str, Any]], *, by_hash: bool) -> list[dict[str, Any]]:
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    raw = ibis.memtable(pa.Table.from_pylist(rows))
    with quiet_engine_deprecations():
        numbers = con.create_table("numbers", spellings(raw), temp=True)
        unique = bool(hash_is_unique(numbers).execute())
        out = to_arrow(prepare(raw, numbers, by_hash=by_hash)).to_pylist()
    con.disconnect()
    assert unique
    return sorted(out, key=lambda r: (r["ts"] or 0, r["caller"] or 0, r["callee"] or 0))


def test_joining_spellings_back_on_their_hash_gives_the_same_rows_as_on_their_text() -> None:
    rows = [
        call("+86 138 0013 8000", B, T0),
        call("008613800138000", "18600186000", T0 + 10),
        call("13800138000", "not a number", T0 + 20),
        {**call(A, C, T0 + 30), "callee": None},
        call("075512345678", "+14155550100", T0 + 40, trunk="intl-gw-1"),
    ]
    by_text = _prepared(rows, by_hash=False)
    assert _prepared(rows, by_hash=True) == by_text
    assert [r["caller"] for r in by_text] == [8613800138000] * 4 + [8675512345678]
    assert [r["callee"] for r in by_text] == [8613900139000, 8618600186000, None, None, 14155550100]


def test_evidence_ties_go_to_the_earliest_window_and_day_and_the_lowest_victim() -> None:
    # Two victims bombed in the same 10-minute window with the same number of calls, then a third,
    # equally hard, a day later: the evidence names the first window and the lower victim number.
    v1, v2, v3 = "+8613900000002", "+8613900000001", "+8613700000000"
    rows = [call(A, v, T0 + 10 * i + k, ring=2.0, dur=0.0) for i in range(25) for k, v in enumerate((v1, v2))]
    rows += [call(A, v3, T0 + 86_400 + 10 * i, ring=2.0, dur=0.0) for i in range(50)]
    feats, _ = _run(rows)
    a = feats[8613800138000]
    assert a["max_window_calls"] == 50  # v3's day: 50 calls to one callee
    assert a["window_victim"] == 8613700000000
    rows2 = [
        call(A, v, T0 + 10 * i + k, ring=2.0, dur=0.0) for i in range(25) for k, v in enumerate((v1, v2))
    ]
    rows2 += [
        call(A, v, T0 + 86_400 + 10 * i + k, ring=2.0, dur=0.0)
        for i in range(25)
        for k, v in enumerate((v1, v2))
    ]
    feats2, _ = _run(rows2)
    b = feats2[8613800138000]
    assert b["max_window_calls"] == 25
    assert b["window_victim"] == 8613900000001  # the lower of the two numbers
    assert b["window_bucket"] == T0 // 300  # the earlier day's window
    assert b["max_day_calls"] == 50
    assert b["max_day"] == (T0 + 8 * 3600) // 86_400  # the earlier of two equally busy days


def test_only_flagged_or_risky_callers_become_candidate_rows() -> None:
    from quietline.traffic.detect import candidate_rows

    rows = [call(A, B, T0 + 2.5 * i, ring=2.0, dur=0.0) for i in range(40)]
    rows += [call(C, B, T0 + 60 * i) for i in range(3)]
    rows += [call(B, C, T0 + 500)]
    th = Thresholds()
    con = ibis.duckdb.connect()
    raw = ibis.memtable(pa.Table.from_pylist(rows))
    with quiet_engine_deprecations():
        numbers = con.create_table("numbers", spellings(raw), temp=True)
        prepared = con.create_table("prepared", prepare(raw, numbers), temp=True)
        table = to_arrow(flag(caller_features(usable(prepared), th.bombing_window_calls), th))
    con.disconnect()
    assert table.num_rows == 3
    assert [r["number"] for r in candidate_rows(table, {}, 0.5)] == [8613800138000]
    risky = candidate_rows(table, {8618600186000: 0.9, 8613900139000: 0.1}, 0.5)
    assert sorted(r["number"] for r in risky) == [8613800138000, 8618600186000]


def test_parquet_times_with_a_zone_become_whole_epoch_seconds(tmp_path: Path) -> None:
    """DuckDB reads a TIMESTAMPTZ column through its own epoch() (detect._engine_times): whole
    seconds, rounded down like any timestamp, the same as text times give."""
    import pyarrow.parquet as pq

    from quietline.traffic.detect import connect, read_calls

    when = datetime(2026, 11, 2, 2, 0, 1, 999_000, tzinfo=UTC)
    table = pa.table(
        {
            "caller": [A, A],
            "callee": [B, B],
            "start_time": pa.array([when, when], type=pa.timestamp("ms", tz="UTC")),
            "ring_seconds": [1.0, 1.0],
            "duration_seconds": [0, 5],
        }
    )
    pq.write_table(table, tmp_path / "calls.parquet")
    with connect("duckdb") as con:
        raw = read_calls(con, tmp_path / "calls.parquet")
        numbers = spellings(raw)
        got = to_arrow(usable(prepare(raw, numbers))).column("ts").to_pylist()
    assert got == [int(when.timestamp())] * 2
    assert got[0] == T0 + 1


def test_one_engine_thread_finds_what_every_core_finds(tmp_path: Path) -> None:
    """``detect(threads=1)`` (the benchmark's per-core run, ``traffic detect --threads``) changes
    how the engine schedules the work, never the result."""
    import pyarrow.parquet as pq

    from quietline.platform.errors import InvalidInput
    from quietline.traffic.detect import connect, detect

    rows = [call(A, B, T0 + 2.5 * i, ring=2.0, dur=0.0) for i in range(40)]
    rows += [
        call(C, spelled, T0 + 600 * i)
        for i, spelled in enumerate([A, "13800138000", B, "0086 139 0013 9000"])
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "calls.parquet")
    one = detect(tmp_path / "calls.parquet", threads=1)
    every = detect(tmp_path / "calls.parquet")
    assert one.feature_table.sort_by("number").equals(every.feature_table.sort_by("number"))
    assert [f.as_dict() for f in one.findings] == [f.as_dict() for f in every.findings]
    assert [f.pattern for f in one.findings] == ["bombing"]
    with connect("duckdb", threads=1) as con:
        assert con.raw_sql("SELECT current_setting('threads')").fetchone()[0] == 1
    with pytest.raises(InvalidInput, match="threads must be at least 1"), connect("duckdb", threads=0):
        pass


def test_volume_series_steps_and_counts() -> None:
    from quietline.traffic.features import call_volume, volume_step

    assert volume_step(T0, T0 + 86_399) == 3600
    assert volume_step(T0, T0 + 31 * 86_400 - 1) == 3600  # a month: 744 hourly points
    assert volume_step(T0, T0 + 60 * 86_400) == 7200
    rows = [call(A, B, T0 + 60 * i) for i in range(90)] + [call(C, B, T0 + 10)]
    con = ibis.duckdb.connect()
    raw = ibis.memtable(pa.Table.from_pylist(rows))
    with quiet_engine_deprecations():
        numbers = con.create_table("numbers", spellings(raw), temp=True)
        calls = usable(con.create_table("prepared", prepare(raw, numbers), temp=True))
        series = to_arrow(call_volume(calls, [8618600186000], 3600)).to_pylist()
    con.disconnect()
    assert series == [
        {"start": T0, "calls": 61, "flagged_calls": 1, "step": 3600},
        {"start": T0 + 3600, "calls": 30, "flagged_calls": 0, "step": 3600},
    ]
