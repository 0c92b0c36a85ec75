"""The look-up's cache and rate limit, on a fake monotonic clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.marks.lookup import AnswerCache, TokenBucketLimiter, serving_processes, share_of


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_expire_after_their_time_to_live() -> None:
    ticks = Ticks()
    cache = AnswerCache(5.0, monotonic=ticks)
    assert cache.put("+8613900000001", b"a", cache.ticket())
    assert cache.get("+8613900000001") == b"a"
    ticks.now += 5.1
    assert cache.get("+8613900000001") is None
    # Kept, marked expired, until replaced: the look-up may serve it once more while it recomputes.
    assert cache.lookup("+8613900000001") == (b"a", False)
    assert cache.put("+8613900000001", b"b", cache.ticket())
    assert cache.lookup("+8613900000001") == (b"b", True)
    cache.drop(["+8613900000001"])
    assert cache.lookup("+8613900000001") is None  # an invalidated answer is never served


def test_an_answer_computed_before_an_invalidation_is_not_stored() -> None:
    """A slow read raced a label change: storing its answer would bring the old label back."""
    cache = AnswerCache(60.0)
    ticket = cache.ticket()  # the computation starts
    cache.drop(["+8613900000001"])  # the change feed reports a change meanwhile
    assert not cache.put("+8613900000001", b"old", ticket)
    assert cache.get("+8613900000001") is None
    assert cache.put("+8613900000002", b"other", ticket)  # other numbers are unaffected
    assert cache.put("+8613900000001", b"new", cache.ticket())
    assert cache.get("+8613900000001") == b"new"


def test_forgotten_invalidations_refuse_older_answers_conservatively() -> None:
    cache = AnswerCache(60.0, remembered_drops=2)
    ticket = cache.ticket()
    cache.drop(["a", "b", "c"])  # "a" is no longer remembered by name
    assert not cache.put("a", b"x", ticket)
    assert cache.put("a", b"x", cache.ticket())


def test_the_cache_is_bounded() -> None:
    cache = AnswerCache(60.0, max_entries=3)
    for i in range(5):
        cache.put(str(i), b"x", cache.ticket())
    assert len(cache) == 3
    assert cache.get("0") is None
    assert cache.get("4") == b"x"


def test_a_zero_ttl_stores_nothing() -> None:
    cache = AnswerCache(0.0)
    assert not cache.put("a", b"x", cache.ticket())


def test_a_bucket_admits_its_burst_then_its_rate() -> None:
    ticks = Ticks()
    limiter = TokenBucketLimiter(3, 60.0, monotonic=ticks)
    assert [limiter.hit("ip:1") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("ip:1")
    assert wait == pytest.approx(20.0)  # one token every 20 s
    assert limiter.hit("ip:2") is None  # another client has its own bucket
    ticks.now += 20.0
    assert limiter.hit("ip:1") is None
    assert limiter.hit("ip:1") is not None


@given(st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=200))
def test_no_window_of_a_minute_admits_more_than_burst_plus_rate(gaps: list[float]) -> None:
    """Whatever the arrival times, a client gets at most capacity + rate × 60 s in any 60 s."""
    ticks = Ticks()
    limiter = TokenBucketLimiter(10, 60.0, monotonic=ticks)
    admitted: list[float] = []
    for gap in gaps:
        ticks.now += gap
        if limiter.hit("c") is None:
            admitted.append(ticks.now)
    for i, start in enumerate(admitted):
        within = [t for t in admitted[i:] if t - start <= 60.0]
        assert len(within) <= 10 + 10 + 1e-9


def test_forgets_the_least_recent_clients_beyond_its_bound() -> None:
    limiter = TokenBucketLimiter(1, 60.0, max_clients=2)
    for client in ("a", "b", "c"):
        assert limiter.hit(client) is None
    assert limiter.hit("c") is not None
    assert limiter.hit("a") is None  # forgotten, so a fresh bucket


def test_processes_share_one_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert share_of(600, 4) == 150
    assert share_of(600, 0) == 600
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert serving_processes() == 3
    assert serving_processes(2) == 2
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    assert serving_processes() == 1
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert serving_processes() == 1
