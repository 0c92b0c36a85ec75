"""A population simulator with ground truth, and the evaluation of the reputation model against it.

The issue asks for figures no real data can give (nobody publishes which marks were wrong): precision
and recall of displayed labels with 5% malicious reporters, how many honest marks a new spam number
needs, and how many legitimate numbers a brigade can turn red. The simulator makes a population whose
truth is known and runs the same ``model.reputation`` the service runs.

Assumptions (each a parameter of ``SimulationConfig``):

* Callers: ordinary people (who call only their own contacts, whom nobody marks), businesses (service
  lines, half of them verified), delivery riders, marketing spammers of one category, harassers,
  fraudsters and one-ring callers. Bad callers live a few days to a few weeks (they rotate numbers).
* Honest reporters mark a small share of the calls they get, mostly with the right label, sometimes with
  the generic 骚扰电话, and occasionally "when in doubt" a rider or a bank as harassment.
* Malicious reporters (5% by default) mark far more often and always wrongly: a warning on a legitimate
  caller, "legitimate" on a spammer. They are not known to be bad: half have a clean, aged account.
* Brigades: k accounts mark one competitor. "Cheap" brigades are new accounts, five per device, marking
  within two hours; "aged" brigades are bought aged accounts with clean histories, one device each,
  trickling in over a week — the strongest attacker the model has to resist.
* Recycled numbers: former spam numbers reassigned (二次放号) to ordinary people; the carrier reports it.
"""

from __future__ import annotations

import statistics
from collections import ChainMap, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from quietline.marks.model import (
    UNWANTED_LABELS,
    Label,
    Mark,
    ReporterProfile,
    Reputation,
    ReputationPolicy,
    Severity,
    VerifiedIdentity,
    reputation,
)

MARKETING_LABELS: tuple[Label, ...] = tuple(label for label in Label if label.category is not None)
SIM_START = datetime(2026, 1, 1, tzinfo=UTC)


class Kind(StrEnum):
    ORDINARY = "ordinary"
    BUSINESS = "business"
    RIDER = "rider"
    SPAMMER = "spammer"
    HARASSER = "harasser"
    FRAUDSTER = "fraudster"
    ONE_RING = "one_ring"
    RECYCLED = "recycled"  # a former spam number now held by an ordinary person


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 1
    days: int = 90
    ordinary: int = 3000
    businesses: int = 600
    verified_share: float = 0.5
    riders: int = 800
    spammers: int = 500
    harassers: int = 100
    fraudsters: int = 150
    one_ringers: int = 80
    recycled: int = 150
    reporters: int = 40_000
    malicious_share: float = 0.05
    malicious_mark_rate: float = 0.1  # share of received calls a malicious reporter marks
    new_spam_numbers: int = 200  # for "marks needed to flag a new spam number"
    brigade_sizes: tuple[int, ...] = (5, 10, 20, 50, 100)
    brigade_targets: int = 40  # per size, per kind, verified and unverified each
    policy: ReputationPolicy = field(default_factory=ReputationPolicy)

    def scaled(self, factor: float) -> SimulationConfig:
        """The same population shape with every count multiplied by ``factor`` (quick runs, tests)."""
        if not 0 < factor <= 10:
            raise ValueError("scale must be in (0, 10]")

        def n(value: int) -> int:
            return max(1, round(value * factor))

        return replace(
            self,
            ordinary=n(self.ordinary),
            businesses=n(self.businesses),
            riders=n(self.riders),
            spammers=n(self.spammers),
            harassers=n(self.harassers),
            fraudsters=n(self.fraudsters),
            one_ringers=n(self.one_ringers),
            recycled=n(self.recycled),
            reporters=max(100, n(self.reporters)),
            new_spam_numbers=n(self.new_spam_numbers),
            brigade_targets=n(self.brigade_targets),
        )


@dataclass
class Caller:
    number: str
    kind: Kind
    truth: frozenset[Label]  # labels that are correct for this number (empty: nothing should show)
    primary: Label | None
    verified: bool = False
    recycled_at: datetime | None = None


@dataclass
class Population:
    callers: dict[str, Caller]
    profiles: dict[str, ReporterProfile]
    malicious: frozenset[str]
    marks: list[Mark]
    now: datetime


# Per received call, the probability an honest recipient marks it, by label.
_HONEST_RATES: Mapping[Kind, tuple[float, Mapping[Label, float]]] = {
    Kind.BUSINESS: (60.0, {Label.LEGITIMATE: 0.01, Label.HARASSMENT: 0.002}),
    Kind.RIDER: (
        40.0,
        {Label.DELIVERY_RIDE_HAILING: 0.03, Label.HARASSMENT: 0.003, Label.LEGITIMATE: 0.003},
    ),
    Kind.SPAMMER: (300.0, {Label.HARASSMENT: 0.008}),  # plus its own category, see _rates
    Kind.HARASSER: (40.0, {Label.HARASSMENT: 0.05}),
    Kind.FRAUDSTER: (400.0, {Label.FRAUD_SUSPECTED: 0.01, Label.HARASSMENT: 0.006}),
    Kind.ONE_RING: (800.0, {Label.ONE_RING: 0.004, Label.HARASSMENT: 0.002}),
}


def _rates(caller: Caller) -> tuple[float, dict[Label, float]]:
    calls, base = _HONEST_RATES[caller.kind]
    rates = dict(base)
    if caller.kind is Kind.SPAMMER and caller.primary is not None:
        rates[caller.primary] = 0.012
    return calls, rates


class _Numbers:
    """Distinct synthetic mainland mobile numbers in E.164 form."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new(self) -> str:
        while True:
            value = f"+861{int(self._rng.integers(3, 10))}{int(self._rng.integers(0, 10**9)):09d}"
            if value not in self._used:
                self._used.add(value)
                return value


def _make_reporters(
    cfg: SimulationConfig, rng: np.random.Generator, numbers: _Numbers
) -> tuple[dict[str, ReporterProfile], list[str], list[str], dict[str, str]]:
    profiles: dict[str, ReporterProfile] = {}
    honest: list[str] = []
    malicious: list[str] = []
    devices: dict[str, str] = {}
    n_mal = round(cfg.reporters * cfg.malicious_share)
    for i in range(cfg.reporters):
        number = numbers.new()
        bad = i < n_mal
        if bad:
            # Half look clean and aged; the other half are young or were overturned before.
            if rng.random() < 0.5:
                age, agreed, disagreed = float(rng.uniform(60, 900)), int(rng.poisson(1.0)), 0
            else:
                age = float(rng.uniform(0, 120))
                agreed, disagreed = int(rng.poisson(0.3)), int(rng.poisson(1.0))
            malicious.append(number)
        else:
            age = float(rng.uniform(0, 60)) if rng.random() < 0.1 else float(rng.uniform(60, 1500))
            agreed, disagreed = int(rng.poisson(2.0)), int(rng.poisson(0.1))
            honest.append(number)
        profiles[number] = ReporterProfile(
            number,
            SIM_START - timedelta(days=age),
            agreed=agreed,
            disagreed=disagreed,
            verified_complaints=int(rng.poisson(0.2)),
        )
        # A few households share one phone between two accounts.
        devices[number] = (
            devices[honest[-2]] if (not bad and len(honest) > 1 and rng.random() < 0.03) else number
        )
    return profiles, honest, malicious, devices


@dataclass(frozen=True)
class _Pools:
    honest: Sequence[str]
    malicious: Sequence[str]
    devices: Mapping[str, str]


_WARNING_LABELS = sorted(UNWANTED_LABELS)


def _caller_marks(
    caller: Caller, cfg: SimulationConfig, rng: np.random.Generator, pools: _Pools, *, early: bool
) -> list[Mark]:
    """Every mark one caller collects: honest recipients at their per-label rates, malicious ones
    always wrong (a warning on a legitimate caller, "legitimate" on a bad one)."""
    calls, rates = _rates(caller)
    legit_caller = caller.kind in (Kind.BUSINESS, Kind.RIDER)
    if legit_caller:
        first, last = 0, cfg.days - 1
    elif early:  # an early spammer whose number later went back to the carrier
        first = int(rng.integers(0, max(1, cfg.days // 4)))
        last = first + int(rng.integers(2, 14))
    else:  # bad callers rotate: a few days to a few weeks on one number
        first = int(rng.integers(0, cfg.days))
        last = min(cfg.days - 1, first + int(rng.integers(2, 30)))
    volume = calls * float(rng.uniform(0.5, 1.5))
    bad_rate = cfg.malicious_mark_rate * (1.0 if legit_caller else 0.5)
    marks: list[Mark] = []

    def mark(reporter: str, label: Label, day: int, hours: float) -> None:
        at = SIM_START + timedelta(days=day, hours=hours)  # waking hours, drawn below
        marks.append(Mark(caller.number, reporter, label, at, pools.devices[reporter]))

    honest_calls = volume * (1 - cfg.malicious_share)
    days = last - first + 1
    for label, rate in rates.items():
        for day, n in zip(range(first, last + 1), rng.poisson(honest_calls * rate, size=days), strict=True):
            if n:
                who = rng.integers(0, len(pools.honest), size=int(n))
                for i, hours in zip(who, rng.uniform(8, 22, size=int(n)), strict=True):
                    mark(pools.honest[int(i)], label, day, float(hours))
    bad = rng.poisson(volume * cfg.malicious_share * bad_rate, size=days)
    for day, n in zip(range(first, last + 1), bad, strict=True):
        if not n:
            continue
        who = rng.integers(0, len(pools.malicious), size=int(n))
        picks = rng.integers(0, len(_WARNING_LABELS), size=int(n))
        for i, pick, hours in zip(who, picks, rng.uniform(8, 22, size=int(n)), strict=True):
            label = _WARNING_LABELS[int(pick)] if legit_caller else Label.LEGITIMATE
            mark(pools.malicious[int(i)], label, day, float(hours))
    return marks


def simulate(cfg: SimulationConfig) -> Population:
    """Generate callers, reporters and every mark over ``cfg.days`` days."""
    rng = np.random.default_rng(cfg.seed)
    numbers = _Numbers(rng)
    profiles, honest, malicious, devices = _make_reporters(cfg, rng, numbers)
    callers: dict[str, Caller] = {}

    def add(kind: Kind, count: int, truth_of: dict[Kind, frozenset[Label]]) -> list[Caller]:
        made = []
        for _ in range(count):
            primary: Label | None = None
            if kind is Kind.SPAMMER:
                primary = MARKETING_LABELS[int(rng.integers(0, len(MARKETING_LABELS)))]
                truth = frozenset({primary, Label.HARASSMENT})
            else:
                truth = truth_of[kind]
                primary = next(iter(truth - {Label.HARASSMENT}), Label.HARASSMENT) if truth else None
            caller = Caller(numbers.new(), kind, truth, primary)
            callers[caller.number] = caller
            made.append(caller)
        return made

    truth_of = {
        Kind.ORDINARY: frozenset[Label](),
        Kind.BUSINESS: frozenset[Label](),
        Kind.RIDER: frozenset({Label.DELIVERY_RIDE_HAILING}),
        Kind.HARASSER: frozenset({Label.HARASSMENT}),
        Kind.FRAUDSTER: frozenset({Label.FRAUD_SUSPECTED, Label.HARASSMENT}),
        Kind.ONE_RING: frozenset({Label.ONE_RING, Label.HARASSMENT}),
    }
    add(Kind.ORDINARY, cfg.ordinary, truth_of)
    for business in add(Kind.BUSINESS, cfg.businesses, truth_of):
        business.verified = bool(rng.random() < cfg.verified_share)
    add(Kind.RIDER, cfg.riders, truth_of)
    add(Kind.SPAMMER, cfg.spammers, truth_of)
    add(Kind.HARASSER, cfg.harassers, truth_of)
    add(Kind.FRAUDSTER, cfg.fraudsters, truth_of)
    add(Kind.ONE_RING, cfg.one_ringers, truth_of)
    recycled = add(Kind.SPAMMER, cfg.recycled, truth_of)

    recycled_numbers = {c.number for c in recycled}
    pools = _Pools(honest, malicious, devices)
    marks: list[Mark] = []
    for caller in callers.values():
        if caller.kind is not Kind.ORDINARY:  # ordinary people call contacts, who do not mark them
            marks.extend(_caller_marks(caller, cfg, rng, pools, early=caller.number in recycled_numbers))
    now = SIM_START + timedelta(days=cfg.days)
    for caller in recycled:  # 二次放号: reassigned after ~90 days in reality, compressed here
        caller.kind = Kind.RECYCLED
        caller.truth = frozenset()
        caller.primary = None
        caller.recycled_at = SIM_START + timedelta(days=cfg.days // 2)
    return Population(callers, profiles, frozenset(malicious), marks, now)


def _correct(caller: Caller, label: Label) -> bool:
    return label in caller.truth


def _identity(caller: Caller) -> VerifiedIdentity | None:
    if not caller.verified:
        return None
    return VerifiedIdentity(caller.number, "某企业", "客服", "enterprise", "ledger")


@dataclass
class _Tally:
    tp: int = 0
    fp: int = 0
    positives: int = 0
    found: int = 0

    def as_dict(self) -> dict[str, float | int | None]:
        shown = self.tp + self.fp
        return {
            "displayed": shown,
            "correct": self.tp,
            "wrong": self.fp,
            "precision": round(self.tp / shown, 5) if shown else None,
            "numbers_with_label": self.positives,
            "recall": round(self.found / self.positives, 4) if self.positives else None,
        }


def _precision_recall(pop: Population, policy: ReputationPolicy) -> tuple[dict[str, object], float | None]:
    """Per-label precision and recall of what is displayed at the end of the simulation, and the
    precision of warnings overall (the figure the issue sets at ≥ 99.9%)."""
    by_number: dict[str, list[Mark]] = defaultdict(list)
    for m in pop.marks:
        by_number[m.number].append(m)
    tallies: dict[Label, _Tally] = defaultdict(_Tally)
    warn_tp = warn_fp = 0
    unwanted_numbers = unwanted_flagged = 0
    red_legit: dict[str, int] = defaultdict(int)
    recycled_red_without_reset = 0
    reviews = 0
    for number, caller in pop.callers.items():
        marks = by_number.get(number, [])
        rep = reputation(
            number,
            marks,
            pop.profiles,
            pop.now,
            policy,
            verified=_identity(caller),
            recycled_at=caller.recycled_at,
        )
        reviews += int(rep.review_needed)
        if caller.primary is not None and marks:
            tallies[caller.primary].positives += 1
            if any(lr.label is caller.primary for lr in rep.displayed):
                tallies[caller.primary].found += 1
        if caller.truth & UNWANTED_LABELS and marks:
            unwanted_numbers += 1
            unwanted_flagged += int(
                any(_correct(caller, lr.label) for lr in rep.displayed if lr.label.is_unwanted)
            )
        for lr in rep.displayed:
            ok = _correct(caller, lr.label)
            tally = tallies[lr.label]
            tally.tp += int(ok)
            tally.fp += int(not ok)
            if lr.label.severity is Severity.WARNING:
                warn_tp += int(ok)
                warn_fp += int(not ok)
                if not ok:
                    red_legit[caller.kind.value] += 1
        if caller.kind is Kind.RECYCLED:
            stale = reputation(number, marks, pop.profiles, pop.now, policy)
            recycled_red_without_reset += int(stale.is_red)
    shown = warn_tp + warn_fp
    precision = warn_tp / shown if shown else None
    report: dict[str, object] = {
        "per_label": {label.value: tallies[label].as_dict() for label in Label if label in tallies},
        "warnings": {
            "displayed": shown,
            "wrong": warn_fp,
            "precision": None if precision is None else round(precision, 5),
            "wrong_by_caller_kind": dict(red_legit),
        },
        "unwanted_numbers_flagged": {
            "numbers": unwanted_numbers,
            "flagged": unwanted_flagged,
            "recall": round(unwanted_flagged / unwanted_numbers, 4) if unwanted_numbers else None,
        },
        "recycled_numbers": {
            "numbers": sum(1 for c in pop.callers.values() if c.kind is Kind.RECYCLED),
            "red_after_reset": _recycled_red(pop, by_number, policy),
            "would_be_red_without_reset": recycled_red_without_reset,
        },
        "verified_reviews_opened": reviews,
    }
    return report, precision


def _recycled_red(pop: Population, by_number: Mapping[str, list[Mark]], policy: ReputationPolicy) -> int:
    return sum(
        1
        for c in pop.callers.values()
        if c.kind is Kind.RECYCLED
        and reputation(
            c.number, by_number.get(c.number, []), pop.profiles, pop.now, policy, recycled_at=c.recycled_at
        ).is_red
    )


def _marks_to_flag(
    pop: Population, cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[dict[str, object], float]:
    """Feed honest reports one at a time to fresh spam numbers; count reports until a correct warning
    shows. Reports arrive as a spammer's calls get marked: gaps of ~20 minutes on average."""
    honest = [r for r in pop.profiles if r not in pop.malicious]
    needed: list[int] = []
    never = 0
    limit = 30
    for i in range(cfg.new_spam_numbers):
        primary = MARKETING_LABELS[i % len(MARKETING_LABELS)]
        number = f"+8617{i:09d}"
        at = pop.now
        marks: list[Mark] = []
        found = None
        for n in range(1, limit + 1):
            at += timedelta(minutes=float(rng.exponential(20.0)))
            roll = rng.random()
            if roll < 0.6:
                label = primary
            elif roll < 0.95:
                label = Label.HARASSMENT
            else:
                label = MARKETING_LABELS[int(rng.integers(0, len(MARKETING_LABELS)))]
            reporter = honest[int(rng.integers(0, len(honest)))]
            marks.append(Mark(number, reporter, label, at, reporter))
            rep = reputation(number, marks, pop.profiles, at, cfg.policy)
            if any(lr.label in (primary, Label.HARASSMENT) for lr in rep.displayed):
                found = n
                break
        if found is None:
            never += 1
        else:
            needed.append(found)
    ordered = sorted(needed)
    within_5 = sum(1 for n in needed if n <= 5) / cfg.new_spam_numbers
    report: dict[str, object] = {
        "numbers": cfg.new_spam_numbers,
        "labelled": len(needed),
        "never_within": {"reports": limit, "numbers": never},
        "median": statistics.median(ordered) if ordered else None,
        "p95": ordered[int(0.95 * (len(ordered) - 1))] if ordered else None,
        "max": ordered[-1] if ordered else None,
        "share_within_5": round(within_5, 4),
    }
    return report, within_5


def _brigades(
    pop: Population, cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[dict[str, object], int]:
    """Brigades of k accounts against legitimate businesses (verified and not) that already carry their
    ordinary background of marks from the main simulation."""
    by_number: dict[str, list[Mark]] = defaultdict(list)
    for m in pop.marks:
        by_number[m.number].append(m)
    businesses = [c for c in pop.callers.values() if c.kind is Kind.BUSINESS]
    verified = [c for c in businesses if c.verified][: cfg.brigade_targets]
    unverified = [c for c in businesses if not c.verified][: cfg.brigade_targets]
    result: dict[str, object] = {}
    verified_red_50 = 0
    serial = 0
    for style in ("cheap", "aged"):
        rows = []
        for k in cfg.brigade_sizes:
            red = {"verified": 0, "unverified": 0}
            reviews = 0
            for group, targets in (("verified", verified), ("unverified", unverified)):
                for target in targets:
                    extra: dict[str, ReporterProfile] = {}
                    profiles = ChainMap(extra, pop.profiles)
                    marks = list(by_number.get(target.number, []))
                    start = pop.now - timedelta(days=7)
                    for j in range(k):
                        serial += 1
                        account = f"brigade-{serial}"
                        if style == "cheap":
                            created = start - timedelta(days=float(rng.uniform(0, 30)))
                            device = f"dev-{serial // 5}"
                            at = start + timedelta(minutes=float(rng.uniform(0, 120)))
                        else:
                            created = start - timedelta(days=float(rng.uniform(60, 720)))
                            device = account
                            at = start + timedelta(days=float(rng.uniform(0, 7)))
                        extra[account] = ReporterProfile(account, created)
                        label = Label.FRAUD_SUSPECTED if j % 2 else Label.HARASSMENT
                        marks.append(Mark(target.number, account, label, min(at, pop.now), device))
                    rep: Reputation = reputation(
                        target.number, marks, profiles, pop.now, cfg.policy, verified=_identity(target)
                    )
                    red[group] += int(rep.is_red)
                    if group == "verified" and k >= 50:
                        verified_red_50 += int(rep.is_red)
                    reviews += int(rep.review_needed)
            rows.append(
                {
                    "size": k,
                    "targets_each": len(verified),
                    "verified_turned_red": red["verified"],
                    "unverified_turned_red": red["unverified"],
                    "reviews_opened": reviews,
                }
            )
        result[style] = rows
    return result, verified_red_50


def evaluate(cfg: SimulationConfig) -> dict[str, object]:
    """Run the simulator and report the figures of issue 6, with the targets and whether each is met."""
    pop = simulate(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    quality, precision = _precision_recall(pop, cfg.policy)
    to_flag, within_5 = _marks_to_flag(pop, cfg, rng)
    brigades, verified_red_50 = _brigades(pop, cfg, rng)
    config = asdict(cfg)
    config["policy"] = {k: (str(v) if isinstance(v, timedelta) else v) for k, v in asdict(cfg.policy).items()}
    return {
        "config": config,
        "population": {
            "callers": len(pop.callers),
            "reporters": len(pop.profiles),
            "malicious_reporters": len(pop.malicious),
            "marks": len(pop.marks),
        },
        "quality": quality,
        "marks_to_flag_new_spam": to_flag,
        "brigades": brigades,
        "targets": {
            "warning_precision_at_least_0.999": precision is not None and precision >= 0.999,
            "brigade_of_50_cannot_turn_verified_red": verified_red_50 == 0,
            "new_spam_labelled_within_5_honest_reports": within_5 == 1.0,
        },
    }
