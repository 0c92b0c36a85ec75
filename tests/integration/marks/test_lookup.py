"""The look-up cache's change-feed watch on real databases: which changes invalidate which numbers, and
PostgreSQL's out-of-order commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_settings

from quietline.marks import actions
from quietline.marks.lookup import FeedWatch
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender

OP = Actor.operator("test")
NUMBER = "+8613912345678"


def test_the_watch_reports_the_numbers_whose_public_answer_changed(any_runtime: Runtime) -> None:
    dropped: list[str] = []
    watch = FeedWatch(any_runtime.engine, dropped.extend, lookback=0)
    assert watch.poll() is not None  # takes the feed's current end as its position
    for i in range(3):
        actions.add_mark(any_runtime, OP, number=NUMBER, label="harassment", reporter=f"+86138{i:08d}")
    watch.poll()
    assert dropped == []  # three reporters change no displayed state: nothing to invalidate
    actions.add_mark(any_runtime, OP, number=NUMBER, label="harassment", reporter="+8613800000009")
    actions.flag_high_risk(any_runtime, OP, number="+8613912340000", source="police", reason="通报")
    actions.register_identity(
        any_runtime, OP, number="+8613912340001", name="某公司", purpose="", proof="otp", owner="X"
    )
    report = watch.poll()
    assert report is not None
    assert sorted(set(dropped)) == ["+8613912340000", "+8613912340001", NUMBER]
    dropped.clear()
    again = watch.poll()
    assert again is not None
    assert (again.invalidated, dropped) == (0, [])  # each change is handed over once


def test_a_new_watch_looks_back_at_recent_changes(any_runtime: Runtime) -> None:
    """A transaction in flight when the watch starts commits with an id below the feed's end then."""
    for i in range(4):
        actions.add_mark(any_runtime, OP, number=NUMBER, label="harassment", reporter=f"+86138{i:08d}")
    dropped: list[str] = []
    FeedWatch(any_runtime.engine, dropped.extend, lookback=100).poll()
    assert dropped == [NUMBER]


@pytest.mark.postgres
def test_a_change_that_commits_after_a_later_one_is_still_seen(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL hands out ids at insert: id n+1 may be visible before id n commits."""
    rt = Runtime.build(make_settings(pg_url, tmp_path), clock=FakeClock(), sms=RecordingSmsSender())
    try:
        dropped: list[str] = []
        watch = FeedWatch(rt.engine, dropped.extend, lookback=0, gap_grace=3600)
        watch.poll()
        now = rt.clock.now()
        slow = rt.sessions()
        slow.begin()
        changefeed.emit(slow, topic="marks.label", key="+8613900000001", payload={}, at=now)
        slow.flush()  # takes its id now, commits later
        with rt.sessions.begin() as fast:
            changefeed.emit(fast, topic="marks.label", key="+8613900000002", payload={}, at=now)
        watch.poll()
        assert dropped == ["+8613900000002"]
        slow.commit()
        slow.close()
        watch.poll()
        assert dropped == ["+8613900000002", "+8613900000001"]
    finally:
        rt.close()
