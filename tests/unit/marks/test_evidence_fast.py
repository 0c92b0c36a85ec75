"""The reputation model's evidence step, written for speed (``model._clusters``, ``model._evidence``),
agrees exactly with its plain formulation, kept here as the reference: the same clusters in the same
order, so the same floating-point sums, and so the same ``Reputation`` for any marks, devices, bursts,
reporter histories and clock.

Why a reference: bulk ingestion re-judges every busy number on each batch, and the evidence step was
most of that (``benchmarks/bench_marks_ingest.py``); the fast version restructures the loops (no
per-cluster objects, a two-pointer burst scan, one decay per distinct time), which must not change a
single displayed label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.marks import model
from quietline.marks.model import Label, Mark, ReporterProfile, ReputationPolicy, decay, reputation


@dataclass(slots=True)
class _Cluster:
    weight: float
    at: datetime
    established: bool


def reference_clusters(
    marks: Sequence[Mark], weights: Mapping[str, tuple[float, bool]], policy: ReputationPolicy
) -> list[_Cluster]:
    """The plain formulation: one cluster per device (or reporter), then one per burst of
    unestablished accounts, each window scanned from its own start."""
    by_device: dict[tuple[bool, str], _Cluster] = {}
    for mark in marks:
        weight, established = weights[mark.reporter]
        key = (True, mark.device) if mark.device else (False, mark.reporter)
        cluster = by_device.get(key)
        if cluster is None:
            by_device[key] = _Cluster(weight, mark.at, established)
        else:
            cluster.weight = max(cluster.weight, weight)
            cluster.at = max(cluster.at, mark.at)
            cluster.established = cluster.established or established
    ordered = sorted(by_device.values(), key=lambda c: c.at)
    result: list[_Cluster] = []
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j].at - ordered[i].at <= policy.burst_window:
            j += 1
        window = ordered[i:j]
        if len(window) >= policy.burst_min_size:
            result.extend(c for c in window if c.established)
            cheap = [c for c in window if not c.established]
            if cheap:
                result.append(
                    _Cluster(max(c.weight for c in cheap), max(c.at for c in cheap), established=False)
                )
            i = j
        else:
            result.append(ordered[i])
            i += 1
    return result


def reference_evidence(
    marks: Sequence[Mark],
    weights: Mapping[str, tuple[float, bool]],
    now: datetime,
    policy: ReputationPolicy,
    decays: dict[datetime, float] | None = None,
) -> model._Evidence:
    del decays  # the reference computes every decay afresh
    effective = established = 0
    total = 0.0
    for cluster in reference_clusters(marks, weights, policy):
        left = decay(now - cluster.at, policy)
        if left < policy.stale_below:
            continue
        effective += 1
        established += int(cluster.established)
        total += cluster.weight * left
    return model._Evidence(
        reporters=len({m.reporter for m in marks}),
        effective=effective,
        established=established,
        evidence=total,
        last_at=max(m.at for m in marks),
    )


NOW = datetime(2026, 6, 1, tzinfo=UTC)
NUMBERS = ["+8613900000001", "+8613900000002"]
REPORTERS = [f"+86138{i:08d}" for i in range(12)]
LABELS = [
    Label.HARASSMENT,
    Label.REAL_ESTATE,
    Label.FRAUD_SUSPECTED,
    Label.LEGITIMATE,
    Label.DELIVERY_RIDE_HAILING,
]

marks_st = st.lists(
    st.builds(
        Mark,
        st.sampled_from(NUMBERS),
        st.sampled_from(REPORTERS),
        st.sampled_from(LABELS),
        # Minutes apart within a few hours (bursts form and overlap) or days apart (decay, staleness).
        st.one_of(
            st.integers(0, 240).map(lambda m: NOW - timedelta(minutes=m)),
            st.integers(0, 900).map(lambda d: NOW - timedelta(days=d)),
        ),
        st.one_of(st.none(), st.sampled_from(["dev-a", "dev-b", "dev-c"])),
    ),
    max_size=40,
)
profiles_st = st.dictionaries(
    st.sampled_from(REPORTERS),
    st.tuples(st.integers(0, 200), st.integers(0, 5), st.integers(0, 5), st.integers(0, 6), st.booleans()),
).map(
    lambda found: {
        r: ReporterProfile(r, NOW - timedelta(days=age), agreed, disagreed, complaints, vouched)
        for r, (age, agreed, disagreed, complaints, vouched) in found.items()
    }
)
policies_st = st.builds(
    ReputationPolicy,
    min_reporters=st.integers(1, 4),
    min_established=st.just(1),
    burst_min_size=st.integers(2, 5),
    burst_window=st.sampled_from([timedelta(minutes=10), timedelta(hours=1)]),
    stale_below=st.sampled_from([0.0, 0.05, 0.3]),
)


def judged_both_ways(
    marks: list[Mark], profiles: dict[str, ReporterProfile], policy: ReputationPolicy, verified: bool
) -> tuple[object, object]:
    identity = model.VerifiedIdentity(NUMBERS[0], "某某银行", "客服", "o", "p") if verified else None
    fast = reputation(NUMBERS[0], marks, profiles, NOW, policy, verified=identity)
    original = model._evidence
    model._evidence = reference_evidence  # type: ignore[assignment]
    try:
        plain = reputation(NUMBERS[0], marks, profiles, NOW, policy, verified=identity)
    finally:
        model._evidence = original
    return fast, plain


@settings(max_examples=400, deadline=None)
@given(marks_st, profiles_st, policies_st, st.booleans())
def test_fast_evidence_gives_the_same_reputation_as_the_plain_one(
    marks: list[Mark], profiles: dict[str, ReporterProfile], policy: ReputationPolicy, verified: bool
) -> None:
    fast, plain = judged_both_ways(marks, profiles, policy, verified)
    assert fast == plain


def test_the_reference_is_the_model_being_compared() -> None:
    """A guard: the comparison above really swaps the evidence step (else it compares a thing with itself)."""
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> model._Evidence:
        calls.append(1)
        return reference_evidence(*args, **kwargs)  # type: ignore[arg-type]

    marks = [
        Mark(NUMBERS[0], r, Label.HARASSMENT, NOW - timedelta(minutes=i)) for i, r in enumerate(REPORTERS)
    ]
    original = model._evidence
    model._evidence = counting  # type: ignore[assignment]
    try:
        reputation(NUMBERS[0], marks, {}, NOW)
    finally:
        model._evidence = original
    assert calls


@pytest.mark.parametrize("size", [4, 5, 30])
def test_a_burst_of_new_accounts_counts_once_and_established_ones_each(size: int) -> None:
    policy = ReputationPolicy()
    old = {r: ReporterProfile(r, NOW - timedelta(days=400), vouched=True) for r in REPORTERS[:3]}
    marks = [
        Mark(NUMBERS[0], f"+86137{i:08d}", Label.REAL_ESTATE, NOW - timedelta(seconds=i)) for i in range(size)
    ] + [Mark(NUMBERS[0], r, Label.REAL_ESTATE, NOW - timedelta(seconds=5)) for r in REPORTERS[:3]]
    fast, plain = judged_both_ways(marks, old, policy, False)
    assert fast == plain
    rep = reputation(NUMBERS[0], marks, old, NOW, policy)
    lr = rep.label(Label.REAL_ESTATE)
    assert lr is not None
    assert lr.effective == (3 + 1 if size + 3 >= policy.burst_min_size else size + 3)
