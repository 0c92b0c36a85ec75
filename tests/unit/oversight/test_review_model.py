"""The quarterly review's arithmetic: quarters in China time, changes and shares to one decimal as the
12321 centre prints them, and what is counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.oversight.model import CHINA_TZ, Quarter, QuarterlyReview, Tally, change_percent, share_percent
from quietline.platform.errors import InvalidInput


def test_quarters_parse_and_bound_in_china_time() -> None:
    q = Quarter.parse("2026q1")
    assert (q.code, q.label) == ("2026Q1", "2026年第一季度")
    assert Quarter.parse(" 2026-Q1 ") == q
    assert q.start == datetime(2026, 1, 1, tzinfo=CHINA_TZ)
    assert q.end == datetime(2026, 4, 1, tzinfo=CHINA_TZ)
    assert q.previous() == Quarter(2025, 4) and q.year_before() == Quarter(2025, 1)
    assert Quarter(2025, 4).next() == q
    # 16:30 UTC on Mar 31 is already April 1 in Beijing.
    assert Quarter.containing(datetime(2026, 3, 31, 16, 30, tzinfo=UTC)) == Quarter(2026, 2)
    assert not q.is_over(datetime(2026, 3, 31, 15, 59, tzinfo=UTC))
    assert q.is_over(datetime(2026, 3, 31, 16, 0, tzinfo=UTC))
    for bad in ("2026Q5", "Q1", "2026", ""):
        with pytest.raises(InvalidInput) as info:
            Quarter.parse(bad)
        assert info.value.field == "quarter"


def test_changes_round_half_up_to_one_decimal_like_the_published_reviews() -> None:
    assert change_percent(49_833, 61_224) == -18.6  # 2022Q1 calls: −18.6% on the quarter
    assert change_percent(105, 100) == 5.0
    assert change_percent(1, 8) == -87.5
    assert change_percent(20_001, 20_000) == 0.0  # +0.005% rounds to 0.0
    assert change_percent(10_005, 10_000) == 0.1  # +0.05% rounds half up
    assert change_percent(5, 0) is None
    assert share_percent(1, 3) == 33.3 and share_percent(2, 3) == 66.7 and share_percent(0, 0) == 0.0


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=30))
def test_shares_add_up_to_a_hundred_within_rounding(counts: list[int]) -> None:
    total = sum(counts)
    assert abs(sum(share_percent(c, total) for c in counts) - 100) <= 0.05 * len(counts) + 1e-9


def _case(channel: str, **kw: object) -> dict[str, object]:
    return {
        "channel": channel,
        "state": "forwarded",
        "category": "loan_finance",
        "form": "recorded",
        "reported_type": "mobile",
        "responsible_carrier": "china_unicom",
        **kw,
    }


def test_tally_counts_accepted_cases_by_channel_and_dimension() -> None:
    now = datetime(2026, 4, 2, tzinfo=UTC)
    current = Tally.of(
        [
            _case("call"),
            _case("call", form="bombing", category=None, responsible_carrier="china_mobile"),
            _case("call", state="rejected"),  # not accepted: not counted
            _case("call", state="received"),
            _case("sms", form=None, reported_type="sms_port"),
        ]
    )
    previous = Tally.of([_case("call")] * 4 + [_case("sms")])
    review = QuarterlyReview.build(Quarter(2026, 1), current, previous, Tally.of([]), at=now)
    assert (review.calls.total, review.sms.total) == (2, 1)
    assert review.calls.qoq == -50.0 and review.calls.yoy is None
    assert review.sms.qoq == 0.0
    assert [(s.label, s.count, s.percent) for s in review.calls.by_form] == [
        ("轰炸/呼死你", 1, 50.0),  # ties in code order: bombing < recorded
        ("录音", 1, 50.0),
    ]
    assert [(s.label, s.count) for s in review.calls.by_category] == [("贷款理财", 1), ("未注明", 1)]
    assert {s.label for s in review.calls.by_carrier} == {"中国联通", "中国移动"}
    assert review.sms.by_form == []  # call form is a call dimension only
    assert [s.label for s in review.sms.by_number_type] == ["106 短信端口"]
    assert review.headline() == (
        "2026年第一季度，共受理骚扰电话举报 2 件（环比 -50.0%，同比 —），"
        "垃圾短信举报 1 件（环比 +0.0%，同比 —）。"
    )
    body = review.as_dict()
    assert body["quarter"] == "2026Q1" and body["calls"]["qoq_percent"] == -50.0
