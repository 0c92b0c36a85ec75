"""The simulator and its evaluation: ground truth is respected and the issue's figures are computed."""

from __future__ import annotations

import pytest

from quietline.marks.model import Label, ReputationPolicy
from quietline.marks.simulation import Kind, SimulationConfig, evaluate, simulate

SMALL = SimulationConfig(seed=7, days=40, brigade_sizes=(5, 50)).scaled(0.1)


def test_population_has_every_kind_and_the_malicious_share() -> None:
    pop = simulate(SMALL)
    kinds = {c.kind for c in pop.callers.values()}
    assert kinds == set(Kind)
    assert len(pop.malicious) == round(SMALL.reporters * SMALL.malicious_share)
    assert pop.marks
    assert all(m.at <= pop.now for m in pop.marks)
    malicious_marks = [m for m in pop.marks if m.reporter in pop.malicious]
    assert malicious_marks
    for mark in malicious_marks:
        caller = pop.callers[mark.number]
        # A malicious mark is always wrong: a warning on a legitimate caller, "legitimate" on a bad one.
        if caller.kind in (Kind.BUSINESS, Kind.RIDER):
            assert mark.label.is_unwanted
        else:
            assert mark.label is Label.LEGITIMATE


def test_evaluation_reports_the_issue_figures() -> None:
    report = evaluate(SMALL)
    targets = report["targets"]
    assert isinstance(targets, dict)
    assert set(targets) == {
        "warning_precision_at_least_0.999",
        "brigade_of_50_cannot_turn_verified_red",
        "new_spam_labelled_within_5_honest_reports",
    }
    assert targets["brigade_of_50_cannot_turn_verified_red"] is True
    assert targets["new_spam_labelled_within_5_honest_reports"] is True
    quality = report["quality"]
    assert isinstance(quality, dict)
    recycled = quality["recycled_numbers"]
    assert recycled["red_after_reset"] == 0
    assert recycled["would_be_red_without_reset"] > 0


def test_a_lax_policy_shows_up_in_the_figures() -> None:
    """The evaluation measures the policy it is given: with one reporter enough and no established
    accounts needed, a brigade of five turns unverified competitors red."""
    lax = SimulationConfig(
        seed=7,
        days=40,
        brigade_sizes=(5,),
        policy=ReputationPolicy(min_reporters=1, min_established=0, min_score=0.1, confidence_threshold=0.3),
    ).scaled(0.1)
    report = evaluate(lax)
    brigades = report["brigades"]
    assert isinstance(brigades, dict)
    assert sum(row["unverified_turned_red"] for row in brigades["aged"]) > 0
    strict = evaluate(SimulationConfig(seed=7, days=40, brigade_sizes=(5,)).scaled(0.1))["brigades"]
    assert isinstance(strict, dict)
    assert sum(row["unverified_turned_red"] for row in strict["aged"]) == 0


def test_scale_is_bounded() -> None:
    with pytest.raises(ValueError, match="scale"):
        SimulationConfig().scaled(0)
