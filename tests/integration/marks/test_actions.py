"""Marks on a real database (SQLite and PostgreSQL): one live mark per reporter, rate limits, the change
feed, recycling, verified identities and reviews, the high-risk list, and appeals with their deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from quietline.marks import actions, queries
from quietline.marks.model import Label, RateLimit
from quietline.marks.orm import JudgmentTimeRow, LabelStateRow, ReporterRow
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock, as_utc
from quietline.platform.errors import Conflict, InvalidInput, PermissionDenied, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role

OP = Actor.operator("test")
CARRIER = Actor(Role.CARRIER, "china_mobile")
NUMBER = "+8613912345678"


def reporter(i: int) -> str:
    return f"+86138{i:08d}"


def mark_n(rt: Runtime, n: int, label: str = "real_estate", number: str = NUMBER, start: int = 0) -> None:
    for i in range(start, start + n):
        actions.add_mark(rt, OP, number=number, label=label, reporter=reporter(i))


def feed(rt: Runtime, topic: str) -> list[dict[str, object]]:
    with rt.sessions() as session:
        return [c.payload for c in changefeed.read_after(session, 0, topics=(topic,))]


def test_four_distinct_reporters_display_a_label_and_announce_it(any_runtime: Runtime) -> None:
    mark_n(any_runtime, 3)
    with any_runtime.sessions() as session:
        rep = queries.reputation_of(session, "139 1234 5678", any_runtime.clock.now())
    assert not rep.displayed
    assert feed(any_runtime, actions.TOPIC_LABEL) == []
    added = actions.add_mark(any_runtime, OP, number="13912345678", label="房产中介", reporter=reporter(3))
    assert [lr.label for lr in added.reputation.displayed] == [Label.REAL_ESTATE]
    assert feed(any_runtime, actions.TOPIC_LABEL) == [
        {"number": NUMBER, "label": "real_estate", "displayed": True}
    ]
    with any_runtime.sessions() as session:
        entries = audit.for_subject(session, "number", NUMBER)
        assert [e.action for e in entries] == ["marks.add"] * 4
        assert [e.value for e in queries.snapshot(session)[0].labels] == ["real_estate"]


def test_a_new_mark_replaces_the_reporters_old_one(any_runtime: Runtime) -> None:
    first = actions.add_mark(any_runtime, OP, number=NUMBER, label="harassment", reporter=reporter(1))
    assert first.replaced is None
    second = actions.add_mark(
        any_runtime, OP, number=NUMBER, label="delivery_ride_hailing", reporter=reporter(1)
    )
    assert second.replaced is Label.HARASSMENT
    labels = {lr.label: lr.count for lr in second.reputation.labels}
    assert labels == {Label.DELIVERY_RIDE_HAILING: 1}


def test_legitimate_marks_take_a_label_down_again(any_runtime: Runtime) -> None:
    mark_n(any_runtime, 4, "harassment")
    mark_n(any_runtime, 4, "legitimate", start=100)
    with any_runtime.sessions() as session:
        rep = queries.reputation_of(session, NUMBER, any_runtime.clock.now())
    assert not rep.is_red
    assert feed(any_runtime, actions.TOPIC_LABEL)[-1] == {
        "number": NUMBER,
        "label": "harassment",
        "displayed": False,
    }


def test_rate_limit_per_reporter(any_runtime: Runtime, clock: FakeClock) -> None:
    limit = RateLimit(limit=3)
    for i in range(3):
        actions.add_mark(
            any_runtime,
            OP,
            number=f"+8613912340{i:03d}",
            label="harassment",
            reporter=reporter(1),
            rate_limit=limit,
        )
    with pytest.raises(RateLimited) as caught:
        actions.add_mark(
            any_runtime, OP, number=NUMBER, label="harassment", reporter=reporter(1), rate_limit=limit
        )
    assert caught.value.field == "reporter"
    clock.advance(days=1, seconds=1)
    actions.add_mark(
        any_runtime, OP, number=NUMBER, label="harassment", reporter=reporter(1), rate_limit=limit
    )


def test_bad_marks_are_refused_with_the_field(runtime: Runtime) -> None:
    cases = [
        ({"number": "110", "label": "harassment", "reporter": reporter(1)}, "number"),
        ({"number": NUMBER, "label": "nonsense", "reporter": reporter(1)}, "label"),
        ({"number": NUMBER, "label": "harassment", "reporter": NUMBER}, "number"),
        ({"number": NUMBER, "label": "harassment", "reporter": "010-12345678"}, "reporter"),
        ({"number": "139", "label": "harassment", "reporter": reporter(1)}, "number"),
    ]
    for kwargs, field in cases:
        with pytest.raises((InvalidInput, ValueError)) as caught:
            actions.add_mark(runtime, OP, **kwargs)
        assert getattr(caught.value, "field", None) == field, kwargs
    future = runtime.clock.now() + timedelta(days=1)
    with pytest.raises(InvalidInput) as caught:
        actions.add_mark(runtime, OP, number=NUMBER, label="harassment", reporter=reporter(1), at=future)
    assert caught.value.field == "at"


def test_a_subscriber_marks_only_as_itself_and_cannot_backdate(runtime: Runtime) -> None:
    me = Actor(Role.SUBSCRIBER, reporter(1))
    with pytest.raises(PermissionDenied):
        actions.add_mark(runtime, me, number=NUMBER, label="harassment", reporter=reporter(2))
    long_ago = runtime.clock.now() - timedelta(days=30)
    added = actions.add_mark(
        runtime, me, number=NUMBER, label="harassment", reporter=reporter(1), at=long_ago
    )
    assert added.reputation.labels[0].last_at == runtime.clock.now()
    with pytest.raises(PermissionDenied):
        actions.add_mark(runtime, CARRIER, number=NUMBER, label="harassment", reporter=reporter(1))


def test_new_app_accounts_in_a_burst_count_once(runtime: Runtime) -> None:
    for i in range(30):
        actions.add_mark(
            runtime,
            Actor(Role.SUBSCRIBER, reporter(i)),
            number=NUMBER,
            label="fraud_suspected",
            reporter=reporter(i),
        )
    with runtime.sessions() as session:
        rep = queries.reputation_of(session, NUMBER, runtime.clock.now())
    fraud = rep.label(Label.FRAUD_SUSPECTED)
    assert fraud is not None
    assert (fraud.count, fraud.effective, fraud.displayed) == (30, 1, False)


def test_recycling_clears_everything_and_old_marks_stay_out(any_runtime: Runtime, clock: FakeClock) -> None:
    mark_n(any_runtime, 5, "fraud_suspected")
    assert feed(any_runtime, actions.TOPIC_HIGH_RISK) == [{"number": NUMBER, "state": "suspected"}]
    before = clock.now()
    clock.advance(hours=1)
    done = actions.recycle(any_runtime, CARRIER, "13912345678")
    assert (done.marks_cleared, done.labels_cleared, done.high_risk_cleared) == (
        5,
        ("fraud_suspected",),
        True,
    )
    with any_runtime.sessions() as session:
        assert queries.reputation_of(session, NUMBER, clock.now()).labels == ()
        assert queries.snapshot(session) == []
    assert feed(any_runtime, actions.TOPIC_LABEL)[-1] == {
        "number": NUMBER,
        "label": "fraud_suspected",
        "displayed": False,
    }
    with pytest.raises(InvalidInput) as caught:
        actions.add_mark(any_runtime, OP, number=NUMBER, label="harassment", reporter=reporter(9), at=before)
    assert caught.value.field == "at"
    with pytest.raises(PermissionDenied):
        actions.recycle(any_runtime, Actor(Role.SUBSCRIBER, NUMBER), NUMBER)


def test_verified_identity_opens_a_review_instead_of_turning_red(any_runtime: Runtime) -> None:
    actions.register_identity(
        any_runtime,
        OP,
        number=NUMBER,
        name="某某银行信用卡中心",
        purpose="客服",
        proof="ledger",
        owner="91350100M000100Y43",
    )
    mark_n(any_runtime, 50, "fraud_suspected")
    with any_runtime.sessions() as session:
        rep = queries.reputation_of(session, NUMBER, any_runtime.clock.now())
        reviews = queries.list_reviews(session, "open")
        assert queries.high_risk(session, NUMBER) is None
    assert not rep.is_red
    assert rep.verified is not None
    assert rep.verified.display == "某某银行信用卡中心 · 客服"
    assert [(r.number, set(r.labels)) for r in reviews] == [
        (NUMBER, {Label.FRAUD_SUSPECTED, Label.HARASSMENT})
    ]
    assert feed(any_runtime, actions.TOPIC_LABEL) == []
    closed = actions.close_review(any_runtime, OP, reviews[0].id, "dismissed")
    assert closed.outcome == "dismissed"
    with any_runtime.sessions() as session:
        assert queries.reputation_of(session, NUMBER, any_runtime.clock.now()).labels == ()
        row = session.get(ReporterRow, reporter(0))
        assert row is not None
        assert row.disagreed == 1


def test_enterprise_registers_only_for_itself(runtime: Runtime) -> None:
    ent = Actor(Role.ENTERPRISE, "91350100M000100Y43")
    actions.register_identity(runtime, ent, number=NUMBER, name="某某公司", purpose="客服", proof="otp")
    other = Actor(Role.ENTERPRISE, "91110000600037341L")
    with pytest.raises(Conflict):
        actions.register_identity(runtime, other, number=NUMBER, name="冒名", purpose="", proof="otp")
    with pytest.raises(InvalidInput) as caught:
        actions.register_identity(runtime, ent, number=NUMBER, name="某某公司", purpose="", proof="trust-me")
    assert caught.value.field == "proof"


def test_high_risk_life_cycle_and_credibility_feedback(any_runtime: Runtime) -> None:
    mark_n(any_runtime, 4, "fraud_suspected")
    entry = actions.move_high_risk(any_runtime, CARRIER, number=NUMBER, state="verified", reason="核实为诈骗")
    assert entry.state.value == "verified"
    with pytest.raises(Conflict):
        actions.move_high_risk(any_runtime, CARRIER, number=NUMBER, state="suspected")
    with pytest.raises(PermissionDenied):
        actions.move_high_risk(any_runtime, Actor(Role.REGULATOR, "miit"), number=NUMBER, state="acted")
    actions.move_high_risk(any_runtime, CARRIER, number=NUMBER, state="acted", reason="已停机")
    actions.move_high_risk(any_runtime, CARRIER, number=NUMBER, state="cleared")
    assert [p["state"] for p in feed(any_runtime, actions.TOPIC_HIGH_RISK)] == [
        "suspected",
        "verified",
        "acted",
        "cleared",
    ]
    with any_runtime.sessions() as session:
        agreed = session.scalars(select(ReporterRow.agreed).order_by(ReporterRow.reporter)).all()
    assert agreed == [1, 1, 1, 1]
    flagged = actions.flag_high_risk(
        any_runtime, OP, number="13700000001", source="police", reason="公安通报"
    )
    assert (flagged.state.value, flagged.source.value) == ("suspected", "police")


def test_appeal_due_in_three_working_days_upheld_withdraws_marks(
    any_runtime: Runtime, clock: FakeClock, sms: RecordingSmsSender
) -> None:
    # Friday 2026-09-25 (Beijing): National Day 2026 runs Oct 1–7, so 3 working days end Sep 30.
    clock.set(datetime(2026, 9, 25, 2, 0, tzinfo=UTC))
    mark_n(any_runtime, 5, "harassment")
    owner = Actor(Role.SUBSCRIBER, NUMBER)
    with pytest.raises(PermissionDenied):
        actions.open_appeal(
            any_runtime, Actor(Role.SUBSCRIBER, reporter(1)), number=NUMBER, label="harassment", reason="x"
        )
    appeal = actions.open_appeal(
        any_runtime, owner, number=NUMBER, label="骚扰电话", reason="这是我的私人号码"
    )
    assert appeal.due == date(2026, 9, 30)
    assert appeal.proof == "otp_session"
    with pytest.raises(Conflict):
        actions.open_appeal(any_runtime, owner, number=NUMBER, label="harassment", reason="again")
    clock.advance(days=1)
    decision = actions.decide_appeal(any_runtime, OP, appeal.id, outcome="upheld", note="号码已核实")
    assert decision.appeal.outcome == "upheld"
    assert decision.appeal.decided_late is False
    assert decision.appeal.marks_affected == 5
    assert decision.notified
    assert "纠错成立" in sms.last_to(NUMBER).text
    with any_runtime.sessions() as session:
        assert queries.reputation_of(session, NUMBER, clock.now()).labels == ()
        disagreed = session.scalars(select(ReporterRow.disagreed)).all()
    assert disagreed == [1] * 5
    assert feed(any_runtime, actions.TOPIC_LABEL)[-1]["displayed"] is False


def test_late_rejected_appeal_is_recorded_late_and_marks_stay(runtime: Runtime, clock: FakeClock) -> None:
    clock.set(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # Monday
    mark_n(runtime, 4, "loan_finance")
    appeal = actions.open_appeal(
        runtime, OP, number=NUMBER, label="loan_finance", reason="not us", proof="carrier_statement"
    )
    assert appeal.due == date(2026, 3, 5)
    clock.set(datetime(2026, 3, 6, 2, 0, tzinfo=UTC))
    decision = actions.decide_appeal(runtime, OP, appeal.id, outcome="rejected")
    assert decision.appeal.decided_late is True
    with runtime.sessions() as session:
        assert queries.reputation_of(session, NUMBER, clock.now()).is_red
    with pytest.raises(InvalidInput):
        actions.open_appeal(
            runtime, OP, number=NUMBER, label="one_ring", reason="x", proof="carrier_statement"
        )


def test_refresh_takes_down_labels_whose_evidence_decayed(any_runtime: Runtime, clock: FakeClock) -> None:
    mark_n(any_runtime, 4, "harassment")
    assert actions.refresh(any_runtime, OP) == 0
    clock.advance(days=300)
    assert actions.refresh(any_runtime, OP) == 1
    assert feed(any_runtime, actions.TOPIC_LABEL)[-1] == {
        "number": NUMBER,
        "label": "harassment",
        "displayed": False,
    }


def test_bulk_ingest_reports_each_rejection(any_runtime: Runtime) -> None:
    items = [actions.MarkInput(NUMBER, "harassment", reporter(i)) for i in range(6)]
    items.append(actions.MarkInput("12", "harassment", reporter(50)))
    items.append(actions.MarkInput(NUMBER, "bogus", reporter(51)))
    result = actions.ingest(any_runtime, OP, items)
    assert result.accepted == 6
    assert [(r.index, r.field) for r in result.rejected] == [(6, "number"), (7, "label")]
    assert result.reputations[NUMBER].is_red
    assert result.label_changes == 1


def test_ledger_sync_never_overwrites_another_owners_identity(any_runtime: Runtime) -> None:
    actions.register_identity(
        any_runtime, OP, number=NUMBER, name="甲公司", purpose="", proof="otp", owner="A"
    )
    claims = [
        actions.OwnershipClaim(NUMBER, "B", "乙公司", "客户服务"),
        actions.OwnershipClaim("+8613700000001", "B", "乙公司", "通知提醒"),
    ]
    done = actions.sync_identities(any_runtime, OP, claims)
    assert (done.registered, done.conflicts) == (1, [NUMBER])
    with any_runtime.sessions() as session:
        assert queries.load_identities(session, [NUMBER])[NUMBER].owner == "A"
    again = actions.sync_identities(any_runtime, OP, claims[1:])
    assert (again.registered, again.updated, again.removed) == (0, 0, 0)
    gone = actions.sync_identities(any_runtime, OP, [])
    assert gone.removed == 1
    with pytest.raises(PermissionDenied):
        actions.sync_identities(any_runtime, Actor(Role.ENTERPRISE, "B"), claims)


def test_bulk_ingest_rate_limits_each_reporter(runtime: Runtime) -> None:
    items = [actions.MarkInput(f"+8613912340{i:03d}", "harassment", reporter(1)) for i in range(5)]
    result = actions.ingest(runtime, OP, items, rate_limit=RateLimit(limit=3))
    assert result.accepted == 3
    assert [(r.index, r.field) for r in result.rejected] == [(3, "reporter"), (4, "reporter")]


def test_block_standing_counts_warnings_in_the_ten_and_hundred_blocks(any_runtime: Runtime) -> None:
    for last in range(5):
        mark_n(any_runtime, 4, "harassment", number=f"+861391234560{last}")
    mark_n(any_runtime, 4, "delivery_ride_hailing", number="+8613912345606")
    mark_n(any_runtime, 4, "harassment", number="+8613912345611")
    with any_runtime.sessions() as session:
        standing = queries.block_standing(session, "+8613912345609")
        elsewhere = queries.block_standing(session, "+8613912345619")
    assert (standing.red_in_10, standing.red_in_100, standing.suspected) == (5, 6, True)
    assert (elsewhere.red_in_10, elsewhere.suspected) == (1, False)
    assert standing.as_dict()["block10"] == "+861391234560x"


def test_successive_batches_share_one_rate_limit_window(any_runtime: Runtime) -> None:
    """Two batches for the same new reporter in separate transactions count in one window: the second
    finds and locks the row the first created, with its count."""
    limit = RateLimit(limit=4)
    first = [actions.MarkInput(f"+8613912340{i:03d}", "harassment", reporter(7)) for i in range(3)]
    second = [actions.MarkInput(f"+8613912341{i:03d}", "harassment", reporter(7)) for i in range(3)]
    assert actions.ingest(any_runtime, OP, first, rate_limit=limit).accepted == 3
    result = actions.ingest(any_runtime, OP, second, rate_limit=limit)
    assert (result.accepted, len(result.rejected)) == (1, 2)


def test_bulk_ingest_writes_the_same_rows_on_both_backends(any_runtime: Runtime) -> None:
    """The PostgreSQL path stages the batch with COPY and writes set-based: the same live marks, audit rows
    and rate-limit windows as SQLite, whatever characters a device id holds."""
    first_at = datetime(2026, 1, 1, 8, 0, 0, 1500, tzinfo=UTC)
    actions.ingest(any_runtime, OP, [actions.MarkInput(NUMBER, "harassment", reporter(1), first_at)])
    device = "id\twith\\odd\nchars 手机"
    items = [
        actions.MarkInput(NUMBER, "real_estate", reporter(1), first_at + timedelta(hours=1)),  # replaces
        actions.MarkInput("+8613912340001", "one_ring", reporter(2), None, device),
        actions.MarkInput("+8613912340001", "fraud_suspected", reporter(2)),  # same pair: the last wins
        actions.MarkInput("+8613912340002", "harassment", reporter(2)),  # over reporter 2's limit of 2
    ]
    result = actions.ingest(any_runtime, OP, items, rate_limit=RateLimit(limit=2))
    assert (result.accepted, result.replaced) == (2, 1)
    assert result.replaced_labels == {(NUMBER, reporter(1)): Label.HARASSMENT}
    assert [(r.index, r.field) for r in result.rejected] == [(3, "reporter")]
    with any_runtime.sessions() as session:
        live = queries.load_marks(session, [NUMBER, "+8613912340001", "+8613912340002"])
        window = session.get(ReporterRow, reporter(2))
        assert window is not None
        assert window.window_count == 2
        [replaced] = [e for e in audit.for_subject(session, "number", NUMBER) if e.before is not None]
        [twice] = audit.for_subject(session, "number", "+8613912340001")
    assert [(m.label, m.device) for m in live[NUMBER]] == [(Label.REAL_ESTATE, None)]
    assert [(m.label, m.device) for m in live["+8613912340001"]] == [(Label.FRAUD_SUSPECTED, None)]
    assert "+8613912340002" not in live
    assert replaced.before == {"label": "harassment", "at": first_at.isoformat()}
    assert replaced.after == {
        "label": "real_estate",
        "reporter": reporter(1),
        "at": (first_at + timedelta(hours=1)).isoformat(),
        "device": None,
    }
    assert twice.after is not None
    assert twice.after["label"] == "fraud_suspected"
    again = actions.ingest(
        any_runtime, OP, [actions.MarkInput("+8613912340003", "harassment", reporter(3), None, device)]
    )
    assert again.accepted == 1
    with any_runtime.sessions() as session:
        [stored] = queries.load_marks(session, ["+8613912340003"])["+8613912340003"]
    assert stored.device == device


def test_refresh_shows_a_label_once_its_reporters_accounts_are_established(
    any_runtime: Runtime, clock: FakeClock
) -> None:
    """New accounts weigh little and a burst of them counts once; sixty days later the same marks are
    six established reporters. No write happens in between: only the scheduled refresh can show it."""
    for i in range(6):
        subscriber = reporter(200 + i)
        actions.add_mark(
            any_runtime,
            Actor(Role.SUBSCRIBER, subscriber),
            number=NUMBER,
            label="harassment",
            reporter=subscriber,
        )
    assert actions.refresh(any_runtime, OP) == 0
    clock.advance(days=63)  # the schedule may run late: up to REFRESH_CATCH_UP past the 60 days
    assert actions.refresh(any_runtime, OP) == 1
    assert feed(any_runtime, actions.TOPIC_LABEL) == [
        {"number": NUMBER, "label": "harassment", "displayed": True}
    ]
    assert actions.refresh(any_runtime, OP) == 0  # idempotent
    with any_runtime.sessions() as session:
        assert [e.action for e in audit.for_subject(session, "marks", "all")] == ["marks.refresh"]


def test_an_upheld_appeal_rejudges_every_number_its_reporters_marked(any_runtime: Runtime) -> None:
    """The reporters who wrongly marked one number lose credibility: their marks elsewhere weigh less at
    once, in the appeal's own transaction, not at the next refresh."""
    other = "+8613912340099"
    mark_n(any_runtime, 4, "harassment")
    mark_n(any_runtime, 4, "harassment", number=other)
    with any_runtime.sessions() as session:
        assert queries.reputation_of(session, other, any_runtime.clock.now()).is_red
    appeal = actions.open_appeal(
        any_runtime, OP, number=NUMBER, label="harassment", reason="not us", proof="carrier_statement"
    )
    actions.decide_appeal(any_runtime, OP, appeal.id, outcome="upheld")
    assert {"number": other, "label": "harassment", "displayed": False} in feed(
        any_runtime, actions.TOPIC_LABEL
    )
    with any_runtime.sessions() as session:
        assert not queries.reputation_of(session, other, any_runtime.clock.now()).is_red


def test_busy_numbers_wait_in_proportion_to_their_marks_then_are_caught_up(
    any_runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk ingestion defers a busy number it judged a moment ago, longer the more marks it holds;
    nothing is lost: the next chance (a batch once it is due, or ``judge_pending``) judges it on every
    mark that arrived."""
    settings = actions.get_marks_settings().model_copy(
        update={"rejudge_hot_marks": 6, "rejudge_interval_seconds": 6, "rejudge_max_wait_seconds": 60}
    )
    monkeypatch.setattr(actions, "get_marks_settings", lambda: settings)
    rt = any_runtime

    def batch(label: str, reporters: range) -> actions.IngestResult:
        return actions.ingest(rt, OP, [actions.MarkInput(NUMBER, label, reporter(i)) for i in reporters])

    def wait() -> float:
        with rt.sessions() as session:
            row = session.get(JudgmentTimeRow, NUMBER)
            assert row is not None
            return (as_utc(row.due_at) - as_utc(row.judged_at)).total_seconds()

    first = batch("real_estate", range(8))  # busy (8 ≥ 6) but never judged: judged now
    assert first.deferred == [] and first.reputations[NUMBER].displayed
    assert wait() == 8.0  # 6 s × 8 marks / 6
    clock.advance(seconds=1)
    # 30 'legitimate' marks would take the label down — but the number was judged a second ago.
    second = batch("legitimate", range(100, 130))
    assert second.deferred == [NUMBER] and NUMBER not in second.reputations
    assert feed(rt, actions.TOPIC_LABEL) == [{"number": NUMBER, "label": "real_estate", "displayed": True}]
    assert actions.judge_pending(rt, OP) == 0  # not due yet
    clock.advance(seconds=7)
    assert actions.judge_pending(rt, OP) == 1  # due: judged on all 38 marks, the label comes down
    assert feed(rt, actions.TOPIC_LABEL)[-1] == {"number": NUMBER, "label": "real_estate", "displayed": False}
    assert wait() == 38.0
    assert actions.judge_pending(rt, OP) == 0  # nothing pending any more

    # A batch once it is due judges at once; ``everything`` catches up without waiting.
    clock.advance(seconds=38)
    third = batch("real_estate", range(200, 300))
    assert third.deferred == [] and third.reputations[NUMBER].displayed
    assert wait() == 60.0  # 138 marks: capped
    clock.advance(seconds=1)
    assert batch("legitimate", range(300, 400)).deferred == [NUMBER]
    assert actions.judge_pending(rt, OP, everything=True) == 1
    assert feed(rt, actions.TOPIC_LABEL)[-1]["displayed"] is False
    # A recycled number's new owner inherits no pacing from the old owner's marks.
    actions.recycle(rt, CARRIER, NUMBER)
    with rt.sessions() as session:
        assert session.get(JudgmentTimeRow, NUMBER) is None


def test_a_busy_number_waits_for_all_its_marks_not_the_capped_count(
    any_runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch counts a touched number's live marks only up to ``max(min_reporters, rejudge_hot_marks)``
    (PostgreSQL, ``PgStage.live_counts``): enough to decide whether it is judged and whether it is busy.
    The wait until its next judging still follows every live mark it holds."""
    settings = actions.get_marks_settings().model_copy(
        update={"rejudge_hot_marks": 6, "rejudge_interval_seconds": 6, "rejudge_max_wait_seconds": 600}
    )
    monkeypatch.setattr(actions, "get_marks_settings", lambda: settings)
    rt = any_runtime

    def batch(reporters: range) -> actions.IngestResult:
        return actions.ingest(
            rt, OP, [actions.MarkInput(NUMBER, "harassment", reporter(i)) for i in reporters]
        )

    def wait() -> float:
        with rt.sessions() as session:
            row = session.get(JudgmentTimeRow, NUMBER)
            assert row is not None
            return (as_utc(row.due_at) - as_utc(row.judged_at)).total_seconds()

    assert batch(range(40)).deferred == []
    assert wait() == 40.0  # 6 s × 40 marks / 6
    clock.advance(seconds=41)
    # 40 stored marks (far past the count's cap of 6) and 2 new ones: due, judged, waits for all 42.
    second = batch(range(100, 102))
    assert second.deferred == [] and NUMBER in second.reputations
    assert wait() == 42.0
    clock.advance(seconds=1)
    # Below the cap the count is exact: a number with 3 stored marks and 2 new ones is below the
    # 6-mark busy line and gets no pacing row.
    other = "+8613912340077"
    actions.ingest(rt, OP, [actions.MarkInput(other, "harassment", reporter(i)) for i in range(3)])
    result = actions.ingest(
        rt, OP, [actions.MarkInput(other, "harassment", reporter(i)) for i in range(3, 5)]
    )
    assert other in result.reputations
    with rt.sessions() as session:
        assert session.get(JudgmentTimeRow, other) is None


def test_label_states_reads_every_label_of_the_wanted_numbers_only(any_runtime: Runtime) -> None:
    """``queries.label_states`` (on PostgreSQL a fenced probe per number, not ``= ANY``): each wanted
    number's labels with their displayed flag, nothing of the numbers not asked for."""
    now = any_runtime.clock.now()
    with any_runtime.sessions.begin() as session:
        session.add_all(
            [
                LabelStateRow(number=NUMBER, label="harassment", displayed=True, updated_at=now),
                LabelStateRow(number=NUMBER, label="fraud_suspected", displayed=False, updated_at=now),
                LabelStateRow(number="+8613912340077", label="harassment", displayed=True, updated_at=now),
            ]
        )
    with any_runtime.sessions() as session:
        assert queries.label_states(session, [NUMBER, "+8613912340088"]) == {
            NUMBER: {"harassment": True, "fraud_suspected": False}
        }
        assert queries.label_states(session, []) == {}
