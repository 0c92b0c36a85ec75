"""The reputation model: thresholds, decay, credibility, device and burst merging, verified identities,
recycling and explanations — pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.marks.model import (
    UNWANTED_LABELS,
    HighRiskState,
    Label,
    Mark,
    ReporterProfile,
    ReputationPolicy,
    Severity,
    VerifiedIdentity,
    can_move,
    credibility,
    decay,
    format_ago,
    label_of,
    live_marks,
    reputation,
)
from quietline.vocabulary import Category

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NUMBER = "+8613912345678"
POLICY = ReputationPolicy()


def veteran(reporter: str, **kwargs: int) -> ReporterProfile:
    return ReporterProfile(reporter, NOW - timedelta(days=400), **kwargs)


def newcomer(reporter: str) -> ReporterProfile:
    return ReporterProfile(reporter, NOW - timedelta(hours=1))


def marks_from(
    n: int, label: Label = Label.REAL_ESTATE, *, start: int = 0, spacing: timedelta = timedelta(hours=1)
) -> list[Mark]:
    return [
        Mark(NUMBER, f"r{start + i}", label, NOW - timedelta(days=3) + i * spacing, device=None)
        for i in range(n)
    ]


def veterans(marks: list[Mark]) -> dict[str, ReporterProfile]:
    return {m.reporter: veteran(m.reporter) for m in marks}


def test_marketing_labels_are_exactly_the_vocabulary_categories() -> None:
    for category in Category:
        label = Label.parse(category.value)
        assert label.label == category.label
        assert label.category is category
    assert {lb.category for lb in Label if lb.category} == set(Category)
    assert Label.parse("响一声") is Label.ONE_RING
    assert label_of("fraud_suspected") is Label.FRAUD_SUSPECTED


def test_severity_groups() -> None:
    assert Label.LEGITIMATE.severity is Severity.POSITIVE
    assert Label.DELIVERY_RIDE_HAILING.severity is Severity.INFO
    assert Label.LEGITIMATE not in UNWANTED_LABELS
    assert Label.DELIVERY_RIDE_HAILING not in UNWANTED_LABELS
    assert {Label.HARASSMENT, Label.FRAUD_SUSPECTED, Label.ONE_RING, Label.REAL_ESTATE} <= UNWANTED_LABELS


def test_label_needs_four_distinct_reporters_by_default() -> None:
    three = marks_from(3)
    rep = reputation(NUMBER, three, veterans(three), NOW)
    assert not rep.displayed
    four = marks_from(4)
    rep = reputation(NUMBER, four, veterans(four), NOW)
    shown = rep.label(Label.REAL_ESTATE)
    assert shown is not None
    assert shown.displayed
    assert (shown.count, shown.effective) == (4, 4)
    assert rep.is_red


def test_threshold_is_configurable() -> None:
    four = marks_from(4)
    strict = ReputationPolicy(min_reporters=6, min_established=2)
    assert not reputation(NUMBER, four, veterans(four), NOW, strict).displayed


def test_one_live_mark_per_reporter_the_newest_wins() -> None:
    first = Mark(NUMBER, "r1", Label.HARASSMENT, NOW - timedelta(days=2))
    second = Mark(NUMBER, "r1", Label.DELIVERY_RIDE_HAILING, NOW - timedelta(days=1))
    assert live_marks([second, first]) == [second]
    repeated = [Mark(NUMBER, "same", Label.HARASSMENT, NOW - timedelta(hours=h)) for h in range(10)]
    rep = reputation(NUMBER, repeated, {"same": veteran("same")}, NOW)
    harassment = rep.label(Label.HARASSMENT)
    assert harassment is not None
    assert harassment.count == 1
    assert not harassment.displayed


def test_legitimate_marks_subtract() -> None:
    bad = marks_from(5)
    good = marks_from(4, Label.LEGITIMATE, start=100)
    everyone = bad + good
    rep = reputation(NUMBER, everyone, veterans(everyone), NOW)
    real_estate = rep.label(Label.REAL_ESTATE)
    assert real_estate is not None
    assert real_estate.score == pytest.approx(
        sum(decay(NOW - m.at, POLICY) for m in bad) - sum(decay(NOW - m.at, POLICY) for m in good)
    )
    assert not real_estate.displayed
    assert not rep.is_red


def test_decay_has_the_two_half_lives() -> None:
    assert decay(timedelta(0), POLICY) == pytest.approx(1.0)
    fast_only = ReputationPolicy(fast_share=1.0)
    slow_only = ReputationPolicy(fast_share=0.0)
    assert decay(timedelta(days=14), fast_only) == pytest.approx(0.5)
    assert decay(timedelta(days=125), slow_only) == pytest.approx(0.5)
    assert decay(timedelta(days=14), POLICY) == pytest.approx(0.5 * 0.5 + 0.5 * 0.5 ** (14 / 125))


def test_old_evidence_fades_until_the_label_goes() -> None:
    four = marks_from(4)
    profiles = veterans(four)
    assert reputation(NUMBER, four, profiles, NOW).displayed
    later = NOW + timedelta(days=200)
    assert not reputation(NUMBER, four, profiles, later).displayed


def test_credibility_grows_with_age_and_agreement_and_is_capped() -> None:
    fresh = credibility(newcomer("a"), NOW, POLICY)
    old = credibility(veteran("a"), NOW, POLICY)
    assert fresh == pytest.approx(POLICY.new_account_weight, abs=0.01)
    assert old == pytest.approx(1.0)
    trusted = credibility(veteran("a", agreed=500, verified_complaints=50), NOW, POLICY)
    assert trusted == POLICY.max_weight
    overturned = credibility(veteran("a", disagreed=20), NOW, POLICY)
    assert overturned < 0.3


def test_reporters_sharing_a_device_count_once() -> None:
    shared = [
        Mark(NUMBER, f"r{i}", Label.HARASSMENT, NOW - timedelta(hours=i * 3), device="phone-1")
        for i in range(6)
    ]
    rep = reputation(NUMBER, shared, veterans(shared), NOW)
    harassment = rep.label(Label.HARASSMENT)
    assert harassment is not None
    assert (harassment.count, harassment.effective) == (6, 1)
    assert not harassment.displayed


def test_a_burst_of_new_accounts_counts_once_but_veterans_still_count() -> None:
    burst = marks_from(20, Label.FRAUD_SUSPECTED, spacing=timedelta(seconds=20))
    fresh = {m.reporter: newcomer(m.reporter) for m in burst}
    rep = reputation(NUMBER, burst, fresh, NOW)
    fraud = rep.label(Label.FRAUD_SUSPECTED)
    assert fraud is not None
    assert fraud.effective == 1
    assert not rep.is_red
    rep = reputation(NUMBER, burst, veterans(burst), NOW)
    fraud = rep.label(Label.FRAUD_SUSPECTED)
    assert fraud is not None
    assert fraud.effective == 20
    assert fraud.displayed


def test_new_accounts_alone_cannot_carry_a_label() -> None:
    spread = marks_from(30, Label.HARASSMENT, spacing=timedelta(hours=2))
    fresh = {m.reporter: ReporterProfile(m.reporter, NOW - timedelta(days=3)) for m in spread}
    assert not reputation(NUMBER, spread, fresh, NOW).is_red


def test_vouched_reporters_count_as_established() -> None:
    four = marks_from(4, spacing=timedelta(seconds=5))
    vouched = {m.reporter: ReporterProfile(m.reporter, NOW, vouched=True) for m in four}
    assert reputation(NUMBER, four, vouched, NOW).is_red


def test_umbrella_harassment_shows_when_no_specific_label_qualifies() -> None:
    mixed = marks_from(2, Label.REAL_ESTATE) + marks_from(2, Label.HARASSMENT, start=10)
    rep = reputation(NUMBER, mixed, veterans(mixed), NOW)
    assert [lr.label for lr in rep.displayed] == [Label.HARASSMENT]
    harassment = rep.label(Label.HARASSMENT)
    assert harassment is not None
    assert harassment.count == 4
    specific = marks_from(5, Label.REAL_ESTATE) + marks_from(2, Label.HARASSMENT, start=10)
    rep = reputation(NUMBER, specific, veterans(specific), NOW)
    assert [lr.label for lr in rep.displayed] == [Label.REAL_ESTATE]


def test_delivery_riders_marked_in_doubt_do_not_turn_red() -> None:
    riders = marks_from(30, Label.DELIVERY_RIDE_HAILING)
    doubts = marks_from(5, Label.HARASSMENT, start=100)
    everyone = riders + doubts
    rep = reputation(NUMBER, everyone, veterans(everyone), NOW)
    assert [lr.label for lr in rep.displayed] == [Label.DELIVERY_RIDE_HAILING]
    assert not rep.is_red


def test_verified_identity_is_never_turned_red_and_asks_for_review() -> None:
    brigade = marks_from(50, Label.FRAUD_SUSPECTED)
    identity = VerifiedIdentity(NUMBER, "某某银行信用卡中心", "客服", "91350100M000100Y43", "ledger")
    rep = reputation(NUMBER, brigade, veterans(brigade), NOW, verified=identity)
    assert not rep.is_red
    assert rep.review_needed
    fraud = rep.label(Label.FRAUD_SUSPECTED)
    assert fraud is not None
    assert fraud.qualifies
    assert not fraud.displayed
    assert identity.display == "某某银行信用卡中心 · 客服"


def test_recycled_number_starts_clean() -> None:
    old = marks_from(10, Label.FRAUD_SUSPECTED)
    profiles = veterans(old)
    assert reputation(NUMBER, old, profiles, NOW).is_red
    rep = reputation(NUMBER, old, profiles, NOW, recycled_at=NOW - timedelta(hours=1))
    assert rep.labels == ()


def test_explanation_names_count_label_and_age() -> None:
    many = [Mark(NUMBER, f"r{i}", Label.REAL_ESTATE, NOW - timedelta(days=2, hours=i)) for i in range(37)]
    rep = reputation(NUMBER, many, veterans(many), NOW)
    real_estate = rep.label(Label.REAL_ESTATE)
    assert real_estate is not None
    assert real_estate.explanation == "被 37 位用户标记为房产中介，最近一次 2 天前"
    assert format_ago(timedelta(minutes=5)) == "1 小时内"
    assert format_ago(timedelta(hours=5)) == "5 小时前"


def test_high_risk_state_machine() -> None:
    assert can_move(None, HighRiskState.SUSPECTED)
    assert not can_move(None, HighRiskState.VERIFIED)
    assert can_move(HighRiskState.SUSPECTED, HighRiskState.VERIFIED)
    assert can_move(HighRiskState.VERIFIED, HighRiskState.ACTED)
    assert not can_move(HighRiskState.SUSPECTED, HighRiskState.ACTED)
    assert can_move(HighRiskState.ACTED, HighRiskState.CLEARED)
    assert HighRiskState.VERIFIED.screening_effect == "block"
    assert HighRiskState.SUSPECTED.screening_effect == "warn"
    assert HighRiskState.CLEARED.screening_effect == "none"


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min_established"):
        ReputationPolicy(min_reporters=2, min_established=3)
    with pytest.raises(ValueError, match="slow_half_life_days"):
        ReputationPolicy(fast_half_life_days=30, slow_half_life_days=10)


mark_strategy = st.builds(
    Mark,
    number=st.just(NUMBER),
    reporter=st.sampled_from([f"r{i}" for i in range(12)]),
    label=st.sampled_from(list(Label)),
    at=st.integers(min_value=0, max_value=300 * 24).map(lambda h: NOW - timedelta(hours=h)),
    device=st.sampled_from([None, None, "d1", "d2"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(mark_strategy, max_size=30), st.integers(min_value=0, max_value=6))
def test_adding_legitimate_marks_never_raises_a_warning_score(marks: list[Mark], extra: int) -> None:
    profiles = {f"r{i}": veteran(f"r{i}") for i in range(12)}
    profiles.update({f"g{i}": veteran(f"g{i}") for i in range(extra)})
    before = reputation(NUMBER, marks, profiles, NOW)
    legit = [Mark(NUMBER, f"g{i}", Label.LEGITIMATE, NOW - timedelta(hours=1)) for i in range(extra)]
    after = reputation(NUMBER, marks + legit, profiles, NOW)
    for lr in before.labels:
        if lr.label.is_unwanted:
            again = after.label(lr.label)
            assert again is not None
            assert again.score <= lr.score + 1e-9
            assert not (again.displayed and not lr.displayed)


@settings(max_examples=150, deadline=None)
@given(st.lists(mark_strategy, max_size=30))
def test_verified_numbers_are_never_red_and_counts_never_exceed_reporters(marks: list[Mark]) -> None:
    profiles = {f"r{i}": veteran(f"r{i}") for i in range(12)}
    identity = VerifiedIdentity(NUMBER, "某企业", "客服", "x", "otp")
    rep = reputation(NUMBER, marks, profiles, NOW, verified=identity)
    assert not rep.is_red
    reporters = {m.reporter for m in live_marks(marks)}
    for lr in rep.labels:
        assert lr.effective <= lr.count <= len(reporters)
        assert 0.0 <= lr.confidence <= 1.0 + 1e-9
