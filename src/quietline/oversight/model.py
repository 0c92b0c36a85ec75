"""The quarterly review of complaints (骚扰电话举报情况盘点 / 非应邀商业电子信息投诉情况盘点), as pure values.

What the 12321 centre publishes each quarter (REFERENCE.md, "12321 and complaints"): for calls and for
SMS separately, the total, its change on the previous quarter (环比) and on the same quarter a year
before (同比) as percentages to one decimal, and the shares by content category, by call form
(人工/录音/轰炸/响一声, calls only), by number type (mobile, 95/96, 170/171, 400, short numbers …) and by
carrier. Counting unit: one accepted complaint case — repeat reports of the same number by the same
reporter within a day are merged into one case by intake, and rejected reports (incomplete or out of
scope, 不予受理) are not counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from quietline.platform.errors import InvalidInput
from quietline.vocabulary import CallForm, Carrier, Category, Channel, NumberType, VocabularyError

CHINA_TZ = timezone(timedelta(hours=8), "CST")
QUARTER_NAMES = {1: "第一季度", 2: "第二季度", 3: "第三季度", 4: "第四季度"}
_QUARTER = re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Qq]([1-4])\s*$")
#: Case states that do not count: the report was not accepted.
NOT_COUNTED_STATES = frozenset({"received", "rejected"})
UNKNOWN = "unknown"
COUNTING_UNIT = "accepted complaint cases (same-day repeats by one reporter merged; rejected not counted)"


@dataclass(frozen=True, slots=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``2026Q3``, ``2026-Q3`` or ``2026 q3``."""
        match = _QUARTER.match(text or "")
        if match is None:
            raise InvalidInput(f"{text!r} is not a quarter; write it like 2026Q3", field="quarter")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> Quarter:
        local = moment.astimezone(CHINA_TZ)
        return cls(local.year, (local.month - 1) // 3 + 1)

    @property
    def code(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        return f"{self.year}年{QUARTER_NAMES[self.number]}"

    @property
    def start(self) -> datetime:
        """The first instant of the quarter, China time."""
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=CHINA_TZ)

    @property
    def end(self) -> datetime:
        """The first instant after the quarter, China time."""
        return self.next().start

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def year_before(self) -> Quarter:
        return Quarter(self.year - 1, self.number)

    def is_over(self, now: datetime) -> bool:
        return now >= self.end


def one_decimal(value: Decimal) -> float:
    """Round half up to one decimal, as the published reviews print (−18.6%, +2.8%)."""
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def change_percent(current: int, before: int) -> float | None:
    """Percentage change from ``before`` to ``current``; None when there was nothing to compare with."""
    if before <= 0:
        return None
    return one_decimal((Decimal(current) - Decimal(before)) * 100 / Decimal(before))


def share_percent(count: int, total: int) -> float:
    return 0.0 if total <= 0 else one_decimal(Decimal(count) * 100 / Decimal(total))


@dataclass(frozen=True, slots=True)
class Share:
    code: str
    label: str
    count: int
    percent: float

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "count": self.count, "percent": self.percent}


def _label(kind: str, code: str) -> str:
    if code == UNKNOWN:
        return "未注明"
    try:
        if kind == "category":
            return Category.parse(code).label
        if kind == "form":
            return CallForm.parse(code).label
        if kind == "number_type":
            return NumberType.parse(code).label
        if kind == "carrier":
            return Carrier.parse(code).label
    except VocabularyError:
        pass
    return code


def shares(kind: str, counts: Mapping[str, int], total: int) -> list[Share]:
    """Shares largest first (ties by code, so the order is stable)."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Share(code, _label(kind, code), n, share_percent(n, total)) for code, n in ordered]


@dataclass(frozen=True, slots=True)
class ChannelReview:
    channel: Channel
    total: int
    previous_total: int
    year_before_total: int
    by_category: list[Share]
    by_form: list[Share]
    by_number_type: list[Share]
    by_carrier: list[Share]

    @property
    def qoq(self) -> float | None:
        return change_percent(self.total, self.previous_total)

    @property
    def yoy(self) -> float | None:
        return change_percent(self.total, self.year_before_total)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel.value,
            "channel_zh": self.channel.label,
            "total": self.total,
            "previous_quarter_total": self.previous_total,
            "same_quarter_last_year_total": self.year_before_total,
            "qoq_percent": self.qoq,
            "yoy_percent": self.yoy,
            "by_category": [s.as_dict() for s in self.by_category],
            "by_form": [s.as_dict() for s in self.by_form],
            "by_number_type": [s.as_dict() for s in self.by_number_type],
            "by_carrier": [s.as_dict() for s in self.by_carrier],
        }


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of one quarter's counted cases, per channel and dimension."""

    totals: Counter[str]
    by: dict[tuple[str, str], Counter[str]]

    @classmethod
    def of(cls, cases: Iterable[Mapping[str, Any]]) -> Tally:
        totals: Counter[str] = Counter()
        by: dict[tuple[str, str], Counter[str]] = {}
        for case in cases:
            if case.get("state") in NOT_COUNTED_STATES:
                continue
            channel = str(case["channel"])
            totals[channel] += 1
            dims = {
                "category": case.get("category"),
                "number_type": case.get("reported_type"),
                "carrier": case.get("responsible_carrier"),
            }
            if channel == Channel.CALL.value:
                dims["form"] = case.get("form")
            for kind, code in dims.items():
                by.setdefault((channel, kind), Counter())[str(code or UNKNOWN)] += 1
        return cls(totals, by)

    def channel(self, channel: Channel, previous: Tally, year_before: Tally) -> ChannelReview:
        total = self.totals.get(channel.value, 0)

        def dim(kind: str) -> list[Share]:
            return shares(kind, self.by.get((channel.value, kind), Counter()), total)

        return ChannelReview(
            channel=channel,
            total=total,
            previous_total=previous.totals.get(channel.value, 0),
            year_before_total=year_before.totals.get(channel.value, 0),
            by_category=dim("category"),
            by_form=dim("form") if channel is Channel.CALL else [],
            by_number_type=dim("number_type"),
            by_carrier=dim("carrier"),
        )


@dataclass(frozen=True, slots=True)
class QuarterlyReview:
    quarter: Quarter
    calls: ChannelReview
    sms: ChannelReview
    computed_at: datetime

    @classmethod
    def build(
        cls, quarter: Quarter, current: Tally, previous: Tally, year_before: Tally, *, at: datetime
    ) -> QuarterlyReview:
        return cls(
            quarter=quarter,
            calls=current.channel(Channel.CALL, previous, year_before),
            sms=current.channel(Channel.SMS, previous, year_before),
            computed_at=at,
        )

    def headline(self) -> str:
        """The review's opening sentence, in the published style."""

        def part(review: ChannelReview) -> str:
            def signed(value: float | None) -> str:
                return "—" if value is None else f"{value:+.1f}%"

            return f"{review.total:,} 件（环比 {signed(review.qoq)}，同比 {signed(review.yoy)}）"

        calls, sms = part(self.calls), part(self.sms)
        return f"{self.quarter.label}，共受理骚扰电话举报 {calls}，垃圾短信举报 {sms}。"

    def as_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter.code,
            "quarter_zh": self.quarter.label,
            "period": {"start": self.quarter.start.isoformat(), "end": self.quarter.end.isoformat()},
            "counting_unit": COUNTING_UNIT,
            "headline": self.headline(),
            "calls": self.calls.as_dict(),
            "sms": self.sms.as_dict(),
            "computed_at": self.computed_at.isoformat(),
        }
