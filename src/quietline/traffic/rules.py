"""Detection rules with configurable thresholds, and the findings they produce.

Each rule is an Ibis boolean over the per-caller features (so it runs wherever the features run),
and each finding carries the counts and windows that triggered it, so that a carrier analyst can
check it against the call records. The defaults come from the patterns the issue describes:

* 呼死你 call bombing: one callee dialled every 2–3 s; nobody legitimately calls one person 20 times
  in 10 minutes, while the generator's redialling subscribers reach 5.
* 响一声 one-ring: unanswered calls ringing ≤ 3 s, swept across many distinct numbers.
* Bulk dialers: above the daily per-line quota; regulators have cited 800 calls per agent per day
  (REFERENCE.md "Abnormal traffic").
* Spoofed IDs: a +86 caller ID arriving on an international gateway trunk. MIIT requires carriers
  to intercept international incoming calls that present domestic numbers (工信部《关于进一步防范和
  打击通讯信息诈骗的通知》2016; DESIGN.md "Caller numbers": no spoofed caller ID).

A number is reported once, under the first pattern it matches in :data:`PRECEDENCE` (the most
specific and most urgent first); the other patterns it matched are listed in its evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import ibis.expr.types as ir

from quietline.platform.errors import InvalidInput
from quietline.traffic.features import HOP_SECONDS

RULE_PATTERNS = ("bombing", "one_ring", "spoofed", "bulk_dialer")
PRECEDENCE = (*RULE_PATTERNS, "fraud_risk")


@dataclass(frozen=True)
class Thresholds:
    """Every rule threshold, overridable from the CLI (``--threshold name=value``)."""

    #: Calls to one callee within a sliding 10-minute window that make a bombing.
    bombing_window_calls: int = 20
    #: A bombing whose last window ends within this many minutes of the data's end is "in progress"
    #: and becomes a temporary block (unless allow-listed).
    bombing_in_progress_minutes: int = 30
    one_ring_min_calls: int = 50
    one_ring_min_short_ring_ratio: float = 0.8
    one_ring_min_distinct_ratio: float = 0.8
    one_ring_max_answer_rate: float = 0.1
    #: Calls per line per local day (800 cited by regulators as the call-centre level).
    bulk_daily_quota: int = 800
    #: A bulk dialer spreads its calls: at most this many calls per distinct callee on average.
    bulk_max_calls_per_callee: float = 10.0
    bulk_max_short_ring_ratio: float = 0.5
    #: +86 caller IDs seen on international gateway trunks before a number is reported.
    spoofed_min_calls: int = 1
    #: Risk score from which a number without a rule finding is reported as ``fraud_risk``.
    fraud_risk_min_score: float = 0.5

    def with_overrides(self, pairs: list[str]) -> Thresholds:
        """Apply ``name=value`` overrides; unknown names and bad values are user errors."""
        values: dict[str, Any] = asdict(self)
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip()
            if not sep or name not in values:
                known = ", ".join(values)
                raise InvalidInput(f"unknown threshold {pair!r}; known: {known}", field="threshold")
            kind = type(values[name])
            try:
                value = kind(text)
            except ValueError:
                raise InvalidInput(
                    f"{name} needs a {kind.__name__}, got {text!r}", field="threshold"
                ) from None
            if value < 0:
                raise InvalidInput(f"{name} must not be negative", field="threshold")
            values[name] = value
        return Thresholds(**values)


def flag(features: ir.Table, th: Thresholds) -> ir.Table:
    """Add one boolean column per rule pattern (``is_<pattern>``) to the feature table."""
    f = features
    return f.mutate(
        is_bombing=f.max_window_calls >= th.bombing_window_calls,
        is_one_ring=(f.calls >= th.one_ring_min_calls)
        & (f.short_ring_ratio >= th.one_ring_min_short_ring_ratio)
        & (f.distinct_ratio >= th.one_ring_min_distinct_ratio)
        & (f.answer_rate <= th.one_ring_max_answer_rate),
        is_bulk_dialer=(f.max_day_calls.fill_null(0) > th.bulk_daily_quota)
        & (f.calls_per_callee <= th.bulk_max_calls_per_callee)
        & (f.short_ring_ratio < th.bulk_max_short_ring_ratio),
        is_spoofed=f.intl86 >= max(1, th.spoofed_min_calls),
    )


@dataclass
class Finding:
    """One reported number: what it looks like, how sure, the evidence and what should happen."""

    number: str
    pattern: str
    score: float
    evidence: dict[str, Any]
    action: str = "review"
    allow_listed: bool = False
    also_matched: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat()


def _strength(value: float, threshold: float) -> float:
    """How far past its threshold a value is, as a score in [0.5, 1): 0.5 at the threshold."""
    if value <= 0:
        return 0.5
    return round(1.0 - 0.5 * min(1.0, max(threshold, 1e-9) / value), 4)


def _common(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "calls": int(row["calls"]),
        "distinct_callees": int(row["distinct_callees"]),
        "answer_rate": round(float(row["answer_rate"]), 4),
        "first_call": _iso(row["first_ts"]),
        "last_call": _iso(row["last_ts"]),
    }


def findings_from_rows(
    rows: list[dict[str, Any]],
    th: Thresholds,
    *,
    data_end: float | None,
    allow_list: frozenset[int] = frozenset(),
    risk_scores: dict[int, float] | None = None,
) -> list[Finding]:
    """Turn flagged feature rows into findings (one per number, by precedence)."""
    out: list[Finding] = []
    risk_scores = risk_scores or {}
    for row in rows:
        number = int(row["number"])
        matched = [p for p in RULE_PATTERNS if row.get(f"is_{p}")]
        risk = risk_scores.get(number)
        if risk is not None and risk >= th.fraud_risk_min_score:
            matched.append("fraud_risk")
        if not matched:
            continue
        pattern = min(matched, key=PRECEDENCE.index)
        evidence = _common(row)
        action = "review"
        if pattern == "bombing":
            start = int(row["window_bucket"]) * HOP_SECONDS - HOP_SECONDS
            end = int(row["window_bucket"]) * HOP_SECONDS + HOP_SECONDS
            evidence.update(
                max_calls_to_one_callee_in_10_min=int(row["max_window_calls"]),
                victim=f"+{int(row['window_victim'])}",
                window_start=_iso(start),
                window_end=_iso(end),
                threshold=th.bombing_window_calls,
            )
            score = _strength(row["max_window_calls"], th.bombing_window_calls)
            last_end = (int(row["bombing_last_bucket"]) + 1) * HOP_SECONDS
            if data_end is not None and data_end - last_end <= th.bombing_in_progress_minutes * 60:
                action = "temporary_block"
        elif pattern == "one_ring":
            evidence.update(
                unanswered_short_rings=int(row["one_ring"]),
                short_ring_ratio=round(float(row["short_ring_ratio"]), 4),
                mean_ring_seconds=round(float(row["mean_ring"]), 2),
                distinct_callee_ratio=round(float(row["distinct_ratio"]), 4),
                thresholds={
                    "min_calls": th.one_ring_min_calls,
                    "min_short_ring_ratio": th.one_ring_min_short_ring_ratio,
                },
            )
            score = _strength(row["one_ring"], th.one_ring_min_calls)
        elif pattern == "spoofed":
            evidence.update(
                calls_with_86_id_on_international_trunk=int(row["intl86"]),
                trunk_count=int(row["trunk_count"]),
                rule="international incoming call presenting a +86 caller ID",
            )
            score = _strength(row["intl86"] + 1, max(1, th.spoofed_min_calls))
        elif pattern == "bulk_dialer":
            day = int(row["max_day"])
            evidence.update(
                max_calls_in_one_day=int(row["max_day_calls"]),
                busiest_day=datetime.fromtimestamp(day * 86_400, UTC).date().isoformat(),
                daily_quota=th.bulk_daily_quota,
                active_days=int(row["active_days"]),
                distinct_callee_ratio=round(float(row["distinct_ratio"]), 4),
            )
            score = _strength(row["max_day_calls"], th.bulk_daily_quota)
        else:
            evidence.update(
                risk_score=round(float(risk or 0.0), 4),
                calls_per_callee=round(float(row["calls_per_callee"]), 3),
                reciprocity=round(float(row["reciprocity"]), 4),
                outgoing_share=round(float(row["outgoing_share"]), 4),
                active_days=int(row["active_days"]),
                imei_count=int(row["imei_count"]),
                mean_talk_seconds=round(float(row["mean_talk"]), 1),
            )
            score = round(float(risk or 0.0), 4)
        allowed = number in allow_list
        if allowed:
            # Allow-listed legitimate high-volume callers (delivery platforms, banks) are never
            # blocked automatically: a finding about them always goes to a human (issue 7 "Action").
            action = "review"
        out.append(
            Finding(
                number=f"+{number}",
                pattern=pattern,
                score=score,
                evidence=evidence,
                action=action,
                allow_listed=allowed,
                also_matched=[p for p in matched if p != pattern],
            )
        )
    out.sort(key=lambda f: (PRECEDENCE.index(f.pattern), -f.score, f.number))
    return out
