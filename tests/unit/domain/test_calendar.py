"""Table-driven tests of the working calendar, written from the rules (not from the code)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from lienthong.domain.calendar import (
    NaiveDatetimeError,
    WorkingCalendar,
    WorkingHours,
)
from lienthong.domain.deadlines import Duration, clock_start, compute_appointment
from lienthong.domain.holidays import HolidayCalendar

from .conftest import vn

H = timedelta(hours=1)
DAY = timedelta(hours=8)


# --- which days are off ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "working", "reason_part"),
    [
        (date(2025, 3, 3), True, None),  # ordinary Monday
        (date(2025, 3, 8), False, "weekend"),
        (date(2025, 3, 9), False, "weekend"),
        # 1 January
        (date(2025, 1, 1), False, "New Year"),
        (date(2027, 1, 1), False, "New Year"),
        # New Year on a Sunday (2023) -> compensatory Monday 2 Jan
        (date(2023, 1, 2), False, "compensatory"),
        # Tết by rule (2027: Tết Sat 6 Feb; last day Fri 5 Feb; Mon-Tue 8-9 = days 3-4)
        (date(2027, 2, 5), False, "last day of the lunar year"),
        (date(2027, 2, 8), False, "day 3"),
        (date(2027, 2, 9), False, "day 4"),
        (date(2027, 2, 10), False, "compensatory"),  # for Sat 6 Feb
        (date(2027, 2, 11), False, "compensatory"),  # for Sun 7 Feb
        (date(2027, 2, 12), True, None),
        # Tết window by official schedule 2024 (Thông báo 5015/TB-LĐTBXH): 8-14 Feb
        (date(2024, 2, 7), True, None),
        (date(2024, 2, 8), False, "29 tháng Chạp"),
        (date(2024, 2, 14), False, "Tết"),
        (date(2024, 2, 15), True, None),  # the rules alone would have made this a day off
        # 2025 official: 25/1-2/2, weekdays 27-31 Jan
        (date(2025, 1, 24), True, None),
        (date(2025, 1, 27), False, "28 tháng Chạp"),
        (date(2025, 1, 31), False, "Tết"),
        (date(2025, 2, 3), True, None),
        # 2026 official (Thông báo 9441/TB-BNV): 16-20 Feb
        (date(2026, 2, 13), True, None),
        (date(2026, 2, 16), False, "Tết"),
        (date(2026, 2, 20), False, "Tết"),
        (date(2026, 2, 23), True, None),
        # Hùng Kings' day (10/3 lunar)
        (date(2025, 4, 7), False, "Hùng"),
        (date(2024, 4, 18), False, "Hùng"),
        (date(2026, 4, 27), False, "compensatory"),  # Hùng Kings on Sunday 26/4/2026
        # 30/4 and 1/5
        (date(2027, 4, 30), False, "Reunification"),
        (date(2027, 5, 3), False, "compensatory"),  # 1/5/2027 is a Saturday
        (date(2023, 5, 2), False, "compensatory"),  # Hùng Kings Sat 29/4/2023
        (date(2023, 5, 3), False, "compensatory"),  # 30/4/2023 Sunday
        # swapped days and make-up Saturdays
        (date(2024, 4, 29), False, "Swapped"),
        (date(2024, 5, 4), True, None),  # make-up Saturday
        (date(2025, 5, 2), False, "Swapped"),
        (date(2025, 4, 26), True, None),  # make-up Saturday
        (date(2026, 8, 22), True, None),  # make-up Saturday
        (date(2026, 8, 31), False, "Swapped"),
        # 2 September + adjacent day
        (date(2024, 9, 2), False, "National Day"),
        (date(2024, 9, 3), False, "adjacent"),
        (date(2025, 9, 1), False, "adjacent"),  # rule default for a Tuesday 2/9
        (date(2026, 9, 1), False, "adjacent"),
        (date(2027, 9, 3), False, "adjacent"),  # Thursday 2/9 -> Friday 3/9
        (date(2023, 9, 1), False, "adjacent"),  # Saturday 2/9 -> Friday 1/9
        (date(2023, 9, 4), False, "compensatory"),
    ],
)
def test_day_status(cal, day, working, reason_part):
    status = cal.day_status(day)
    assert status.working is working
    if reason_part is None:
        assert status.reason is None
    else:
        assert reason_part in status.reason


def test_rules_alone_put_tet_2024_differently():
    rules_only = WorkingCalendar(holidays=HolidayCalendar({}))
    assert rules_only.day_status(date(2024, 2, 8)).working  # official schedule made it off
    assert not rules_only.day_status(date(2024, 2, 15)).working  # compensatory by rule
    assert rules_only.day_status(date(2024, 5, 4)).working is False  # no make-up without data


# --- when the clock starts ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("received", "cutoff", "start"),
    [
        (vn(2025, 3, 4, 6, 0), None, vn(2025, 3, 4, 7, 30)),  # before opening -> opening
        (vn(2025, 3, 4, 7, 30), None, vn(2025, 3, 4, 7, 30)),  # at opening
        (vn(2025, 3, 4, 9, 15), None, vn(2025, 3, 4, 9, 15)),  # inside a session
        (vn(2025, 3, 4, 11, 30), None, vn(2025, 3, 4, 13, 0)),  # end of morning -> afternoon
        (vn(2025, 3, 4, 12, 0), None, vn(2025, 3, 4, 13, 0)),  # lunch break -> afternoon
        (vn(2025, 3, 4, 17, 0), None, vn(2025, 3, 5, 7, 30)),  # at closing -> next day
        (vn(2025, 3, 4, 20, 0), None, vn(2025, 3, 5, 7, 30)),  # after closing
        (vn(2025, 3, 7, 18, 0), None, vn(2025, 3, 10, 7, 30)),  # Friday evening -> Monday
        (vn(2025, 3, 8, 10, 0), None, vn(2025, 3, 10, 7, 30)),  # Saturday
        (vn(2025, 3, 4, 14, 59), time(15), vn(2025, 3, 4, 14, 59)),  # before cut-off
        (vn(2025, 3, 4, 15, 0), time(15), vn(2025, 3, 4, 15, 0)),  # at cut-off: not "after"
        (vn(2025, 3, 4, 15, 1), time(15), vn(2025, 3, 5, 7, 30)),  # after cut-off
        (vn(2025, 3, 7, 16, 0), time(15), vn(2025, 3, 10, 7, 30)),  # Friday after cut-off
        (vn(2024, 12, 31, 16, 0), time(15), vn(2025, 1, 2, 7, 30)),  # year boundary + 1/1
        (vn(2025, 1, 24, 17, 30), None, vn(2025, 2, 3, 7, 30)),  # into the Tết window
        (vn(2024, 5, 3, 17, 30), None, vn(2024, 5, 4, 7, 30)),  # make-up Saturday works
        # Different offset in, same instant: 01:00 UTC is 08:00 in Vietnam.
        (datetime(2025, 3, 4, 1, 0, tzinfo=UTC), None, vn(2025, 3, 4, 8, 0)),
    ],
)
def test_clock_start(cal, received, cutoff, start):
    assert clock_start(received, cutoff, cal) == start


# --- due instants ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("received", "duration", "due"),
    [
        (vn(2025, 3, 3, 7, 30), "1d", vn(2025, 3, 3, 17, 0)),  # a day at opening ends at closing
        (vn(2025, 3, 3, 7, 30), "4h", vn(2025, 3, 3, 11, 30)),  # morning ends at 11:30, not 13:00
        (vn(2025, 3, 3, 10, 0), "4h", vn(2025, 3, 3, 15, 30)),  # across lunch
        (vn(2025, 3, 3, 16, 0), "2h", vn(2025, 3, 4, 8, 30)),  # across the night
        (vn(2025, 3, 3, 7, 30), "5d", vn(2025, 3, 7, 17, 0)),
        (vn(2025, 3, 3, 7, 30), "10d", vn(2025, 3, 14, 17, 0)),  # over a weekend
        (vn(2025, 3, 3, 9, 0), "0.5d", vn(2025, 3, 3, 14, 30)),
        (vn(2025, 1, 24, 16, 0), "2h", vn(2025, 2, 3, 8, 30)),  # over the 2025 Tết break
        (vn(2024, 12, 31, 13, 0), "1d", vn(2025, 1, 2, 11, 30)),  # over 1/1
        (vn(2024, 5, 3, 13, 0), "1d", vn(2024, 5, 4, 11, 30)),  # into a make-up Saturday
        (vn(2025, 4, 25, 13, 0), "1d", vn(2025, 4, 26, 11, 30)),  # make-up Saturday 26/4/2025
        (vn(2025, 4, 29, 13, 0), "1d", vn(2025, 5, 5, 11, 30)),  # over 30/4-4/5/2025
    ],
)
def test_due(cal, received, duration, due):
    assert compute_appointment(received, Duration.parse(duration), calendar=cal).due == due


def test_cutoff_due(cal):
    appt = compute_appointment(vn(2025, 3, 3, 15, 30), Duration.parse("1d"), cutoff=time(15))
    assert appt.clock_start == vn(2025, 3, 4, 7, 30)
    assert appt.due == vn(2025, 3, 4, 17, 0)


def test_working_time_between(cal):
    assert cal.working_time_between(vn(2025, 3, 3, 7, 0), vn(2025, 3, 3, 18, 0)) == DAY
    assert cal.working_time_between(vn(2025, 3, 3, 11, 0), vn(2025, 3, 3, 14, 0)) == 1.5 * H
    assert cal.working_time_between(vn(2025, 3, 7, 16, 0), vn(2025, 3, 10, 8, 30)) == 2 * H
    assert cal.working_time_between(vn(2025, 3, 10), vn(2025, 3, 3)) == timedelta(0)
    # 2025: 261 weekdays - 12 weekdays off (1/1, 27-31/1, 7/4, 30/4, 1/5, 2/5, 1/9, 2/9)
    # + 1 make-up Saturday (26/4) = 250 working days.
    assert cal.working_time_between(vn(2025, 1, 1), vn(2025, 12, 31, 23)) == 250 * DAY


def test_naive_datetimes_are_rejected(cal):
    with pytest.raises(NaiveDatetimeError, match="no time zone"):
        cal.add_working_time(datetime(2025, 3, 3, 8), DAY)
    with pytest.raises(NaiveDatetimeError):
        cal.working_time_between(datetime(2025, 3, 3, 8), vn(2025, 3, 4))


def test_province_specific_hours():
    hours = WorkingHours.parse("08:00-12:00,13:30-17:30")
    c = WorkingCalendar(hours=hours)
    assert c.day_length == DAY
    assert c.add_working_time(vn(2025, 3, 3, 8), DAY) == vn(2025, 3, 3, 17, 30)
    assert c.next_working_instant(vn(2025, 3, 3, 12, 30)) == vn(2025, 3, 3, 13, 30)
    with pytest.raises(ValueError, match="HH:MM"):
        WorkingHours.parse("8-12")
    with pytest.raises(ValueError, match="overlap"):
        WorkingHours.parse("08:00-12:00,11:00-17:00")


def test_duration_parsing():
    assert Duration.parse("15d").working_time() == 15 * DAY
    assert Duration.parse("8h").working_time() == DAY
    for bad in ("15", "d", "-1d", "3w"):
        with pytest.raises(ValueError):
            Duration.parse(bad)
