"""Crowd marks and reputation, pure: labels, marks, reporter credibility and the display rule.

Why this shape (REFERENCE.md "Marks and reputation" and "Lessons from existing blockers"):

* Marks are adopted elsewhere at an unpublished threshold, so "mark when in doubt" tags delivery riders,
  banks and recycled numbers. Here the threshold is explicit (``ReputationPolicy``), every label carries
  its count, confidence and an explanation, and "legitimate" marks subtract (PhoneBlock's net votes).
* Evidence decays with a fast and a slow half-life (PhoneBlock uses 14 and 125 days), so a number that
  stopped calling recovers while a long record is not forgotten overnight.
* Crowd lists get gamed (two reports from one address blocked a number elsewhere; competitors mark each
  other): reporters are weighted by credibility (account age, past agreement with outcomes, verified
  complaints), each weight is capped, reporters sharing a device count once, a burst of unestablished
  accounts counts once, and a label needs several distinct *established* reporters (ringdocket requires
  distinct verified reporters, no two sharing a device).
* Verified enterprise numbers never turn red from crowd marks alone: a review is opened instead.
* Recycled numbers (二次放号) start clean: marks older than the recycling are ignored.

Nothing here reads the clock or the database; ``now`` is always passed in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from quietline.vocabulary import Category, LabelledEnum


class Label(LabelledEnum):
    """The fixed set of labels a subscriber may put on a number (issue 6, "Marks").

    The marketing labels reuse the industry category codes and Chinese labels of
    ``quietline.vocabulary.Category`` exactly (a unit test keeps them in step), so a mark "房产中介"
    and a 谢绝来电 refusal of "房产中介" name the same thing.
    """

    HARASSMENT = ("harassment", "骚扰电话")
    FRAUD_SUSPECTED = ("fraud_suspected", "疑似诈骗")
    LOAN_FINANCE = ("loan_finance", "贷款理财")
    INSURANCE = ("insurance", "保险推销")
    SECURITIES = ("securities", "证券股票")
    REAL_ESTATE = ("real_estate", "房产中介")
    EDUCATION = ("education", "教育培训")
    RECRUITMENT = ("recruitment", "人才招聘")
    HOUSEKEEPING = ("housekeeping", "家政服务")
    MATERNAL_CHILD = ("maternal_child", "妇幼保健")
    TRAVEL_VISA = ("travel_visa", "旅游签证")
    DEBT_COLLECTION = ("debt_collection", "违规催收")
    RETAIL = ("retail", "零售业推销")
    TELECOM_PROMO = ("telecom_promo", "电信服务宣传")
    ONLINE_GAMES = ("online_games", "网络游戏")
    FOOD_DRUG = ("food_drug", "食药推销")
    FAKE_DOCUMENTS = ("fake_documents", "发票办证")
    OTHER_MARKETING = ("other_marketing", "其他营销")
    DELIVERY_RIDE_HAILING = ("delivery_ride_hailing", "快递外卖/网约车")
    ONE_RING = ("one_ring", "响一声")
    LEGITIMATE = ("legitimate", "正常号码")

    @property
    def category(self) -> Category | None:
        """The marketing category this label names, if it is one."""
        return _CATEGORIES.get(self.value)

    @property
    def severity(self) -> Severity:
        if self is Label.LEGITIMATE:
            return Severity.POSITIVE
        if self is Label.DELIVERY_RIDE_HAILING:
            return Severity.INFO
        return Severity.WARNING

    @property
    def is_unwanted(self) -> bool:
        """Labels of the unwanted family, whose umbrella is 骚扰电话 (``HARASSMENT``)."""
        return self.severity is Severity.WARNING


_CATEGORIES: dict[str, Category] = {c.value: c for c in Category}
_LABELS: dict[str, Label] = {label.value: label for label in Label}


def label_of(code: str) -> Label:
    """The label with this stored code (fast; ``Label.parse`` is for user input)."""
    return _LABELS[code]


class Severity(StrEnum):
    """What a displayed label does on the phone: a red warning, a neutral hint, or nothing."""

    WARNING = "warning"  # the number "turns red" (标注提醒 with a warning)
    INFO = "info"  # a neutral hint, e.g. 快递外卖 — never a warning
    POSITIVE = "positive"  # "legitimate": evidence against every warning label


UNWANTED_LABELS: frozenset[Label] = frozenset(label for label in Label if label.is_unwanted)


class Mark(NamedTuple):
    """One reporter's live mark on one number. A reporter has at most one live mark per number; a
    new mark replaces the old one (the storage enforces it, ``live_marks`` does it for plain lists).

    A named tuple rather than a frozen dataclass: bulk ingestion builds tens of thousands per batch (the
    live marks of every number it re-judges), and a tuple is built several times faster."""

    number: str
    reporter: str
    label: Label
    at: datetime
    device: str | None = None


@dataclass(frozen=True, slots=True)
class ReporterProfile:
    """What the system knows about a reporter when weighing its marks."""

    reporter: str
    account_created: datetime
    agreed: int = 0  # past marks that an outcome (appeal, carrier verification) confirmed
    disagreed: int = 0  # past marks that an outcome overturned
    verified_complaints: int = 0  # 12321 complaints of this reporter that were substantiated
    #: Recorded through a trusted channel (the operator's import of a partner's verified reporters):
    #: counts as an established account whatever its age here; its outcomes still weigh it.
    vouched: bool = False


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """An enterprise that proved it owns the number (caller-number ledger or a code sent to it)."""

    number: str
    name: str
    purpose: str
    owner: str
    proof: str

    @property
    def display(self) -> str:
        """``某某银行信用卡中心 · 客服``."""
        return f"{self.name} · {self.purpose}" if self.purpose else self.name


@dataclass(frozen=True)
class ReputationPolicy:
    """Every threshold of the reputation model; each is a policy choice, so each is configurable."""

    fast_half_life_days: float = 14.0  # PhoneBlock's fast half-life
    slow_half_life_days: float = 125.0  # PhoneBlock's slow half-life
    fast_share: float = 0.5  # how much of a fresh mark's weight decays with the fast half-life
    min_reporters: int = 4  # distinct effective reporters a label needs (PhoneBlock: 4 net votes)
    min_established: int = 2  # of which this many must be established accounts (anti-brigade)
    confidence_threshold: float = 0.7  # share of all evidence on the number that backs the label
    min_score: float = 2.0  # net decayed evidence (label minus legitimate) a label needs
    max_weight: float = 1.5  # cap on any one reporter's weight
    new_account_weight: float = 0.25  # weight of a brand-new account, growing to 1 when established
    established_age_days: float = 60.0  # account age from which a reporter counts as established
    complaint_bonus: float = 0.1  # extra weight per substantiated complaint …
    complaint_bonus_cap: float = 0.5  # … up to this much
    burst_window: timedelta = timedelta(minutes=10)
    burst_min_size: int = 5  # this many marks on one label within the window form a burst
    stale_below: float = 0.05  # evidence decayed below this share no longer counts at all

    def __post_init__(self) -> None:
        checks = {
            "fast_half_life_days": self.fast_half_life_days > 0,
            "slow_half_life_days": self.slow_half_life_days >= self.fast_half_life_days,
            "fast_share": 0.0 <= self.fast_share <= 1.0,
            "min_reporters": self.min_reporters >= 1,
            "min_established": 0 <= self.min_established <= self.min_reporters,
            "confidence_threshold": 0.0 < self.confidence_threshold <= 1.0,
            "min_score": self.min_score >= 0.0,
            "max_weight": self.max_weight > 0.0,
            "new_account_weight": 0.0 < self.new_account_weight <= 1.0,
            "established_age_days": self.established_age_days >= 0.0,
            "burst_min_size": self.burst_min_size >= 2,
            "stale_below": 0.0 <= self.stale_below < 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid reputation policy: {', '.join(bad)}")


def decay(age: timedelta, policy: ReputationPolicy) -> float:
    """Share of a mark's weight left after ``age``: a mix of a fast and a slow exponential half-life."""
    days = max(0.0, age.total_seconds() / 86400.0)
    fast = math.pow(0.5, days / policy.fast_half_life_days)
    slow = math.pow(0.5, days / policy.slow_half_life_days)
    return policy.fast_share * fast + (1.0 - policy.fast_share) * slow


def account_age_days(profile: ReporterProfile, now: datetime) -> float:
    return max(0.0, (now - profile.account_created).total_seconds() / 86400.0)


def agreement_factor(profile: ReporterProfile) -> float:
    """2 × the mean of a Beta(2, 2) prior updated with the reporter's outcomes: 1.0 with no history,
    towards 2 for a reporter outcomes keep confirming, towards 0 for one they keep overturning."""
    return 2.0 * (profile.agreed + 2) / (profile.agreed + profile.disagreed + 4)


def credibility(profile: ReporterProfile, now: datetime, policy: ReputationPolicy) -> float:
    """A reporter's weight: account age × agreement with past outcomes × substantiated complaints,
    capped at ``max_weight`` so no single reporter can carry a label."""
    age = account_age_days(profile, now)
    if profile.vouched or policy.established_age_days <= 0:
        ramp = 1.0
    else:
        ramp = min(1.0, age / policy.established_age_days)
    age_factor = policy.new_account_weight + (1.0 - policy.new_account_weight) * ramp
    complaints = 1.0 + min(policy.complaint_bonus_cap, policy.complaint_bonus * profile.verified_complaints)
    return min(policy.max_weight, age_factor * agreement_factor(profile) * complaints)


def is_established(profile: ReporterProfile, now: datetime, policy: ReputationPolicy) -> bool:
    """Old enough and not mostly overturned: the reporters a brigade cannot mint cheaply."""
    old_enough = profile.vouched or account_age_days(profile, now) >= policy.established_age_days
    return old_enough and profile.disagreed <= profile.agreed


def live_marks(marks: Iterable[Mark], recycled_at: datetime | None = None) -> list[Mark]:
    """The latest mark of each reporter per number, ignoring marks made before a recycling (二次放号)."""
    latest: dict[tuple[str, str], Mark] = {}
    for mark in marks:
        if recycled_at is not None and mark.at < recycled_at:
            continue
        key = (mark.number, mark.reporter)
        current = latest.get(key)
        if current is None or mark.at >= current.at:
            latest[key] = mark
    return list(latest.values())


#: An effective reporter: (weight, time, established) — reporters that count as one (a shared device,
#: or a burst). A plain tuple: bulk ingestion forms tens of thousands per batch.
_Cluster = tuple[float, datetime, bool]


def _weigh(
    marks: Iterable[Mark], profiles: Mapping[str, ReporterProfile], now: datetime, policy: ReputationPolicy
) -> dict[str, tuple[float, bool]]:
    """(credibility, established) of each reporter behind ``marks``; an unknown reporter is a new account."""
    weights: dict[str, tuple[float, bool]] = {}
    for mark in marks:
        if mark.reporter not in weights:
            profile = profiles.get(mark.reporter) or ReporterProfile(mark.reporter, mark.at)
            weights[mark.reporter] = (credibility(profile, now, policy), is_established(profile, now, policy))
    return weights


def _clusters(
    marks: Sequence[Mark],
    weights: Mapping[str, tuple[float, bool]],
    policy: ReputationPolicy,
) -> list[_Cluster]:
    """Effective reporters behind some marks: one per device, then one per burst of unestablished
    accounts. A cluster's weight is its heaviest member's (capped), never the sum.

    Written for speed, with the same clusters in the same order as the plain formulation kept in
    ``tests/unit/marks/test_evidence_fast.py`` (so the same sums): mutable lists while grouping, and a
    two-pointer scan for the burst windows — a window's end never moves back as its start moves on,
    so each cluster is passed over once instead of once per window that contains it."""
    by_device: dict[tuple[bool, str], list[Any]] = {}
    for mark in marks:
        weight, established = weights[mark.reporter]
        device = mark.device
        key = (True, device) if device else (False, mark.reporter)
        cluster = by_device.get(key)
        if cluster is None:
            by_device[key] = [weight, mark.at, established]
        else:
            cluster[0] = max(cluster[0], weight)
            cluster[1] = max(cluster[1], mark.at)
            cluster[2] = cluster[2] or established
    ordered: list[_Cluster] = [(c[0], c[1], c[2]) for c in by_device.values()]
    ordered.sort(key=_at)  # stable: equal times keep the marks' order, as the sums must
    count = len(ordered)
    if count < policy.burst_min_size:  # no window can hold a burst
        return ordered
    result: list[_Cluster] = []
    size, span = policy.burst_min_size, policy.burst_window
    i = j = 0
    while i < count:
        end = ordered[i][1] + span
        j = max(j, i)
        while j < count and ordered[j][1] <= end:
            j += 1
        if j - i >= size:
            # A burst: established reporters still count one by one; the rest count once together.
            window = ordered[i:j]
            result.extend(c for c in window if c[2])
            cheap = [c for c in window if not c[2]]
            if cheap:
                result.append((max(c[0] for c in cheap), max(c[1] for c in cheap), False))
            i = j
        else:
            result.append(ordered[i])
            i += 1
    return result


def _at(cluster: _Cluster) -> datetime:
    return cluster[1]


class _Evidence(NamedTuple):
    """One label's evidence on a number (a named tuple: a judgment builds one per label)."""

    reporters: int  # distinct reporters (raw)
    effective: int  # distinct effective reporters whose evidence is not stale
    established: int  # of which established
    evidence: float  # decayed, credibility-weighted evidence
    last_at: datetime


def _evidence(
    marks: Sequence[Mark],
    weights: Mapping[str, tuple[float, bool]],
    now: datetime,
    policy: ReputationPolicy,
    decays: dict[datetime, float] | None = None,
) -> _Evidence:
    """``decays``: the decay at each time, shared by the calls of one judgment (a mark's time comes up
    once for its label and once more for the 骚扰电话 umbrella)."""
    effective = established = 0
    total = 0.0
    known = {} if decays is None else decays
    stale = policy.stale_below
    for weight, at, firm in _clusters(marks, weights, policy):
        left = known.get(at)
        if left is None:
            left = known[at] = decay(now - at, policy)
        if left < stale:
            continue
        effective += 1
        established += int(firm)
        total += weight * left
    return _Evidence(
        reporters=len({m.reporter for m in marks}),
        effective=effective,
        established=established,
        evidence=total,
        last_at=max(m.at for m in marks),
    )


def explain(label: Label, count: int, since_last: timedelta) -> str:
    """``被 37 位用户标记为房产中介，最近一次 2 天前``: every label carries its own explanation."""
    return f"被 {count} 位用户标记为{label.label}，最近一次 {format_ago(since_last)}"


def format_ago(delta: timedelta) -> str:
    """``2 天前`` / ``5 小时前`` / ``1 小时内``, as caller-ID apps say it."""
    hours = delta.total_seconds() / 3600.0
    if hours < 1:
        return "1 小时内"
    if hours < 24:
        return f"{int(hours)} 小时前"
    return f"{int(hours // 24)} 天前"


@dataclass(frozen=True, slots=True)
class LabelReputation:
    """One label's standing on one number. ``count`` counts distinct reporters; ``effective`` the
    distinct effective reporters behind them (devices and bursts merged, stale evidence dropped)."""

    label: Label
    count: int
    effective: int
    established: int
    score: float
    confidence: float
    qualifies: bool  # passes every crowd threshold
    displayed: bool  # shown on incoming calls (false when a verified identity suppressed it)
    last_at: datetime
    explanation: str

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label.value,
            "label_zh": self.label.label,
            "severity": self.label.severity.value,
            "count": self.count,
            "effective_reporters": self.effective,
            "confidence": round(self.confidence, 4),
            "score": round(self.score, 4),
            "displayed": self.displayed,
            "last_marked_at": self.last_at.isoformat(),
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class Reputation:
    """A number's crowd reputation at one moment."""

    number: str
    labels: tuple[LabelReputation, ...]
    verified: VerifiedIdentity | None = None
    review_needed: bool = False  # crowd would turn a verified number red: a person must look
    computed_at: datetime | None = None

    @property
    def displayed(self) -> tuple[LabelReputation, ...]:
        return tuple(lr for lr in self.labels if lr.displayed)

    @property
    def is_red(self) -> bool:
        """A warning label is displayed (the number "turns red" on incoming calls)."""
        return any(lr.label.severity is Severity.WARNING for lr in self.displayed)

    def label(self, label: Label) -> LabelReputation | None:
        return next((lr for lr in self.labels if lr.label is label), None)

    @property
    def displayed_states(self) -> dict[Label, bool]:
        return {lr.label: lr.displayed for lr in self.labels}


def reputation(
    number: str,
    marks: Iterable[Mark],
    profiles: Mapping[str, ReporterProfile],
    now: datetime,
    policy: ReputationPolicy | None = None,
    *,
    verified: VerifiedIdentity | None = None,
    recycled_at: datetime | None = None,
) -> Reputation:
    """Score every label on ``number`` from its live marks.

    Per label L: evidence E(L) = Σ over effective reporters of credibility × decay; legitimate marks
    give E(legit). score = E(L) − E(legit) (legitimate subtracts, PhoneBlock's net votes); confidence =
    E(L) / (all evidence on the number). A label qualifies with ≥ ``min_reporters`` effective reporters,
    ≥ ``min_established`` established ones, score ≥ ``min_score`` and confidence ≥ the threshold.
    骚扰电话 (``HARASSMENT``) is also the umbrella of the unwanted family: it counts every unwanted mark
    and is shown when the family qualifies but no more specific label does. A verified identity
    suppresses every warning label and asks for a review instead.
    """
    policy = policy or ReputationPolicy()
    current = [m for m in live_marks(marks, recycled_at) if m.number == number and m.at <= now]
    if not current:
        return Reputation(number, (), verified, False, now)
    by_label: dict[Label, list[Mark]] = defaultdict(list)
    for mark in current:
        by_label[mark.label].append(mark)
    weights = _weigh(current, profiles, now, policy)
    decays: dict[datetime, float] = {}
    evidence = {label: _evidence(ms, weights, now, policy, decays) for label, ms in by_label.items()}
    family = [m for m in current if m.label.is_unwanted]
    umbrella = _evidence(family, weights, now, policy, decays) if family else None
    legit = evidence[Label.LEGITIMATE].evidence if Label.LEGITIMATE in evidence else 0.0
    total = sum(e.evidence for e in evidence.values())

    generic = evidence[Label.HARASSMENT].evidence if Label.HARASSMENT in evidence else 0.0

    def judge(label: Label, ev: _Evidence) -> tuple[float, float, bool]:
        score = ev.evidence - legit
        # A generic 骚扰电话 mark is no evidence against a more specific unwanted label (a caller who
        # sells flats *is* a 骚扰电话 to many), so it is left out of a specific label's denominator.
        pool = total if label is Label.HARASSMENT or not label.is_unwanted else total - generic
        confidence = ev.evidence / pool if pool > 0 else 0.0
        qualifies = (
            label is not Label.LEGITIMATE
            and ev.effective >= policy.min_reporters
            and ev.established >= policy.min_established
            and score >= policy.min_score
            and confidence >= policy.confidence_threshold
        )
        return score, confidence, qualifies

    judged: dict[Label, tuple[_Evidence, float, float, bool]] = {}
    for label, ev in evidence.items():
        if label is Label.HARASSMENT:
            continue
        judged[label] = (ev, *judge(label, ev))
    if umbrella is not None:
        judged[Label.HARASSMENT] = (umbrella, *judge(Label.HARASSMENT, umbrella))
    specific_shown = any(
        q for label, (_, _, _, q) in judged.items() if label.is_unwanted and label is not Label.HARASSMENT
    )
    review_needed = False
    results: list[LabelReputation] = []
    for label, (ev, score, confidence, qualifies) in judged.items():
        shown = qualifies and not (label is Label.HARASSMENT and specific_shown)
        if shown and verified is not None and label.severity is Severity.WARNING:
            shown = False
            review_needed = True
        results.append(
            LabelReputation(
                label=label,
                count=ev.reporters,
                effective=ev.effective,
                established=ev.established,
                score=score,
                confidence=confidence,
                qualifies=qualifies,
                displayed=shown,
                last_at=ev.last_at,
                explanation=explain(label, ev.reporters, now - ev.last_at),
            )
        )
    results.sort(key=lambda lr: (not lr.displayed, -lr.score, lr.label.value))
    return Reputation(number, tuple(results), verified, review_needed, now)


# --- High-risk numbers (高危号码) ------------------------------------------------------------------


class HighRiskState(LabelledEnum):
    """Life of a high-risk number: flagged on strong evidence, verified by the responsible carrier,
    acted on (suspended, warned), and finally cleared."""

    SUSPECTED = ("suspected", "疑似高危")
    VERIFIED = ("verified", "已核实")
    ACTED = ("acted", "已处置")
    CLEARED = ("cleared", "已解除")

    @property
    def screening_effect(self) -> str:
        """What the screening snapshot does with it (DESIGN.md decision order, steps 5 and 7)."""
        if self in (HighRiskState.VERIFIED, HighRiskState.ACTED):
            return "block"
        if self is HighRiskState.SUSPECTED:
            return "warn"
        return "none"


HIGH_RISK_TRANSITIONS: Mapping[HighRiskState, frozenset[HighRiskState]] = {
    HighRiskState.SUSPECTED: frozenset({HighRiskState.VERIFIED, HighRiskState.CLEARED}),
    HighRiskState.VERIFIED: frozenset({HighRiskState.ACTED, HighRiskState.CLEARED}),
    HighRiskState.ACTED: frozenset({HighRiskState.CLEARED}),
    HighRiskState.CLEARED: frozenset({HighRiskState.SUSPECTED}),
}


def can_move(current: HighRiskState | None, target: HighRiskState) -> bool:
    """A new number enters as suspected; otherwise only the transitions above are allowed."""
    if current is None:
        return target is HighRiskState.SUSPECTED
    return target in HIGH_RISK_TRANSITIONS[current]


class HighRiskSource(LabelledEnum):
    """The kinds of strong evidence that put a number on the high-risk list (issue 6)."""

    COMPLAINTS = ("complaints", "用户投诉")
    CROWD_FRAUD = ("crowd_fraud", "用户标记诈骗")
    TRAFFIC = ("traffic", "异常话务监测")
    POLICE = ("police", "公安通报")


# --- Corrections and appeals (号码标记纠错) --------------------------------------------------------


class AppealOutcome(LabelledEnum):
    UPHELD = ("upheld", "纠错成立，标记已撤销")
    REJECTED = ("rejected", "纠错不成立，标记保留")


@dataclass(frozen=True)
class RateLimit:
    """Per-reporter mark rate limit: at most ``limit`` marks per fixed ``window``."""

    limit: int = 30
    window: timedelta = field(default=timedelta(days=1))

    def window_start(self, at: datetime, epoch: datetime) -> datetime:
        """Start of the fixed window ``at`` falls in, counted from ``epoch``."""
        n = math.floor((at - epoch) / self.window)
        return epoch + n * self.window
