"""The complaint flow on real databases (SQLite and PostgreSQL): intake, routing, merging, the full
state machine with audit rows, appeals, breach scans, calendar overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quietline.complaints import actions, queries
from quietline.complaints.actions import Filing
from quietline.complaints.model import LedgerHolder
from quietline.complaints.orm import AlertRow, CaseRow, WebhookDeliveryRow
from quietline.complaints.routing import NumbersResolver
from quietline.numbers import actions as number_actions
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.platform.workdays import CHINA_TZ
from quietline.registry import queries as registry_queries
from quietline.vocabulary import Role

OP = Actor.operator("test")
MOBILE = "13800138000"  # China Mobile range
UNICOM = "13012345678"
TELECOM = "18912345678"
USCC = "91110000MA01ABCD2X"


def ledger(session: Session, e164: str) -> LedgerHolder | None:
    return LedgerHolder(USCC, "china_unicom", "某保险公司") if e164 == "+864008123456" else None


RESOLVER = NumbersResolver(ledger)


def file(rt: Runtime, **kw: object) -> queries.CaseView:
    values: dict[str, object] = {
        "reporter": MOBILE,
        "reported": UNICOM,
        "channel": "call",
        "at": rt.clock.now() - timedelta(hours=1),
        "form": "recorded",
        "duration_seconds": 20,
        "category": "loan_finance",
    }
    values.update(kw)
    return actions.file_report(rt, OP, Filing(**values), resolver=RESOLVER)  # type: ignore[arg-type]


def audit_actions(rt: Runtime, case_id: int) -> list[str]:
    with rt.sessions() as session:
        return [e.action for e in queries.history(session, case_id)]


def test_file_routes_accepts_and_forwards_with_deadlines(any_runtime: Runtime) -> None:
    rt = any_runtime  # FakeClock: Monday 2026-01-05 09:00 UTC (17:00 in Beijing)
    case = file(rt, reporter=TELECOM)
    d = case.as_dict()
    assert d["state"] == "forwarded"
    assert d["responsible_carrier"] == "china_unicom"
    assert d["assisting_carrier"] == "china_telecom"  # 联动协查: the reporter's carrier differs
    # Received Mon Jan 5: forward by Thu Jan 8; forwarded the same day, feedback by 15 working days
    # (Jan 6–9, 12–16, 19–23, 26 → Jan 26), answer projected 3 working days later (Jan 29).
    assert d["deadlines"] == {"forward": "2026-01-08", "feedback": "2026-01-26", "answer": "2026-01-29"}
    assert audit_actions(rt, case.id) == ["complaint.received", "complaint.accept", "complaint.forward"]
    with rt.sessions() as session:
        row = session.get(CaseRow, case.id)
        assert row is not None
        assert row.feedback_due == date(2026, 1, 26)
        assert [c.topic for c in changefeed.read_after(session, 0)] == ["complaints.forwarded"]


def test_received_at_starts_the_clock_for_imports(any_runtime: Runtime) -> None:
    # Received Friday 2025-09-26 (import): Sun Sep 28 is a make-up working day → forward by Sep 30.
    received = datetime(2025, 9, 26, 10, tzinfo=CHINA_TZ)
    case = file(any_runtime, received_at=received, at=received - timedelta(hours=2))
    assert case.as_dict()["deadlines"]["forward"] == "2025-09-30"
    assert case.row.received_at == received
    with pytest.raises(InvalidInput) as info:
        file(any_runtime, received_at=any_runtime.clock.now() + timedelta(days=1))
    assert info.value.field == "received_at"


def test_ported_number_is_routed_by_the_portability_table(any_runtime: Runtime, tmp_path: Path) -> None:
    csv = tmp_path / "ported.csv"
    csv.write_text("number,carrier\n13800138000,china_telecom\n", encoding="utf-8")
    number_actions.import_portability(any_runtime, OP, csv)
    case = file(any_runtime, reporter=UNICOM, reported=MOBILE)  # 138 prefix, but ported to Telecom
    assert case.row.responsible_carrier == "china_telecom"
    assert case.row.assisting_carrier == "china_unicom"


def test_400_number_goes_to_ledger_company_and_connecting_carrier(any_runtime: Runtime) -> None:
    case = file(any_runtime, reported="4008123456")
    assert (case.row.responsible_company, case.row.responsible_carrier) == (USCC, "china_unicom")
    assert case.row.route_basis == "caller_number_ledger"
    # Unlisted service number: accepted, waiting for manual forwarding, forward clock running.
    other = file(any_runtime, reported="4009999999")
    assert other.state.value == "accepted"
    assert other.row.responsible_carrier is None
    forwarded = actions.forward(any_runtime, OP, other.id, carrier="中国电信")
    assert (forwarded.state.value, forwarded.row.responsible_carrier) == ("forwarded", "china_telecom")
    assert forwarded.row.assisting_carrier == "china_mobile"


def test_repeat_reports_merge_and_many_reporters_link(any_runtime: Runtime) -> None:
    rt = any_runtime
    assert isinstance(rt.clock, FakeClock)
    first = file(rt)
    rt.clock.advance(hours=5)
    again = file(rt, channel="sms", text="【某贷】秒批 回T退订", form=None, duration_seconds=None)
    assert again.merged
    assert again.id == first.id
    assert again.row.report_count == 2
    other = file(rt, reporter=TELECOM)
    assert other.id != first.id
    assert other.linked == 1
    rt.clock.advance(hours=20)  # more than a day after the last report of the first case
    later = file(rt)
    assert later.id not in (first.id, other.id)
    with rt.sessions() as session:
        assert len(queries.reports(session, first.id)) == 2
        assert len(queries.linked(session, "+8613012345678")) == 3
    assert audit_actions(rt, first.id)[-1] == "complaint.merged"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"reporter": "12345"}, "reporter"),
        ({"reporter": "01012345678"}, "reporter"),  # cannot receive the answer by SMS
        ({"reported": MOBILE}, "reported"),  # own number
        ({"reported": "96110"}, "reported"),  # police anti-fraud warnings are never a complaint
        ({"channel": "sms", "duration_seconds": 5, "form": None, "text": "x"}, "duration"),
        ({"text": "短信内容"}, "text"),
        ({"at": None}, "at"),
    ],
)
def test_bad_reports_name_the_field_and_write_nothing(
    runtime: Runtime, kw: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        file(runtime, **kw)
    assert info.value.field == field
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 0
        assert audit.tail(session, 5) == []


def test_full_flow_with_answer_sms_appeal_and_new_clock(
    any_runtime: Runtime, sms: RecordingSmsSender
) -> None:
    rt = any_runtime
    assert isinstance(rt.clock, FakeClock)
    case = file(rt)
    unicom = Actor(Role.CARRIER, "china_unicom")
    with pytest.raises(PermissionDenied):
        actions.respond(
            rt, Actor(Role.CARRIER, "china_mobile"), case.id, result="substantiated", action="warned"
        )
    with pytest.raises(Conflict):
        actions.answer(rt, OP, case.id)  # no feedback yet
    rt.clock.advance(days=2)
    done = actions.respond(rt, unicom, case.id, result="substantiated", action="number_suspended")
    assert (done.state.value, done.row.measure) == ("acted", "number_suspended")
    with rt.sessions() as session:
        blocked = changefeed.read_after(session, 0, topics=("complaints.number_blocked",))
    assert [c.payload["number"] for c in blocked] == ["+8613012345678"]
    with rt.sessions() as session:  # and screening's system block list has it (decision step 5)
        assert [(n, name) for name, n, *_ in registry_queries.iter_system_lists(session)] == [
            ("+8613012345678", "block")
        ]
    rt.clock.advance(days=1)
    answered = actions.answer(rt, OP, case.id)
    assert answered.state.value == "answered"
    assert answered.row.notify_status == "sms_sent"
    message = sms.last_to("+8613800138000")
    assert "停机处理" in message.text
    assert str(case.id) in message.text
    # The reporter appeals: new cycle, new clock from the appeal, forwarded again at once.
    with pytest.raises(PermissionDenied):
        actions.appeal(rt, Actor(Role.SUBSCRIBER, "+8618912345678"), case.id, "不是我")
    rt.clock.advance(days=3)
    reopened = actions.appeal(rt, Actor(Role.SUBSCRIBER, "+8613800138000"), case.id, "号码仍在骚扰")
    assert (reopened.state.value, reopened.row.cycle) == ("forwarded", 2)
    assert reopened.row.clock_start == rt.clock.now()
    assert reopened.row.result is None
    actions.respond(rt, unicom, case.id, result="unsubstantiated", action="核查为正常回访")
    actions.answer(rt, OP, case.id)
    closed = actions.close(rt, OP, case.id)
    assert closed.state.value == "closed"
    assert audit_actions(rt, case.id) == [
        "complaint.received",
        "complaint.accept",
        "complaint.forward",
        "complaint.respond_substantiated",
        "complaint.answer",
        "complaint.appeal",
        "complaint.forward",
        "complaint.respond_unsubstantiated",
        "complaint.answer",
        "complaint.close",
    ]
    rt.clock.advance(days=30)
    with pytest.raises(Conflict, match="appeal window"):
        actions.appeal(rt, OP, case.id, "太晚了")


def test_answer_sms_failure_is_recorded_not_dropped(runtime: Runtime) -> None:
    class Broken:
        def send(self, message: object) -> None:
            raise RuntimeError("gateway down")

    case = file(runtime)
    actions.respond(runtime, OP, case.id, result="unsubstantiated", action="正常业务")
    runtime.sms = Broken()
    answered = actions.answer(runtime, OP, case.id)
    assert answered.state.value == "answered"
    assert answered.row.notify_status == "sms_failed: gateway down"


def test_breaches_warnings_and_scan(any_runtime: Runtime) -> None:
    rt = any_runtime
    assert isinstance(rt.clock, FakeClock)
    slow = file(rt)  # forwarded Mon 2026-01-05, feedback due Mon 2026-01-26
    quick = file(rt, reporter=TELECOM, reported="18912345670")
    actions.respond(rt, OP, quick.id, result="substantiated", action="warned")
    actions.answer(rt, OP, quick.id)
    with rt.sessions() as session:
        warn = queries.breaches(session, datetime(2026, 1, 22, 10, tzinfo=CHINA_TZ), include_warnings=True)
        assert queries.breaches(session, datetime(2026, 1, 22, 10, tzinfo=CHINA_TZ)) == []  # warnings opt in
        assert [(b.case_id, b.stage.value, b.alert.value) for b in warn] == [
            (slow.id, "feedback", "due_soon")
        ]
        assert (
            queries.breaches(session, datetime(2026, 1, 21, 10, tzinfo=CHINA_TZ), include_warnings=True) == []
        )
        late = queries.breaches(session, datetime(2026, 1, 27, 0, 1, tzinfo=CHINA_TZ))
        assert [(b.case_id, b.stage.value, b.alert.value) for b in late] == [(slow.id, "feedback", "breach")]
    rt.clock.set(datetime(2026, 1, 27, 1, tzinfo=UTC))
    first = actions.scan(rt)
    assert [(f.case_id, f.stage, f.kind) for f in first] == [(slow.id, "feedback", "breach")]
    assert actions.scan(rt) == []  # each flag once
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AlertRow)) == 1
    assert audit_actions(rt, slow.id)[-1] == "complaint.breach"
    # Late feedback is still a breach afterwards.
    actions.respond(rt, OP, slow.id, result="substantiated", action="warned")
    with rt.sessions() as session:
        after = queries.breaches(session, datetime(2026, 1, 28, tzinfo=UTC))
    assert [(b.case_id, b.stage.value) for b in after] == [(slow.id, "feedback")]


def test_calendar_gap_then_operator_declares_the_year(any_runtime: Runtime) -> None:
    rt = any_runtime
    assert isinstance(rt.clock, FakeClock)
    rt.clock.set(datetime(2026, 12, 21, 2, tzinfo=UTC))
    case = file(rt)
    d = case.as_dict()
    assert d["deadlines"]["forward"] == "2026-12-24"
    assert d["deadlines"]["feedback"] is None  # runs into 2027, which the package does not know
    assert d["clocks"][1]["calendar_gap"] is not None
    # Estimated meanwhile on the statutory holidays (forwarded at once on Mon Dec 21; Jan 1 off): the
    # same date the declared schedule gives below.
    assert d["clocks"][1]["due_estimate"] == "2027-01-12"
    assert d["clocks"][0]["due_estimate"] is None
    rt.clock.advance(days=1)
    assert [(f.stage, f.kind) for f in actions.scan(rt)] == [("feedback", "calendar_gap")]
    with pytest.raises(PermissionDenied):
        actions.set_workday(
            rt, Actor(Role.CARRIER, "china_mobile"), date(2027, 1, 1), working=False, note="x"
        )
    actions.set_workday(rt, OP, date(2027, 1, 1), working=False, note="国办发明电〔2026〕 元旦")
    actions.declare_year(rt, OP, 2027, source="国务院办公厅关于2027年部分节假日安排的通知")
    with pytest.raises(Conflict):
        actions.declare_year(rt, OP, 2027, source="again")
    with rt.sessions() as session:
        shown = queries.show(session, case.id).as_dict()
        row = session.get(CaseRow, case.id)
        assert row is not None
        assert row.feedback_due is not None
    # Forwarded Mon Dec 21 2026: Dec 22–25 (4), 28–31 (8), Jan 1 off, Jan 4–8 (13), 11, 12 (15).
    assert shown["deadlines"]["feedback"] == "2027-01-12"


def test_reject_and_not_found(runtime: Runtime) -> None:
    case = file(runtime, reported="4009999999")
    with pytest.raises(PermissionDenied):
        actions.reject(runtime, Actor(Role.CARRIER, "china_mobile"), case.id, "x")
    rejected = actions.reject(runtime, OP, case.id, "号码不存在")
    assert rejected.state.value == "rejected"
    with pytest.raises(NotFound):
        actions.respond(runtime, OP, 999, result="substantiated", action="warned")
    listed = file(runtime, reported="4008123456")  # routed to the ledger's enterprise
    with pytest.raises(InvalidInput) as info:
        actions.respond(
            runtime, Actor(Role.ENTERPRISE, USCC), listed.id, result="substantiated", action="system_block"
        )
    assert info.value.field == "measure"


def test_forward_enqueues_webhooks_for_every_recipient(any_runtime: Runtime) -> None:
    actions.register_endpoint(
        any_runtime, OP, party_kind="carrier", party_id="china_unicom", url="https://unicom.example/hook"
    )
    actions.register_endpoint(
        any_runtime, OP, party_kind="carrier", party_id="中国电信", url="https://telecom.example/hook"
    )
    actions.register_endpoint(
        any_runtime, OP, party_kind="carrier", party_id="china_mobile", url="https://mobile.example/hook"
    )
    case = file(any_runtime, reporter=TELECOM)
    with any_runtime.sessions() as session:
        rows = session.scalars(select(WebhookDeliveryRow).where(WebhookDeliveryRow.case_id == case.id)).all()
        assert len(rows) == 2  # responsible (Unicom) and 联动协查 (Telecom); not Mobile
        assert {r.status for r in rows} == {"pending"}
    with pytest.raises(InvalidInput):
        actions.register_endpoint(
            any_runtime, OP, party_kind="carrier", party_id="china_unicom", url="ftp://x"
        )


def test_report_texted_to_12321(runtime: Runtime) -> None:
    case = actions.file_sms_report(
        runtime, OP, sender="13800138000", body="13012345678*【某贷】额度已批 回T退订", resolver=RESOLVER
    )
    assert (case.row.channel, case.row.source, case.row.sms_text) == (
        "sms",
        "sms",
        "【某贷】额度已批 回T退订",
    )
    assert case.row.reported == "+8613012345678"
    assert case.state.value == "forwarded"


def test_concurrent_repeat_reports_still_merge(any_runtime: Runtime) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=6) as pool:
        views = list(pool.map(lambda _: file(any_runtime), range(6)))
    assert len({v.id for v in views}) == 1
    with any_runtime.sessions() as session:
        [row] = session.scalars(select(CaseRow)).all()
        assert row.report_count == 6
        assert len(queries.reports(session, row.id)) == 6


def test_iter_reports_for_quarterly_reviews(runtime: Runtime) -> None:
    file(runtime)
    file(runtime, reporter=TELECOM, reported="4008123456", form="one_ring")
    now = runtime.clock.now()
    with runtime.sessions() as session:
        rows = list(queries.iter_reports(session, now - timedelta(days=1), now + timedelta(days=1)))
        assert [(r["form"], r["reported_type"], r["responsible_carrier"]) for r in rows] == [
            ("recorded", "mobile", "china_unicom"),
            ("one_ring", "toll_free_400_800", "china_unicom"),
        ]
        assert list(queries.iter_reports(session, now + timedelta(days=1), now + timedelta(days=2))) == []


def test_answered_cases_close_when_the_appeal_window_passes(runtime: Runtime) -> None:
    assert isinstance(runtime.clock, FakeClock)
    case = file(runtime)
    actions.respond(runtime, OP, case.id, result="unsubstantiated", action="正常回访")
    actions.answer(runtime, OP, case.id)
    runtime.clock.advance(days=14)
    assert actions.close_expired(runtime) == []
    runtime.clock.advance(days=2)
    assert actions.close_expired(runtime) == [case.id]
    assert audit_actions(runtime, case.id)[-1] == "complaint.close"
    with pytest.raises(Conflict, match="appeal window"):
        actions.appeal(runtime, OP, case.id, "晚了")
    assert actions.appeal(runtime, OP, case.id, "仍要申诉", window=timedelta(days=30)).row.cycle == 2


def test_a_subscriber_cannot_flood_the_centre(runtime: Runtime) -> None:
    from quietline.platform.errors import RateLimited

    me = Actor(Role.SUBSCRIBER, "+8613800138000")
    filing = Filing(
        reporter=MOBILE, reported=UNICOM, channel="call", at=runtime.clock.now() - timedelta(hours=1)
    )
    for _ in range(actions.MAX_REPORTS_PER_DAY):
        actions.file_report(runtime, me, filing, resolver=RESOLVER)
    with pytest.raises(RateLimited) as info:
        actions.file_report(runtime, me, filing, resolver=RESOLVER)
    assert info.value.field == "reporter"
    assert actions.file_report(runtime, OP, filing, resolver=RESOLVER).row.report_count == 31  # operators may
    assert isinstance(runtime.clock, FakeClock)
    runtime.clock.advance(days=1, seconds=1)
    actions.file_report(runtime, me, filing, resolver=RESOLVER)
