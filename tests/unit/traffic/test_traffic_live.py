"""The API detector's judging (``live.judge_pair``) against the in-process ``BombingDetector``:
the same alerts for one caller and callee, whether the calls come at once or in batches."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from quietline.traffic.live import judge_pair
from quietline.traffic.streaming import BombingDetector, CallEvent, StreamConfig

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()
CFG = StreamConfig(window_seconds=60, min_calls=10, max_calls_per_caller=10_000, idle_seconds=900)
CALLER, CALLEE = "+8617000000001", "+8613800138000"


def _reference(times: list[float]) -> list[tuple[str, str, int]]:
    det = BombingDetector(CFG)
    return [
        (a.onset, a.detected_at, a.calls_in_window)
        for a in det.run(CallEvent(CALLER, CALLEE, t) for t in times)
    ]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _batched(times: list[float], cuts: list[int]) -> list[tuple[str, str, int]]:
    """Judge the calls batch by batch, as the API does: each batch sees every call so far and
    walks from its own first call, carrying the episode state in between."""
    found: list[tuple[str, str, int]] = []
    last: float | None = None
    bounds = sorted({0, len(times), *(c % (len(times) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        if lo == hi:
            continue
        alerts, last = judge_pair(times[:hi], last, times[lo], CFG)
        found += [(_iso(o), _iso(d), n) for o, d, n in alerts]
    return found


gaps = st.lists(
    st.one_of(st.floats(0.5, 4.0), st.floats(4.0, 120.0), st.floats(900.0, 3000.0)), min_size=1, max_size=120
)


@given(gaps=gaps, cuts=st.lists(st.integers(0, 200), max_size=6))
def test_batches_alert_like_the_in_process_detector(gaps: list[float], cuts: list[int]) -> None:
    times: list[float] = []
    t = T0
    for gap in gaps:
        t += round(gap, 3)
        times.append(t)
    reference = _reference(times)
    assert _batched(times, []) == reference
    assert _batched(times, cuts) == reference


def test_a_bombing_alerts_at_its_tenth_call_once_per_episode() -> None:
    times = [T0 + 2.5 * i for i in range(40)] + [T0 + 5000 + 2 * i for i in range(12)]
    alerts, last = judge_pair(times, None, T0, CFG)
    assert alerts == [(T0, T0 + 22.5, 10), (T0 + 5000, T0 + 5018, 10)]
    assert last == T0 + 5022
    # Judged again (another worker's batch), the same calls raise nothing new.
    assert judge_pair(times, last, T0, CFG) == ([], last)
    # Nine calls in a minute, or ten spread over more than one, are no bombing.
    assert judge_pair([T0 + 6 * i for i in range(9)], None, T0, CFG) == ([], None)
    assert judge_pair([T0 + 6.7 * i for i in range(10)], None, T0, CFG) == ([], None)
