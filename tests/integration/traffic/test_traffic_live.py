"""The API's shared streaming detector (``traffic.live``) on SQLite and PostgreSQL: bounded storage,
episodes, and two workers judging the same bombing at the same moment alerting it once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.traffic.live import RETAIN_SECONDS, LiveDetectors, forget_idle_streams
from quietline.traffic.orm import StreamCallRow, StreamEpisodeRow
from quietline.traffic.streaming import CallEvent, StreamConfig
from quietline.vocabulary import Role

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()
MOBILE = Actor(Role.CARRIER, "china_mobile", key_id="k1")
UNICOM = Actor(Role.CARRIER, "china_unicom", key_id="k2")
BOMBER, VICTIM = "+8617000000001", "+8613800138000"


def _kept(rt: Runtime, table: type[StreamCallRow] | type[StreamEpisodeRow], carrier: str) -> int:
    with rt.sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(table).where(table.carrier == carrier)) or 0
        )


def _bombing(start: float, calls: int = 12) -> list[CallEvent]:
    return [CallEvent(BOMBER, VICTIM, start + 2.5 * i) for i in range(calls)]


def test_storage_is_bounded_and_episodes_are_alerted_once(any_runtime: Runtime) -> None:
    rt = any_runtime
    live = LiveDetectors(rt, StreamConfig(idle_seconds=900))
    first = live.feed(MOBILE, _bombing(T0))
    assert [a.evidence["onset"] for a in first.alerts] == [datetime.fromtimestamp(T0, UTC).isoformat()]
    assert live.feed(MOBILE, _bombing(T0 + 100)).alerts == []  # the same episode goes on
    # Another carrier's identical records are its own stream: judged and alerted apart.
    assert len(live.feed(UNICOM, _bombing(T0)).alerts) == 1
    # An hour later: the old records are gone, a new episode is a new alert, and a late record
    # arriving after its window was cleaned up is kept but raises nothing on its own.
    later = live.feed(MOBILE, _bombing(T0 + 3600))
    assert len(later.alerts) == 1
    assert later.run_id == first.run_id and later.stream_records == 36
    assert _kept(rt, StreamCallRow, "china_mobile") == 12
    assert _kept(rt, StreamCallRow, "china_unicom") == 12  # cleaned by its own clock only
    assert live.feed(MOBILE, [CallEvent(BOMBER, VICTIM, T0 + 50)]).alerts == []
    # Old episodes go too: a day later only the newest pair's row is left.
    live.feed(MOBILE, [CallEvent("+8613900139000", VICTIM, T0 + 86_400 + i) for i in range(10)])
    assert _kept(rt, StreamEpisodeRow, "china_mobile") == 1
    assert _kept(rt, StreamCallRow, "china_mobile") == 10
    assert RETAIN_SECONDS < 86_400


def test_two_workers_judging_one_bombing_at_once_alert_it_once(any_runtime: Runtime) -> None:
    """Each of two detectors (as in two server processes) gets half of the bomber's calls, at the
    same moment; together they pass the threshold, and exactly one of them stores the alert."""
    rt = any_runtime
    workers = [LiveDetectors(rt), LiveDetectors(rt)]
    calls = _bombing(T0, calls=18)  # nine each: neither half is a bombing on its own
    halves = [calls[0::2], calls[1::2]]
    barrier = threading.Barrier(2)
    results = []
    errors: list[BaseException] = []

    def post(i: int) -> None:
        try:
            barrier.wait()
            results.append(workers[i].feed(MOBILE, halves[i]))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    alerts = [a for r in results for a in r.alerts]
    assert len(alerts) == 1
    assert alerts[0].evidence["calls_in_window"] >= 10
    assert max(r.stream_records for r in results) == 18


def test_a_stream_silent_for_an_hour_is_forgotten_and_the_deletion_audited(
    any_runtime: Runtime, clock: FakeClock
) -> None:
    """Call records are kept only for their window; when a carrier stops posting, the
    ``traffic.forget_idle_streams`` job deletes what its last batches left behind."""
    rt = any_runtime
    live = LiveDetectors(rt)
    live.feed(MOBILE, _bombing(T0))
    clock.advance(minutes=50)
    live.feed(UNICOM, _bombing(T0))
    clock.advance(minutes=20)  # Mobile silent for 70 minutes, Unicom for 20
    job = Actor.system("traffic.forget_idle_streams")
    assert forget_idle_streams(rt, job) == 12
    assert (_kept(rt, StreamCallRow, "china_mobile"), _kept(rt, StreamEpisodeRow, "china_mobile")) == (0, 0)
    assert _kept(rt, StreamCallRow, "china_unicom") == 12
    assert forget_idle_streams(rt, job) == 0  # nothing left to forget, nothing audited again
    with rt.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "traffic.stream.forgotten")
        ).all()
    assert [(e.subject, e.after) for e in entries] == [
        ("china_mobile", {"records_deleted": 12, "episodes_deleted": 1})
    ]
    # The stream itself goes on where it was: its count and run are no personal data.
    assert live.feed(MOBILE, _bombing(T0 + 86_400)).stream_records == 24
