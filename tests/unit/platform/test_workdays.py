"""The statutory working-day calendar: holidays, make-up working days (调休), overrides, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.platform.workdays import (
    STATUTORY,
    CalendarNotCovered,
    WorkingCalendar,
    add_working_days,
    china_date,
    end_of_china_day,
    estimated_workday,
    is_working_day,
)


def test_national_day_2025_with_make_up_weekend_days() -> None:
    # 国务院办公厅 2025 notice: Oct 1–8 off; Sunday Sep 28 and Saturday Oct 11 are working days.
    assert is_working_day(date(2025, 9, 28))  # a Sunday, worked
    assert is_working_day(date(2025, 10, 11))  # a Saturday, worked
    assert not any(is_working_day(date(2025, 10, d)) for d in range(1, 9))
    assert not is_working_day(date(2025, 10, 12))  # an ordinary Sunday
    # Accepted Friday Sep 26: Sat 27 off, Sun 28 worked (1), Mon 29 (2), Tue 30 (3).
    assert add_working_days(date(2025, 9, 26), 3) == date(2025, 9, 30)
    # Accepted Tue Sep 30: Oct 1–8 off, Thu Oct 9 (1), Fri Oct 10 (2), Sat Oct 11 worked (3).
    assert add_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)
    # 15 working days from Sep 30 2025: Oct 9,10,11 (3), 13–17 (8), 20–24 (13), 27, 28 (15).
    assert add_working_days(date(2025, 9, 30), 15) == date(2025, 10, 28)


def test_spring_festival_2025_with_make_up_weekend_days() -> None:
    # 2025 Spring Festival: Jan 28 – Feb 4 off; Sunday Jan 26 and Saturday Feb 8 worked.
    assert is_working_day(date(2025, 1, 26))
    assert is_working_day(date(2025, 2, 8))
    assert not is_working_day(date(2025, 1, 28))
    assert not is_working_day(date(2025, 2, 4))
    # Fri Jan 24: Sun Jan 26 (1), Mon 27 (2), Feb 5 (3).
    assert add_working_days(date(2025, 1, 24), 3) == date(2025, 2, 5)
    # Fri Feb 7: Sat Feb 8 worked (1), Mon 10 (2), Tue 11 (3).
    assert add_working_days(date(2025, 2, 7), 3) == date(2025, 2, 11)


def test_spring_festival_2026() -> None:
    # 2026: Feb 15–23 off; Saturday Feb 14 and Saturday Feb 28 worked.
    assert is_working_day(date(2026, 2, 14))
    assert is_working_day(date(2026, 2, 28))
    assert add_working_days(date(2026, 2, 13), 3) == date(2026, 2, 25)  # Feb 14, 24, 25


def test_start_day_is_not_counted_even_when_it_is_a_rest_day() -> None:
    # Accepted on Saturday 2025-11-22: Mon 24 (1), Tue 25 (2), Wed 26 (3).
    assert add_working_days(date(2025, 11, 22), 3) == date(2025, 11, 26)
    # Accepted Monday 2025-11-24: Thursday 27.
    assert add_working_days(date(2025, 11, 24), 3) == date(2025, 11, 27)
    assert add_working_days(date(2025, 11, 24), 0) == date(2025, 11, 24)


def test_negative_counts_go_backwards() -> None:
    assert add_working_days(date(2025, 10, 9), -2) == date(2025, 9, 29)
    assert STATUTORY.working_days_between(date(2025, 9, 26), date(2025, 9, 30)) == 3


def test_years_the_package_lacks_raise_instead_of_guessing() -> None:
    with pytest.raises(CalendarNotCovered, match="2031"):
        is_working_day(date(2031, 3, 3))
    # A period that starts in a known year and runs into an unknown one raises too.
    known_2030 = WorkingCalendar(complete_years=frozenset({2030}))
    assert known_2030.add_working_days(date(2030, 12, 27), 2) == date(2030, 12, 31)
    with pytest.raises(CalendarNotCovered, match="2031-01-01"):
        known_2030.add_working_days(date(2030, 12, 27), 3)


def test_an_estimate_for_an_uncovered_year_skips_weekends_and_statutory_holidays_only() -> None:
    """Asked for explicitly: the 2024 放假办法's days (lunar ones included), no shifts (调休)."""
    known_2030 = WorkingCalendar(complete_years=frozenset({2030}))
    # 2031: New Year's Day is a Wednesday; Spring Festival eve is Jan 22, the festival Jan 23–25.
    assert known_2030.add_working_days(date(2030, 12, 27), 3, estimate=True) == date(2031, 1, 2)
    assert known_2030.add_working_days(date(2031, 1, 20), 3, estimate=True) == date(2031, 1, 28)
    # Covered days still follow the exact calendar (an override in the gap year too).
    corrected = WorkingCalendar(overrides={date(2031, 1, 2): False}, complete_years=frozenset({2030}))
    assert corrected.add_working_days(date(2030, 12, 27), 3, estimate=True) == date(2031, 1, 3)
    # Without ``estimate`` nothing is guessed.
    with pytest.raises(CalendarNotCovered):
        known_2030.add_working_days(date(2030, 12, 27), 3)
    assert estimated_workday(date(2031, 10, 3)) is False  # National Day, a Friday
    assert estimated_workday(date(2031, 10, 6)) is True  # the Monday after (no 调休 guessed)


def test_overrides_correct_and_extend_the_package() -> None:
    declared = WorkingCalendar(
        overrides={date(2031, 1, 1): False, date(2031, 1, 4): True},
        complete_years=frozenset({2031}),
    )
    assert not declared.is_working_day(date(2031, 1, 1))  # Wednesday, holiday override
    assert declared.is_working_day(date(2031, 1, 4))  # Saturday, make-up override
    assert declared.is_working_day(date(2031, 1, 6))  # plain Monday of a declared year
    # A single override does not make its year known: the other days still raise.
    partial = WorkingCalendar(overrides={date(2031, 1, 1): False})
    assert not partial.is_working_day(date(2031, 1, 1))
    with pytest.raises(CalendarNotCovered):
        partial.is_working_day(date(2031, 1, 2))
    # An override beats the package (e.g. a correction).
    fixed = WorkingCalendar(overrides={date(2025, 10, 11): False})
    assert not fixed.is_working_day(date(2025, 10, 11))


def test_china_dates() -> None:
    late_utc = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)  # 01:00 on Oct 1 in Beijing
    assert china_date(late_utc) == date(2025, 10, 1)
    end = end_of_china_day(date(2025, 9, 30))
    assert end.astimezone(UTC) == datetime(2025, 9, 30, 15, 59, 59, 999999, tzinfo=UTC)


@given(st.dates(min_value=date(2005, 1, 1), max_value=date(2025, 12, 1)), st.integers(0, 20))
def test_add_working_days_properties(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert end >= start
    assert STATUTORY.working_days_between(start, end) == n
    if n:
        assert is_working_day(end)
        # Never more than a long holiday (Spring Festival, at most 9 rest days in a row) per step.
        assert end - start <= timedelta(days=10 * n)
    assert add_working_days(end, -n) <= end
