"""The daily digest SMS (今日为您拦截 N 个营销来电): one per subscriber and day, however often it runs,
and a failed send is retried by the next run, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender, SmsMessage
from quietline.platform.workdays import CHINA_TZ
from quietline.screening import actions
from quietline.screening.engine import BlockEvent
from quietline.screening.orm import DigestSentRow

DAY = date(2026, 1, 5)
ALICE, BOB = "+8613800138000", "+8613900139000"


def _blocks(rt: Runtime, callee: str, n: int, *, channel: str = "call", day: date = DAY) -> None:
    at = datetime(day.year, day.month, day.day, 10, 0, tzinfo=CHINA_TZ)
    actions.record_blocks(
        rt,
        [
            BlockEvent(
                at + timedelta(minutes=i),
                "+8613012345678",
                callee,
                channel,
                "loan_finance",
                "refused_category",
                "6",
            )
            for i in range(n)
        ],
    )


def _digests(sms: RecordingSmsSender) -> list[tuple[str, str]]:
    return [(m.to, m.text) for m in sms.sent if m.purpose == "screening.digest"]


def test_a_second_run_for_the_same_day_sends_nothing_again(
    any_runtime: Runtime, sms: RecordingSmsSender
) -> None:
    rt = any_runtime
    actor = Actor.operator("digest-test")
    _blocks(rt, ALICE, 2)
    _blocks(rt, ALICE, 1, channel="sms")
    assert actions.send_daily_digests(rt, actor, DAY) == 1
    assert _digests(sms) == [
        (ALICE, "【quietline】1月5日为您拦截 2 个营销来电、1 条营销短信，详情可在拦截记录中查看。")
    ]
    # A block recorded late and a second run (a retry, another worker): Bob gets his, Alice nothing more.
    _blocks(rt, BOB, 1)
    assert actions.send_daily_digests(rt, actor, DAY) == 1
    assert [to for to, _ in _digests(sms)] == [ALICE, BOB]
    assert actions.send_daily_digests(rt, actor, DAY) == 0
    assert len(_digests(sms)) == 2
    # The next day is a new day.
    _blocks(rt, ALICE, 1, day=DAY + timedelta(days=1))
    assert actions.send_daily_digests(rt, actor, DAY + timedelta(days=1)) == 1
    with rt.sessions() as session:
        runs = [e.after for e in reversed(audit.for_subject(session, "day", DAY.isoformat()))]
    assert runs == [
        {"subscribers": 1, "already_sent": 0},
        {"subscribers": 1, "already_sent": 1},
        {"subscribers": 0, "already_sent": 2},
    ]


class FailingFor(RecordingSmsSender):
    """A gateway that fails for one number (until told otherwise)."""

    def __init__(self, number: str) -> None:
        super().__init__()
        self.failing: str | None = number

    def send(self, message: SmsMessage) -> None:
        if message.to == self.failing:
            raise ConnectionError("gateway unreachable")
        super().send(message)


def test_a_failed_send_is_withdrawn_and_sent_by_the_next_run(any_runtime: Runtime) -> None:
    rt = any_runtime
    gateway = FailingFor(BOB)
    rt.sms = gateway
    actor = Actor.operator("digest-test")
    _blocks(rt, ALICE, 1)
    _blocks(rt, BOB, 3)
    with pytest.raises(ConnectionError):
        actions.send_daily_digests(rt, actor, DAY)
    assert _digests(gateway) == [
        (ALICE, "【quietline】1月5日为您拦截 1 个营销来电，详情可在拦截记录中查看。")
    ]
    with rt.sessions() as session:
        assert set(session.scalars(select(DigestSentRow.callee))) == {ALICE}
    gateway.failing = None
    assert actions.send_daily_digests(rt, actor, DAY) == 1
    assert [to for to, _ in _digests(gateway)] == [ALICE, BOB]


def test_claims_older_than_a_week_are_purged(any_runtime: Runtime, sms: RecordingSmsSender) -> None:
    rt = any_runtime
    actor = Actor.operator("digest-test")
    _blocks(rt, ALICE, 1)
    actions.send_daily_digests(rt, actor, DAY)
    later = DAY + timedelta(days=actions.DIGEST_CLAIM_DAYS + 1)
    actions.send_daily_digests(rt, actor, later)
    with rt.sessions() as session:
        assert list(session.scalars(select(DigestSentRow.day))) == []
