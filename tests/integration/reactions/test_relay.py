"""Reactions across contexts on SQLite and PostgreSQL: substantiated complaints credit reporters and put
numbers on the high-risk list; complaint blocks survive a crash; traffic findings become high-risk
candidates, a bombing in progress is blocked for a while and then released; allow-listed numbers are
never touched; a repeated event changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from quietline.complaints import actions as complaints
from quietline.complaints.actions import Filing
from quietline.marks import queries as marks_queries
from quietline.marks.model import HighRiskSource, HighRiskState
from quietline.marks.orm import ReporterRow
from quietline.numbers import parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.feedcursor import FeedCursorRow
from quietline.platform.runtime import Runtime
from quietline.reactions import relay
from quietline.reactions.orm import TemporaryBlockRow
from quietline.registry import actions as registry_actions
from quietline.registry import queries as registry_queries
from quietline.registry.model import ListName
from quietline.registry.orm import SystemListRow

OP = Actor.operator("test")
SPAMMER = "+8613012345678"  # China Unicom range
REPORTERS = ["+8613800138001", "+8613800138002", "+8613800138003", "+8613800138004"]


def _file(rt: Runtime, reporter: str, **kw: Any) -> int:
    values: dict[str, Any] = {
        "reporter": reporter,
        "reported": SPAMMER,
        "channel": "call",
        "at": rt.clock.now() - timedelta(hours=1),
        "form": "recorded",
        "duration_seconds": 20,
        "category": "loan_finance",
    }
    values.update(kw)
    return complaints.file_report(rt, OP, Filing(**values)).id


def _high_risk(rt: Runtime, number: str = SPAMMER) -> Any:
    with rt.sessions() as session:
        return marks_queries.high_risk(session, number)


def _verified_complaints(rt: Runtime, reporter: str) -> int:
    with rt.sessions() as session:
        row = session.get(ReporterRow, reporter)
        return 0 if row is None else row.verified_complaints


def _blocked(rt: Runtime, number: str) -> tuple[bool, str] | None:
    with rt.sessions() as session:
        return registry_queries.system_list_entry(session, ListName.BLOCK.value, number)


def _audit_count(rt: Runtime, action: str) -> int:
    with rt.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(audit.AuditEntry).where(audit.AuditEntry.action == action)
            )
            or 0
        )


def _replay_everything(rt: Runtime) -> None:
    """As if the process died before saving its position: the whole feed is delivered again."""
    with rt.sessions.begin() as session:
        session.execute(delete(FeedCursorRow))
    relay.run(rt)


def test_substantiated_complaints_credit_reporters_and_flag_the_number(any_runtime: Runtime) -> None:
    rt = any_runtime
    cases = [_file(rt, r) for r in REPORTERS[:3]]
    complaints.respond(rt, OP, cases[0], result="substantiated", action="warned")
    complaints.respond(rt, OP, cases[1], result="unsubstantiated", action="核查为正常回访")
    relay.run(rt)
    assert _verified_complaints(rt, REPORTERS[0]) == 1
    assert _verified_complaints(rt, REPORTERS[1]) == 0
    assert _high_risk(rt) is None  # one substantiated reporter is not yet strong evidence

    fourth = _file(rt, REPORTERS[3])
    complaints.respond(rt, OP, cases[2], result="substantiated", action="warned")
    complaints.respond(rt, OP, fourth, result="substantiated", action="warned")
    relay.run(rt)
    entry = _high_risk(rt)
    assert entry is not None
    assert (entry.state, entry.source) == (HighRiskState.SUSPECTED, HighRiskSource.COMPLAINTS)
    assert "3 位用户的投诉核查属实" in entry.reason

    _replay_everything(rt)
    assert _audit_count(rt, "marks.high_risk.suspected") == 1  # flagged once, not again on replay
    # Each reporter's credit counts once too, however often the event is delivered.
    assert [_verified_complaints(rt, r) for r in REPORTERS] == [1, 0, 1, 1]
    assert _audit_count(rt, "marks.reporter.verified_complaint") == 3


def test_one_substantiated_fraud_complaint_is_enough(any_runtime: Runtime) -> None:
    rt = any_runtime
    case = _file(rt, REPORTERS[0], nature="fraud", form="live", category=None)
    complaints.respond(rt, OP, case, result="substantiated", action="warned")
    relay.run(rt)
    entry = _high_risk(rt)
    assert entry is not None and "违法犯罪类" in entry.reason


def test_a_complaint_block_is_restored_from_the_feed(any_runtime: Runtime) -> None:
    rt = any_runtime
    case = _file(rt, REPORTERS[0])
    complaints.respond(rt, OP, case, result="substantiated", action="number_suspended")
    assert _blocked(rt, SPAMMER) == (True, f"12321 投诉 {case} 核查属实：停机处理")
    # Simulate the crash window: the case committed, the registry write did not.
    with rt.sessions.begin() as session:
        session.execute(delete(SystemListRow))
    relay.run(rt)
    blocked = _blocked(rt, SPAMMER)
    assert blocked is not None and blocked[0]
    before = _audit_count(rt, "registry.system_block")
    _replay_everything(rt)
    assert _audit_count(rt, "registry.system_block") == before  # already blocked: nothing written


def _finding(rt: Runtime, number: str, pattern: str, **payload: Any) -> None:
    with rt.sessions.begin() as session:
        changefeed.emit(
            session,
            topic=relay.TOPIC_TRAFFIC_FINDING,
            key=number,
            payload={
                "number": number,
                "pattern": pattern,
                "score": 0.99,
                "evidence": {"calls": 412},
                **payload,
            },
            at=rt.clock.now(),
        )


def test_traffic_findings_become_candidates_and_bombing_is_blocked_for_a_while(any_runtime: Runtime) -> None:
    rt = any_runtime
    clock = rt.clock
    assert isinstance(clock, FakeClock)
    bomber, ringer = "+8617012345678", "+8617112345678"
    _finding(rt, ringer, "one_ring")
    _finding(rt, bomber, "bombing", in_progress=True)
    relay.run(rt)
    ring = _high_risk(rt, ringer)
    assert ring is not None and ring.source is HighRiskSource.TRAFFIC and "响一声" in ring.reason
    assert _blocked(rt, ringer) is None  # a candidate for review, not blocked
    bomb = _blocked(rt, bomber)
    assert bomb is not None and bomb[0] and "呼死你轰炸进行中" in bomb[1]

    _replay_everything(rt)
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TemporaryBlockRow)) == 1

    clock.advance(hours=23)
    assert relay.lift_expired_blocks(rt) == 0
    clock.advance(hours=2)
    assert relay.lift_expired_blocks(rt) == 1
    lifted = _blocked(rt, bomber)
    assert lifted is not None and not lifted[0]
    assert relay.lift_expired_blocks(rt) == 0


def test_a_block_someone_confirmed_meanwhile_is_not_lifted(any_runtime: Runtime) -> None:
    rt = any_runtime
    assert isinstance(rt.clock, FakeClock)
    bomber = "+8617012345678"
    _finding(rt, bomber, "bombing", in_progress=True)
    relay.run(rt)
    registry_actions.set_system_list(
        rt, OP, ListName.BLOCK, parse(bomber), active=True, reason="运营商核实：呼死你平台号码，永久停机"
    )
    rt.clock.advance(hours=30)
    assert relay.lift_expired_blocks(rt) == 0
    assert _blocked(rt, bomber) == (True, "运营商核实：呼死你平台号码，永久停机")


def test_allow_listed_numbers_are_never_flagged_or_blocked(any_runtime: Runtime) -> None:
    rt = any_runtime
    bank = "+8613912345678"
    registry_actions.set_system_list(
        rt, OP, ListName.ALLOW, parse(bank), active=True, reason="某银行信用卡中心"
    )
    _finding(rt, bank, "bombing", in_progress=True)
    _finding(rt, bank, "bulk_dialer")
    assert relay.run(rt).handled == 2
    assert _high_risk(rt, bank) is None
    assert _blocked(rt, bank) is None


def test_a_streaming_bombing_alert_stored_by_traffic_is_blocked_end_to_end(any_runtime: Runtime) -> None:
    """The real producer: ``traffic.actions.store_alerts`` writes the feed row the relay reads."""
    from quietline.traffic import actions as traffic
    from quietline.traffic.streaming import BombingAlert
    from quietline.vocabulary import Role

    rt = any_runtime
    carrier = Actor(Role.CARRIER, "china_mobile")
    alert = BombingAlert(
        caller="+8617012349999",
        callee="+8613800138000",
        onset="2026-01-05T08:58:00+00:00",
        detected_at="2026-01-05T08:59:10+00:00",
        latency_seconds=70.0,
        calls_in_window=48,
        window_seconds=120,
    )
    traffic.store_alerts(rt, carrier, carrier=None, alerts=[alert], min_calls=20)
    assert relay.run(rt).handled == 1
    blocked = _blocked(rt, "+8617012349999")
    assert blocked is not None and blocked[0] and "呼死你轰炸进行中" in blocked[1]
    entry = _high_risk(rt, "+8617012349999")
    assert (
        entry is not None
        and entry.source is HighRiskSource.TRAFFIC
        and "victim=+8613800138000" in entry.reason
    )
