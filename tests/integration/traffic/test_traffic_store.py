"""Stored runs and findings on SQLite and PostgreSQL: one transaction with audit and change-feed rows,
allow-listed callers kept for review but never announced, carriers scoped to their own records, and
the reactions relay turning a stored finding into a high-risk candidate (the feed contract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from quietline.marks import queries as marks_queries
from quietline.numbers import parse
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.clock import FakeClock
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.registry import actions as registry_actions
from quietline.registry.model import ListName
from quietline.traffic import actions, queries
from quietline.traffic.orm import FindingRow, RunRow
from quietline.traffic.rules import Finding
from quietline.traffic.streaming import BombingAlert
from quietline.vocabulary import Role

CARRIER = Actor(Role.CARRIER, "china_mobile")
OTHER_CARRIER = Actor(Role.CARRIER, "china_unicom")
OPERATOR = Actor.operator("test")

BOMBER, SWEEPER, BANK, RIDER = "+8617000000001", "+8617000000002", "+8695588", "+8613100000009"


def _findings() -> list[Finding]:
    return [
        Finding(
            BOMBER,
            "bombing",
            0.8,
            {"calls": 60, "victim": "+8613800138000", "thresholds": {"x": 1}},
            action="temporary_block",
        ),
        Finding(SWEEPER, "one_ring", 0.7, {"calls": 300, "short_ring_ratio": 0.95}),
        # A bank's outbound line on the system allow list, and a delivery rider on the carrier's own
        # allow list (detect --allow-list): both legitimate, neither may become a block candidate.
        Finding(BANK, "bombing", 0.9, {"calls": 90}, action="temporary_block"),
        Finding(RIDER, "bulk_dialer", 0.6, {"calls": 2000}, action="review", allow_listed=True),
    ]


def _store(rt: Runtime, data_end: float | None, actor: Actor = CARRIER, **kw: Any) -> actions.StoredRun:
    return actions.store_run(
        rt,
        actor,
        carrier=kw.pop("carrier", None),
        findings=_findings(),
        rows=1000,
        rejected={"missing_field": 2},
        backend="duckdb",
        source="/data/cdr/2026-01-05.parquet",
        summary={"by_pattern": {"bombing": 2}},
        data_end=data_end,
        **kw,
    )


def _feed(rt: Runtime) -> list[changefeed.Change]:
    with rt.sessions() as session:
        return changefeed.read_after(session, 0, topics=(actions.TOPIC_FINDING,))


def test_a_run_is_stored_audited_and_its_candidates_announced(any_runtime: Runtime, clock: FakeClock) -> None:
    rt = any_runtime
    registry_actions.set_system_list(
        rt, OPERATOR, ListName.ALLOW, parse(BANK), active=True, reason="已核验的银行外呼号码"
    )
    stored = _store(rt, data_end=clock.now().timestamp() - 60)
    assert stored.findings == 4
    assert (stored.candidates, stored.allow_listed) == (2, 2)
    assert stored.run.carrier == "china_mobile"
    assert stored.run.run_id.startswith("tr-")

    feed = _feed(rt)
    assert [c.key for c in feed] == [BOMBER, SWEEPER]
    bombing = feed[0].payload
    assert set(bombing) == set(actions.FindingPayload.__annotations__)
    assert bombing["pattern"] == "bombing"
    assert bombing["in_progress"] is True  # records ending a minute ago: the bombing is going on
    assert bombing["action"] == "temporary_block"
    assert bombing["run_id"] == stored.run.run_id
    assert bombing["carrier"] == "china_mobile"
    assert bombing["evidence"] == {"calls": 60, "victim": "+8613800138000"}  # scalars only
    assert feed[1].payload["in_progress"] is False

    with rt.sessions() as session:
        rows = {r.number: r for r in session.scalars(select(FindingRow))}
        assert rows[BANK].action == "review" and rows[BANK].allow_listed and not rows[BANK].candidate
        assert not rows[BANK].in_progress
        assert rows[RIDER].allow_listed and not rows[RIDER].candidate
        assert rows[BOMBER].evidence["thresholds"] == {"x": 1}  # the full evidence is kept
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.action.like("traffic.%"))))
        assert sorted(a.subject for a in audits if a.action == "traffic.finding.stored") == sorted(
            [BOMBER, SWEEPER, BANK, RIDER]
        )
        (run_audit,) = [a for a in audits if a.action == "traffic.run.stored"]
        assert run_audit.subject == stored.run.run_id
        assert run_audit.actor == "carrier:china_mobile"
        assert run_audit.after is not None and run_audit.after["candidates"] == 2
        listed = queries.findings(session, "china_mobile", run_id=stored.run.run_id)
        assert {f.number for f in listed} == {BOMBER, SWEEPER, BANK, RIDER}
        assert queries.findings(session, "china_unicom") == []
        assert queries.run(session, "china_unicom", stored.run.run_id) is None
        (run,) = queries.runs(session, "china_mobile")
        assert run.findings == 4 and run.rejected == {"missing_field": 2}


def test_old_records_describe_no_bombing_in_progress(any_runtime: Runtime, clock: FakeClock) -> None:
    _store(any_runtime, data_end=(clock.now() - timedelta(days=2)).timestamp())
    feed = _feed(any_runtime)
    assert feed[0].key == BOMBER
    assert feed[0].payload["in_progress"] is False


def test_who_may_store_and_for_whom(any_runtime: Runtime) -> None:
    rt = any_runtime
    for actor in (Actor(Role.SUBSCRIBER, "+8613800138000"), Actor(Role.ENTERPRISE, "91350100M000100Y43")):
        with pytest.raises(PermissionDenied):
            _store(rt, None, actor=actor)
    with pytest.raises(PermissionDenied):
        _store(rt, None, actor=CARRIER, carrier="china_unicom")
    with pytest.raises(InvalidInput) as missing:
        _store(rt, None, actor=OPERATOR)
    assert missing.value.field == "carrier"
    stored = _store(rt, None, actor=OPERATOR, carrier="中国联通")
    assert stored.run.carrier == "china_unicom"
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RunRow)) == 1


def test_bad_findings_are_refused_and_a_failed_store_leaves_nothing_behind(
    any_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store(findings: list[Finding]) -> None:
        actions.store_run(
            any_runtime,
            CARRIER,
            carrier=None,
            findings=findings,
            rows=1,
            rejected={},
            backend="duckdb",
            source="x",
            summary={},
            data_end=None,
        )

    good = Finding(BOMBER, "bombing", 0.8, {"calls": 60})
    for bad, field in (
        (Finding("8617000000001", "bombing", 0.8, {}), "number"),
        (Finding(BOMBER, "robocall", 0.8, {}), "pattern"),
        (Finding(BOMBER, "bombing", 1.5, {}), "score"),
    ):
        with pytest.raises(InvalidInput) as refused:
            store([good, bad])
        assert refused.value.field == field

    def broken_feed(*_args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(changefeed, "emit_many", broken_feed)
    with pytest.raises(RuntimeError):
        store([good])
    with any_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RunRow)) == 0
        assert session.scalar(select(func.count()).select_from(FindingRow)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def _alert(caller: str, callee: str, calls: int = 12) -> BombingAlert:
    t = datetime(2026, 1, 5, 8, 59, tzinfo=UTC)
    return BombingAlert(
        caller=caller,
        callee=callee,
        onset=t.isoformat(),
        detected_at=(t + timedelta(seconds=27)).isoformat(),
        latency_seconds=27.0,
        calls_in_window=calls,
        window_seconds=60,
    )


def test_streaming_alerts_are_in_progress_findings_of_one_stream_run(any_runtime: Runtime) -> None:
    rt = any_runtime
    recorder = actions.AlertRecorder(rt, CARRIER, carrier=None, min_calls=10, source="api")
    first = recorder.record([_alert("17000000001", "13800138000")], events=50)
    assert recorder.run_id is not None
    second = recorder.record([_alert("+8617000000002", "+8613800138001", calls=20)], events=30)
    assert [f.number for f in first + second] == [BOMBER, SWEEPER]
    assert all(f.in_progress and f.pattern == "bombing" and f.candidate for f in first + second)
    assert second[0].score == pytest.approx(0.75)
    assert first[0].evidence["victim"] == "+8613800138000"
    with rt.sessions() as session:
        (run,) = queries.runs(session, "china_mobile")
        assert (run.kind, run.rows, run.summary["alerts"], run.findings) == ("stream", 80, 2, 2)
        assert [a.number for a in queries.alerts(session, "china_mobile")] == [SWEEPER, BOMBER]
        assert queries.alerts(session, "china_unicom") == []
    feed = _feed(rt)
    assert [(c.key, c.payload["in_progress"], c.payload["run_id"]) for c in feed] == [
        (BOMBER, True, recorder.run_id),
        (SWEEPER, True, recorder.run_id),
    ]
    with pytest.raises(NotFound):
        actions.store_alerts(rt, OTHER_CARRIER, carrier=None, alerts=[], min_calls=10, run_id=recorder.run_id)


def test_the_reactions_relay_turns_a_stored_finding_into_a_high_risk_candidate(
    any_runtime: Runtime, clock: FakeClock
) -> None:
    from quietline.reactions import relay

    rt = any_runtime
    registry_actions.set_system_list(rt, OPERATOR, ListName.ALLOW, parse(BANK), active=True, reason="银行")
    _store(rt, data_end=clock.now().timestamp())
    relay.run(rt)
    with rt.sessions() as session:
        bomber = marks_queries.high_risk(session, BOMBER)
        sweeper = marks_queries.high_risk(session, SWEEPER)
        assert bomber is not None and sweeper is not None
        assert "呼死你" in bomber.reason and "响一声" in sweeper.reason
        assert marks_queries.high_risk(session, BANK) is None
        assert marks_queries.high_risk(session, RIDER) is None
