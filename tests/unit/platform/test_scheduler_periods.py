"""When a job is next due: interval jobs one period later, daily jobs at their China-time hour."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.platform.scheduler import CHINA_TZ, Job


def _noop(_rt: object, _due: datetime) -> None:
    return None


def test_a_job_needs_exactly_one_period() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Job("x", _noop, "x")
    with pytest.raises(ValueError, match="exactly one"):
        Job("x", _noop, "x", every=timedelta(seconds=1), daily_at=time(3))
    with pytest.raises(ValueError, match="positive"):
        Job("x", _noop, "x", every=timedelta(0))


def test_daily_job_runs_at_its_china_time_today_or_tomorrow() -> None:
    job = Job("digest", _noop, "d", daily_at=time(20, 0))
    # 11:59 UTC is 19:59 in Beijing: due at 20:00 Beijing the same day (12:00 UTC).
    assert job.next_due(datetime(2026, 3, 1, 11, 59, tzinfo=UTC)) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # Exactly 20:00 Beijing: the next one is tomorrow's.
    assert job.next_due(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    # 17:00 UTC on Mar 1 is already 01:00 Mar 2 in Beijing: due 20:00 Mar 2 Beijing.
    assert job.next_due(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    # A new daily job waits for its hour; a new interval job is due at once.
    now = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    assert job.first_due(now) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert Job("i", _noop, "i", every=timedelta(minutes=5)).first_due(now) == now


#: hypothesis takes naive bounds and attaches the timezone itself.
NAIVE_START, NAIVE_END = datetime(2020, 1, 1), datetime(2035, 1, 1)  # noqa: DTZ001


@given(
    after=st.datetimes(min_value=NAIVE_START, max_value=NAIVE_END, timezones=st.just(UTC)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_daily_next_due_is_the_first_such_time_after(after: datetime, hour: int, minute: int) -> None:
    due = Job("d", _noop, "d", daily_at=time(hour, minute)).next_due(after)
    local = due.astimezone(CHINA_TZ)
    assert (local.hour, local.minute, local.second, local.microsecond) == (hour, minute, 0, 0)
    assert after < due <= after + timedelta(days=1)


@given(seconds=st.integers(1, 10**6))
def test_interval_next_due_is_one_period_later(seconds: int) -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert Job("i", _noop, "i", every=timedelta(seconds=seconds)).next_due(after) == after + timedelta(
        seconds=seconds
    )
