"""Streaming bombing detection: alert latency, no alert on normal redials, bounded memory."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from quietline.platform.errors import InvalidInput
from quietline.traffic.streaming import (
    BombingDetector,
    CallEvent,
    StreamConfig,
    StreamStats,
    read_csv_records,
)

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()


def test_bombing_alert_within_60_seconds_of_onset_and_once_per_episode() -> None:
    det = BombingDetector()
    events = [CallEvent("+8617000000001", "+8613800138000", T0 + 2.5 * i, 2.0, 0.0) for i in range(400)]
    alerts = list(det.run(events))
    assert len(alerts) == 1
    assert alerts[0].latency_seconds <= 60
    assert alerts[0].onset == datetime.fromtimestamp(T0, UTC).isoformat()
    assert alerts[0].action == "temporary_block"
    # After a quiet spell longer than the idle period, a new bombing is a new alert.
    later = [CallEvent("+8617000000001", "+8613800138000", T0 + 5000 + 2 * i) for i in range(20)]
    assert len(list(det.run(later))) == 1


def test_redials_and_busy_legitimate_callers_raise_nothing() -> None:
    det = BombingDetector()
    redials = [CallEvent("+8613900139000", "+8613800138000", T0 + 60 * i) for i in range(5)]
    rider = [CallEvent("+8618600186000", f"+86150{i:08d}", T0 + 3 * i, 6.0, 20.0) for i in range(500)]
    assert list(det.run(sorted(redials + rider, key=lambda e: e.ts))) == []


def test_memory_is_bounded_per_caller_and_in_callers() -> None:
    cfg = StreamConfig(max_calls_per_caller=16, max_callers=100, idle_seconds=60)
    det = BombingDetector(cfg)
    for i in range(5000):
        det.observe(CallEvent(f"+8613{i:09d}", "+8613800138000", T0 + i * 0.01))
    assert det.active_callers <= 100
    assert det.evicted >= 4900
    for i in range(1000):
        det.observe(CallEvent("+8617000000009", f"+86150{i:08d}", T0 + 100 + i * 0.01))
    assert max(len(s.calls) for s in det._callers.values()) <= 16
    # Callers silent for longer than idle_seconds (event time) are dropped.
    det.observe(CallEvent("+8617000000010", "+8613800138000", T0 + 10_000))
    assert det.active_callers == 1


def test_csv_source_counts_unusable_rows() -> None:
    text = (
        "caller,callee,start_time,ring_seconds,duration_seconds\n"
        "+8617000000001,13800138000,2026-11-02T10:00:00+08:00,2,0\n"
        "+8617000000001,,2026-11-02T10:00:02+08:00,2,0\n"
        "garbage,13800138000,2026-11-02T10:00:04+08:00,2,0\n"
        "+8617000000001,13800138000,yesterday,2,0\n"
        "+8617000000001,138 0013 8000,1793584806,2,0\n"
    )
    stats = StreamStats()
    events = list(read_csv_records(io.StringIO(text), stats))
    assert [e.callee for e in events] == ["+8613800138000", "+8613800138000"]
    assert events[0].ts == datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()
    assert stats.rows == 5
    assert stats.rejected == {"missing_field": 1, "invalid_number": 1, "invalid_value": 1}


def test_follow_mode_reads_lines_appended_later() -> None:
    buf = io.StringIO("caller,callee,start_time,ring_seconds,duration_seconds\n")
    appended = iter(["+8617000000001,13800138000,100,2,0\n", "+8617000000001,13800138001,102,2,0\n"])

    def wait() -> bool:
        line = next(appended, None)
        if line is None:
            return False
        pos = buf.tell()
        buf.write(line)
        buf.seek(pos)
        return True

    stats = StreamStats()
    events = list(read_csv_records(buf, stats, follow=True, wait=wait))
    assert [e.ts for e in events] == [100.0, 102.0]


def test_csv_without_required_columns_is_refused() -> None:
    with pytest.raises(InvalidInput):
        list(read_csv_records(io.StringIO("a,b\n1,2\n"), StreamStats()))
