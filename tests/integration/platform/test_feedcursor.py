"""The durable feed reader: each change handled once across restarts, in id order, waiting for ids that
commit late (PostgreSQL) and giving up on ids that never commit."""

from __future__ import annotations

from sqlalchemy import insert

from quietline.platform import changefeed
from quietline.platform.changefeed import Change, ChangeRow
from quietline.platform.feedcursor import DurableFeedReader
from quietline.platform.runtime import Runtime


class Seen:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, change: Change) -> None:
        self.ids.append(change.id)


def _emit(rt: Runtime, topic: str, key: str, *, id: int | None = None) -> None:
    with rt.sessions.begin() as session:
        if id is None:
            changefeed.emit(session, topic=topic, key=key, payload={"k": key}, at=rt.clock.now())
        else:
            session.execute(
                insert(ChangeRow).values(id=id, topic=topic, key=key, payload={}, at=rt.clock.now())
            )


def test_handles_its_topics_once_across_restarts(any_runtime: Runtime) -> None:
    rt = any_runtime
    for i in range(3):
        _emit(rt, "a.topic", f"a{i}")
        _emit(rt, "other.topic", f"o{i}")
    seen = Seen()
    report = DurableFeedReader(rt, "r", frozenset({"a.topic"}), seen).drain()
    assert (report.read, report.handled) == (6, 3)
    with rt.sessions() as session:
        wanted = [c.id for c in changefeed.read_after(session, 0, topics=("a.topic",))]
    assert seen.ids == wanted
    # A new process (new reader object) starts where the last one stopped.
    _emit(rt, "a.topic", "a3")
    again = Seen()
    assert DurableFeedReader(rt, "r", frozenset({"a.topic"}), again).drain().handled == 1
    assert len(again.ids) == 1 and again.ids[0] > max(wanted)
    # Another reader name has its own position.
    assert DurableFeedReader(rt, "other", frozenset({"a.topic"}), Seen()).drain().handled == 4


def test_a_new_reader_can_start_at_the_head(any_runtime: Runtime) -> None:
    rt = any_runtime
    _emit(rt, "a.topic", "old")
    seen = Seen()
    reader = DurableFeedReader(rt, "late", frozenset({"a.topic"}), seen, start_at_head=True)
    assert reader.drain().handled == 0
    _emit(rt, "a.topic", "new")
    assert reader.drain().handled == 1


def test_waits_for_a_late_commit_then_gives_up_after_the_grace(any_runtime: Runtime) -> None:
    rt = any_runtime
    now = [0.0]
    seen = Seen()
    reader = DurableFeedReader(rt, "r", frozenset({"t"}), seen, gap_grace=30.0, monotonic=lambda: now[0])
    _emit(rt, "t", "one", id=1)
    _emit(rt, "t", "three", id=3)  # id 2 is still being committed by another transaction
    report = reader.poll()
    assert seen.ids == [1, 3]
    assert report.low_water == 1  # 3 is handled, but the mark waits at the gap
    now[0] = 10.0
    _emit(rt, "t", "two", id=2)  # commits late, inside the grace period
    assert reader.poll().low_water == 3
    assert seen.ids == [1, 3, 2]  # 2 handled once it appeared, 3 not again
    _emit(rt, "t", "five", id=5)  # id 4 will never commit (its transaction rolled back)
    assert reader.poll().low_water == 3  # gap first seen at t=10
    now[0] = 35.0
    assert reader.poll().low_water == 3  # 25 s: still within the grace
    now[0] = 41.0
    report = reader.poll()
    assert (report.low_water, report.gaps_given_up) == (5, 1)
    assert seen.ids == [1, 3, 2, 5]
