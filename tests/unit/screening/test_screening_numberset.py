"""The compact number set is an exact set: same answers as a Python set, scalar and vectorised, on
both the compiled lookups (``_qtable``) and the NumPy/pure-Python reference paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.screening import _qtable
from quietline.screening.numberset import MAX_NUMBER, MULTIPLIER, NumberSet
from quietline.screening.snapshot import LiveSet

# Clustered values (one mobile range, one region boundary) and anything up to 2**50.
values = st.one_of(
    st.integers(8613800000000, 8613800000400),
    st.integers((1 << 34) - 50, (1 << 34) + 50),
    st.integers(0, MAX_NUMBER),
)


@settings(max_examples=200, deadline=None)
@given(members=st.lists(values, max_size=300), probes=st.lists(values, max_size=300))
def test_membership_matches_a_python_set(members: list[int], probes: list[int]) -> None:
    reference = set(members)
    compiled = NumberSet.from_iterable(members)
    assert compiled.compiled
    for ns in (compiled, compiled.reference()):
        assert len(ns) == len(reference)
        assert sorted(reference) == ns.to_array().tolist()
        queries = [*probes, *members]
        assert [q in ns for q in queries] == [q in reference for q in queries]
        expected = [q in reference for q in queries]
        assert ns.contains_many(np.array(queries, dtype=np.int64)).tolist() == expected


def test_large_clustered_set_with_overfull_buckets() -> None:
    rng = np.random.default_rng(7)
    members = np.unique(8613800000000 + rng.integers(0, 9_000_000, 1_300_000))
    compiled = NumberSet.from_array(members)
    probes = np.concatenate([members[::7], 8613800000000 + rng.integers(0, 9_000_000, 100_000)])
    expected = np.isin(probes, members)
    for ns in (compiled, compiled.reference()):
        assert np.array_equal(ns.contains_many(probes), expected)
        assert [int(p) in ns for p in probes[:20_000]] == expected[:20_000].tolist()
        assert ns.nbytes / len(ns) <= 3.0


@settings(max_examples=100, deadline=None)
@given(
    base=st.lists(values, max_size=100),
    ops=st.lists(st.tuples(st.booleans(), values), max_size=100),
    probes=st.lists(values, max_size=100),
)
def test_live_set_overlay_behaves_like_a_mutable_set(
    base: list[int], ops: list[tuple[bool, int]], probes: list[int]
) -> None:
    compiled = NumberSet.from_iterable(base)
    for ns in (compiled, compiled.reference()):
        reference = set(base)
        live = LiveSet(ns)
        for add, value in ops:
            if add:
                reference.add(value)
                live.add(value)
            else:
                reference.discard(value)
                live.discard(value)
        queries = [*probes, *base, *(v for _, v in ops)]
        expected = [q in reference for q in queries]
        assert len(live) == len(reference)
        assert [q in live for q in queries] == expected
        assert live.contains_many(np.array(queries, dtype=np.int64)).tolist() == expected
        assert live.compacted().to_array().tolist() == sorted(reference)


def test_large_live_set_overlay_through_the_compiled_scalar_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets above ``SMALL_SET`` answer through the compiled table, which reads the overlay at call time."""
    monkeypatch.setattr("quietline.screening.snapshot.SMALL_SET", 10)
    members = list(range(8613800000000, 8613800000100))
    for ns in (NumberSet.from_iterable(members), NumberSet.from_iterable(members).reference()):
        live = LiveSet(ns)
        assert live.members is None
        assert 8613800000005 in live
        live.discard(8613800000005)
        live.add(8613900000000)
        assert 8613800000005 not in live
        assert 8613900000000 in live
        assert 8613800000006 in live
        live.add(8613800000005)
        assert 8613800000005 in live


def test_long_buckets_and_filtered_sets_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """16-bit remainders are compared four to a word over twelve entries, then entry by entry: force
    buckets of about 11 entries (many longer than a window) and check every path against ``np.isin``."""
    rng = np.random.default_rng(11)
    monkeypatch.setattr("quietline.screening.numberset._bucket_bits", lambda count: 18)
    monkeypatch.setattr("quietline.screening.numberset.HUGE_PAGE_MIN", 1 << 20)  # the mapped buffer too
    members = np.unique(8613000000000 + rng.integers(0, 7_000_000_000, 3_000_000))
    compiled = NumberSet.from_array(members)
    probes = np.concatenate([members[::3], 8613000000000 + rng.integers(0, 7_000_000_000, 300_000)])
    for ns in (compiled, compiled.reference()):
        assert ns.nbytes < 3 * len(members)
        assert np.array_equal(ns.contains_many(probes), np.isin(probes, members))
        assert [int(p) in ns for p in probes[:5_000]] == np.isin(probes[:5_000], members).tolist()
    # A set small enough for the byte filter in front of the exact lookup.
    small = NumberSet.from_array(members[:500_000])
    for ns in (small, small.reference()):
        assert np.array_equal(ns.contains_many(probes), np.isin(probes, members[:500_000]))


def test_compiled_lookup_takes_anything_and_answers_only_members() -> None:
    """Not an int, negative, beyond 2**63, another region: never a member, never an error."""
    ns = NumberSet.from_iterable([8613800000000, 5])
    for probe in ("8613800000000", 8613800000000.0, None, -8613800000000, 1 << 70, 1 << 40, 6):
        assert probe not in ns
    assert 8613800000000 in ns
    assert 5 in ns
    assert True not in ns  # True == 1, not a member


def test_compiled_table_refuses_malformed_tables_naming_the_problem() -> None:
    offsets = np.array([0, 1], dtype=np.uint32)
    rems = np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="rem_bits"):
        _qtable.QTable(offsets, rems, 0, 0, MULTIPLIER)
    with pytest.raises(ValueError, match="uint32"):
        _qtable.QTable(offsets.astype(np.uint64), rems, 34, 0, MULTIPLIER)
    with pytest.raises(ValueError, match=r"2\*\*\(34 - rem_bits\)"):
        _qtable.QTable(offsets, rems, 33, 0, MULTIPLIER)
    with pytest.raises(ValueError, match="past the end"):
        _qtable.QTable(np.array([0, 9], dtype=np.uint32), rems, 34, 0, MULTIPLIER)
    with pytest.raises(ValueError, match=r"must not decrease \(entry 2\)"):
        _qtable.QTable(np.array([0, 2, 1], dtype=np.uint32), rems, 33, 0, MULTIPLIER)
    with pytest.raises(TypeError, match="sets"):
        _qtable.QTable(offsets, rems, 34, 0, MULTIPLIER, [1], None)  # type: ignore[arg-type]
    table = _qtable.QTable(offsets, rems, 34, 0, MULTIPLIER)
    with pytest.raises(TypeError, match="sets"):
        table.with_overlay({1}, [2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not initialised"):
        _qtable.QTable.__new__(_qtable.QTable).with_overlay(None, None)
    with pytest.raises(ValueError, match="one byte per number"):
        table.contains_many(np.zeros(3, dtype=np.int64), np.zeros(2, dtype=np.bool_))
    with pytest.raises(ValueError, match="8-byte"):
        table.contains_many(np.zeros(3, dtype=np.int32), np.zeros(3, dtype=np.bool_))
