"""The working-day calendar of the Chinese statutory holiday schedule, make-up working days (调休) included.

Time limits in working days (the 12321 complaint limits of 3 / 15 / 3 working days, 2020 draft
《通信短信息和语音呼叫服务管理规定（征求意见稿）》) follow the State Council's yearly holiday notice
(国务院办公厅关于部分节假日安排的通知), which moves working days onto weekends: e.g. 2025 National Day,
Oct 1–8 off, Sunday Sep 28 and Saturday Oct 11 worked. A plain Monday–Friday count would be wrong on
those days, so this module never falls back to one silently.

Sources, in order of precedence:
1. operator overrides (one row per day: working or rest) — for corrections and for years the package
   does not know yet (the notice for year Y is published around November of Y-1);
2. the maintained ``chinesecalendar`` package (import name ``chinese_calendar``);
3. for a year an operator has *declared complete* in the overrides (all its holidays and make-up days
   entered), the remaining days are plain weekdays/weekends.
Any other date raises ``CalendarNotCovered``: a deadline computed on a guessed calendar is worse than
an error that tells the operator to enter the year's schedule.

What may be shown meanwhile is an *estimate*, asked for explicitly (``add_working_days(...,
estimate=True)``) and always labelled as one: for a year no source covers, rest days are the weekends
and the statutory holidays of 《全国年节及纪念日放假办法》 (2024 revision: 元旦 1 day, 春节 4 days from
除夕, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3; lunar dates from the maintained ``holidays`` package),
without the notice's shifts (调休), which only the notice can tell. A complaint accepted in late
December then still shows when its later stages are expected, instead of nothing.

The module is pure: overrides are passed in (the complaints context stores them in a table), and the
legal convention for periods is applied in ``add_working_days``: the day on which a period starts is
not counted (《民法典》第二百零一条: 按照年、月、日计算期间的，开始的当日不计入，自下一日开始计算).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import chinese_calendar
import holidays as holiday_tables

from quietline.platform.errors import QuietlineError

#: China Standard Time. Mainland China has had no daylight saving time since 1991, so a fixed offset
#: is exact and needs no tz database. Working days are dates in this zone.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


class CalendarNotCovered(QuietlineError):
    """A date whose working-day status no source knows (neither the package nor the overrides)."""

    status = 422

    def __init__(self, day: date, *, field: str | None = None) -> None:
        self.day = day
        super().__init__(
            f"{day.isoformat()} is beyond the statutory holiday schedule this installation knows "
            f"(the chinesecalendar package and the operator overrides); enter the {day.year} schedule "
            f"with `quietline complaints calendar set` and declare the year complete",
            field=field or "date",
        )


def china_date(moment: datetime) -> date:
    """The calendar date in China of an aware moment (deadlines are China working days)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")
    return moment.astimezone(CHINA_TZ).date()


def end_of_china_day(day: date) -> datetime:
    """The last instant of ``day`` in China (a deadline "within N working days" runs to the day's end)."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ) + timedelta(days=1, microseconds=-1)


@lru_cache(maxsize=8192)
def _statutory_workday(day: date) -> bool | None:
    """The package's answer for ``day`` (None when it lacks the year), memoised: every complaint's
    deadlines walk the same few weeks of days, and the package's lookup is slow in comparison."""
    if day.year not in _SCHEDULED_YEARS:
        return None
    return bool(chinese_calendar.is_workday(day))


#: Years whose State Council holiday schedule the installed ``chinesecalendar`` carries (it refuses the
#: others; asked first, so an unknown year is a plain ``None`` rather than the package's exception).
_SCHEDULED_YEARS = frozenset(day.year for day in chinese_calendar.holidays)


@lru_cache(maxsize=16)
def _statutory_holidays(year: int) -> frozenset[date]:
    """The statutory holidays of ``year`` alone (``observed=False``: without the notice's shifts)."""
    return frozenset(holiday_tables.country_holidays("CN", years=year, observed=False))


def estimated_workday(day: date) -> bool:
    """An estimate for a day no source covers: a weekday that is not a statutory holiday."""
    return day.weekday() < 5 and day not in _statutory_holidays(day.year)


def package_knows(day: date) -> bool:
    """True when the ``chinesecalendar`` package has the State Council schedule of ``day``'s year."""
    return _statutory_workday(day) is not None


@dataclass(frozen=True)
class WorkingCalendar:
    """The statutory calendar plus operator overrides.

    ``overrides`` maps a date to True (working day) or False (rest day); ``complete_years`` lists years
    whose holidays and make-up working days have all been entered as overrides, so their other days
    follow the plain week.
    """

    overrides: Mapping[date, bool] = field(default_factory=dict)
    complete_years: frozenset[int] = frozenset()

    def is_covered(self, day: date) -> bool:
        return day in self.overrides or day.year in self.complete_years or package_knows(day)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; raises ``CalendarNotCovered`` when no source knows it."""
        if day in self.overrides:
            return self.overrides[day]
        statutory = _statutory_workday(day)
        if statutory is not None:
            return statutory
        if day.year in self.complete_years:
            return day.weekday() < 5
        raise CalendarNotCovered(day)

    def add_working_days(self, start: date, n: int, *, estimate: bool = False) -> date:
        """The date on which a period of ``n`` working days starting on ``start`` ends.

        With ``estimate``, days no source covers count by ``estimated_workday`` instead of raising
        ``CalendarNotCovered`` (for showing an expected date, labelled as an estimate, never for a
        deadline that is enforced).

        The start day is not counted (民法典 第二百零一条), whether or not it is a working day: a
        complaint accepted on a Saturday with 3 working days to forward is due on Wednesday, one
        accepted on a Monday is due on Thursday. ``n = 0`` returns ``start``; a negative ``n`` counts
        backwards (the working day ``|n|`` working days before ``start``), used for early warnings.
        """
        day = start
        step = timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        while remaining:
            day += step
            if estimate and not self.is_covered(day):
                working = estimated_workday(day)
            else:
                working = self.is_working_day(day)
            if working:
                remaining -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]`` (negative when ``end`` is before ``start``)."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def working_days_in(self, days: Iterable[date]) -> list[date]:
        return [d for d in days if self.is_working_day(d)]


#: The calendar with no overrides: the package alone.
STATUTORY = WorkingCalendar()


def is_working_day(day: date, calendar: WorkingCalendar = STATUTORY) -> bool:
    return calendar.is_working_day(day)


def add_working_days(start: date, n: int, calendar: WorkingCalendar = STATUTORY) -> date:
    return calendar.add_working_days(start, n)
