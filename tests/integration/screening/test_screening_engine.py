"""The engine on real databases: registry changes arrive as deltas, agree with a rebuild, survive a cold
start, and block records are written off the decision path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quietline.accounts import actions as accounts
from quietline.accounts.model import uscc_check_character
from quietline.numbers import parse
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.registry import actions as registry
from quietline.registry.model import EntryKind, ListName
from quietline.screening import queries
from quietline.screening.engine import ScreeningEngine, request_for
from quietline.screening.feed import FeedFollower
from quietline.screening.model import Reason
from quietline.screening.orm import BlockRecordRow
from quietline.vocabulary import Category, Channel

OPERATOR = Actor.operator("test")
SUBSCRIBER = parse("13800138000")
OTHER = parse("13900139000")
CALLER = parse("13700137000")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")
CALL = (Channel.CALL,)


@pytest.fixture
def rt(any_runtime: Runtime) -> Runtime:
    accounts.register_enterprise(any_runtime, OPERATOR, uscc=USCC, name="示例保险", categories=["insurance"])
    return any_runtime


def _engine(rt: Runtime, tmp_path: Path) -> ScreeningEngine:
    return ScreeningEngine.open(rt, snapshot_path=tmp_path / "snap.npz")


def _reason(
    engine: ScreeningEngine,
    callee: object = SUBSCRIBER,
    category: Category | None = Category.INSURANCE,
    enterprise: str | None = USCC,
    caller: object = CALLER,
) -> Reason:
    req = request_for(caller, callee, Channel.CALL, category, enterprise)  # type: ignore[arg-type]
    return engine.decide(req, record=False).reason


def test_registry_changes_arrive_as_deltas_and_agree_with_a_rebuild(
    rt: Runtime, tmp_path: Path, clock: FakeClock
) -> None:
    engine = _engine(rt, tmp_path)
    assert _reason(engine) is Reason.NO_CONSENT  # strict: no consent counts as refusal
    registry.refuse(rt, OPERATOR, SUBSCRIBER, [Category.INSURANCE], CALL)
    assert _reason(engine) is Reason.NO_CONSENT  # not yet polled
    assert engine.poll() >= 1
    assert _reason(engine) is Reason.REFUSED_CATEGORY
    clock.advance(minutes=1)
    registry.grant_consent(
        rt,
        OPERATOR,
        enterprise=USCC,
        number=SUBSCRIBER,
        category=Category.INSURANCE,
        channels=CALL,
        evidence_ref="contract-1",
    )
    engine.poll()
    assert _reason(engine) is Reason.DEFAULT_ALLOW  # consent after the refusal: the latest expression wins
    clock.advance(minutes=1)
    registry.refuse(rt, OPERATOR, SUBSCRIBER, [None], CALL)  # refusing all marketing later
    engine.poll()
    assert _reason(engine) is Reason.REFUSED_CATEGORY
    registry.add_list_entry(rt, OPERATOR, OTHER, ListName.BLOCK, EntryKind.PREFIX, "137")
    registry.add_list_entry(rt, OPERATOR, OTHER, ListName.ALLOW, EntryKind.NUMBER, "+8613700137001")
    registry.set_system_list(rt, OPERATOR, ListName.BLOCK, parse("13600136000"), active=True, reason="高危")
    engine.poll()
    assert _reason(engine, callee=OTHER, category=None) is Reason.PERSONAL_PREFIX_BLOCK
    assert _reason(engine, callee=OTHER, category=None, caller=parse("13700137001")) is Reason.PERSONAL_ALLOW
    assert _reason(engine, callee=OTHER, category=None, caller=parse("13600136000")) is Reason.SYSTEM_BLOCK
    assert _reason(engine, callee=OTHER, category=None, caller=parse("110")) is Reason.NEVER_BLOCK
    result = engine.rebuild_and_verify()
    assert result == {"agree": True, "differences": [], "feed_id": engine.snapshot.feed_id}
    assert _reason(engine) is Reason.REFUSED_CATEGORY


def test_cold_start_loads_the_saved_snapshot_then_catches_up(rt: Runtime, tmp_path: Path) -> None:
    first = _engine(rt, tmp_path)
    registry.refuse(rt, OPERATOR, SUBSCRIBER, [Category.INSURANCE], CALL)
    first.poll()
    saved_at = first.snapshot.feed_id
    first.save()
    registry.refuse(rt, OPERATOR, OTHER, [None], CALL)  # after the save
    second = ScreeningEngine(rt, snapshot_path=tmp_path / "snap.npz")
    assert second.load_or_rebuild() == "loaded"
    assert second.snapshot.feed_id > saved_at
    assert _reason(second) is Reason.REFUSED_CATEGORY
    assert _reason(second, callee=OTHER, enterprise=None) is Reason.REFUSED_CATEGORY
    assert second.rebuild_and_verify()["agree"]


def test_a_snapshot_of_another_database_state_is_not_used(rt: Runtime, tmp_path: Path) -> None:
    engine = _engine(rt, tmp_path)
    registry.refuse(rt, OPERATOR, SUBSCRIBER, [Category.INSURANCE], CALL)
    engine.poll()
    path = engine.save()
    snap = engine.snapshot.compacted()
    snap.origin = {"database": "elsewhere", "feed_low_at": ""}
    snap.save(path)
    other = ScreeningEngine(rt, snapshot_path=path)
    assert other.load_or_rebuild() == "rebuilt"
    assert _reason(other) is Reason.REFUSED_CATEGORY


def test_blocks_are_recorded_asynchronously_for_the_subscriber(rt: Runtime, tmp_path: Path) -> None:
    engine = ScreeningEngine(rt, snapshot_path=tmp_path / "snap.npz", poll_interval=0.05).start()
    try:
        req = request_for(CALLER, SUBSCRIBER, Channel.CALL, Category.INSURANCE, USCC)
        out = engine.decide(req, caller=CALLER.e164, callee=SUBSCRIBER.e164)
        assert out.reason is Reason.NO_CONSENT
        engine.decide(request_for(CALLER, SUBSCRIBER, Channel.CALL, None, None))  # allowed: not recorded
    finally:
        engine.stop()
    with rt.sessions() as session:
        records = queries.block_records(session, SUBSCRIBER.e164)
        total = session.scalar(select(func.count()).select_from(BlockRecordRow))
    assert total == 1
    assert records[0].as_dict()["reason"] == "no_consent"
    assert records[0].as_dict()["explanation"].startswith("该企业未取得")
    assert engine.blocks_written == 1


def test_ids_committed_out_of_order_are_neither_missed_nor_applied_twice(rt: Runtime, tmp_path: Path) -> None:
    """PostgreSQL assigns ids at insert: a later id can commit first. (SQLite serialises writers.)"""
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL commits sequence ids out of order")
    engine = _engine(rt, tmp_path)
    now = rt.clock.now()

    def payload(number: str) -> dict[str, object]:
        return {"number": number, "category": "all", "channel": "call", "active": True}

    slow = rt.sessions()
    slow.begin()
    changefeed.emit(slow, topic="registry.refusal", key="a", payload=payload(SUBSCRIBER.e164), at=now)
    slow.flush()  # takes its id now, commits later
    with rt.sessions.begin() as fast:
        changefeed.emit(fast, topic="registry.refusal", key="b", payload=payload(OTHER.e164), at=now)
    engine.poll()
    assert _reason(engine, callee=OTHER, enterprise=None) is Reason.REFUSED_CATEGORY
    assert _reason(engine, callee=SUBSCRIBER, enterprise=None) is Reason.NO_CONSENT
    assert len(engine.snapshot.gaps()) == 1
    slow.commit()
    slow.close()
    engine.poll()
    assert _reason(engine, callee=SUBSCRIBER, enterprise=None) is Reason.REFUSED_CATEGORY
    assert engine.snapshot.gaps() == []
    assert engine.poll() == 0  # nothing applied twice


def test_a_rolled_back_id_is_skipped_after_the_grace_period(rt: Runtime, tmp_path: Path) -> None:
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite hands out ids at commit time: a rolled-back insert leaves no gap")
    seconds = [0.0]
    engine = ScreeningEngine(rt, snapshot_path=tmp_path / "s.npz", gap_grace=30.0)
    engine.follower = FeedFollower(rt.sessions, gap_grace=30.0, monotonic=lambda: seconds[0])
    engine.load_or_rebuild()
    now = rt.clock.now()
    lost = rt.sessions()
    lost.begin()
    changefeed.emit(lost, topic="registry.refusal", key="x", payload={}, at=now)
    lost.flush()
    lost.rollback()
    lost.close()
    registry.refuse(rt, OPERATOR, OTHER, [None], CALL)
    engine.poll()
    assert engine.snapshot.gaps()
    seconds[0] = 29.0
    engine.poll()
    assert engine.snapshot.gaps()  # still waiting: it might be a slow transaction
    seconds[0] = 31.0
    engine.poll()
    assert engine.snapshot.gaps() == []
    assert _reason(engine, callee=OTHER, enterprise=None) is Reason.REFUSED_CATEGORY


def test_refusal_expiry_reaches_the_engine(rt: Runtime, tmp_path: Path, clock: FakeClock) -> None:
    engine = ScreeningEngine.open(rt, snapshot_path=tmp_path / "s.npz")
    until = clock.now() + timedelta(days=1)
    registry.refuse(rt, OPERATOR, SUBSCRIBER, [Category.INSURANCE], CALL, valid_until=until)
    engine.poll()
    assert _reason(engine, enterprise=None) is Reason.REFUSED_CATEGORY
    clock.advance(days=2)
    registry.expire_refusals(rt, OPERATOR)
    engine.poll()
    assert _reason(engine, enterprise=None) is Reason.NO_CONSENT
    assert engine.rebuild_and_verify()["agree"]
