"""The compact number set is an exact set: same answers as a Python set, scalar and vectorised."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.screening.numberset import MAX_NUMBER, NumberSet
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
    ns = NumberSet.from_iterable(members)
    assert len(ns) == len(reference)
    assert sorted(reference) == ns.to_array().tolist()
    queries = [*probes, *members]
    assert [q in ns for q in queries] == [q in reference for q in queries]
    assert ns.contains_many(np.array(queries, dtype=np.int64)).tolist() == [q in reference for q in queries]


def test_large_clustered_set_with_overfull_buckets() -> None:
    rng = np.random.default_rng(7)
    members = np.unique(8613800000000 + rng.integers(0, 9_000_000, 1_300_000))
    ns = NumberSet.from_array(members)
    probes = np.concatenate([members[::7], 8613800000000 + rng.integers(0, 9_000_000, 100_000)])
    expected = np.isin(probes, members)
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
    reference = set(base)
    live = LiveSet(NumberSet.from_iterable(base))
    for add, value in ops:
        if add:
            reference.add(value)
            live.add(value)
        else:
            reference.discard(value)
            live.discard(value)
    queries = [*probes, *base, *(v for _, v in ops)]
    assert len(live) == len(reference)
    assert [q in live for q in queries] == [q in reference for q in queries]
    assert live.contains_many(np.array(queries, dtype=np.int64)).tolist() == [q in reference for q in queries]
    assert live.compacted().to_array().tolist() == sorted(reference)


def test_long_buckets_and_filtered_sets_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """16-bit remainders are compared four to a word over twelve entries, then entry by entry: force
    buckets of about 11 entries (many longer than a window) and check every path against ``np.isin``."""
    rng = np.random.default_rng(11)
    monkeypatch.setattr("quietline.screening.numberset._bucket_bits", lambda count: 18)
    monkeypatch.setattr("quietline.screening.numberset.HUGE_PAGE_MIN", 1 << 20)  # the mapped buffer too
    members = np.unique(8613000000000 + rng.integers(0, 7_000_000_000, 3_000_000))
    ns = NumberSet.from_array(members)
    assert ns.nbytes < 3 * len(members)
    probes = np.concatenate([members[::3], 8613000000000 + rng.integers(0, 7_000_000_000, 300_000)])
    assert np.array_equal(ns.contains_many(probes), np.isin(probes, members))
    assert [int(p) in ns for p in probes[:5_000]] == np.isin(probes[:5_000], members).tolist()
    # A set small enough for the byte filter in front of the exact lookup.
    small = NumberSet.from_array(members[:500_000])
    assert np.array_equal(small.contains_many(probes), np.isin(probes, members[:500_000]))
