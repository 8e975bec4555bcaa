"""Vietnamese lunar calendar (âm lịch) computed astronomically for UTC+7.

Vietnam's lunar calendar follows the same rules as the Chinese one (a month starts on the
local day of the new moon; month 11 contains the winter solstice; in a 13-month year the first
month without a major solar term is the leap month), but the "local day" is the day in
Vietnam's time zone. Tables and libraries for the Chinese calendar use UTC+8 and therefore put
Tết on a different day in some years (1968, 1969, 1985, 2007, ...), which is why this module
computes the calendar instead of looking it up.

The astronomy is the low-precision approach popularised for Vietnamese calendars by Hồ Ngọc
Đức: the time of the k-th new moon from Meeus' periodic terms and the sun's apparent longitude
from the low-order equation of centre, evaluated at local midnight. That precision is enough to
reproduce published Vietnamese calendars for 1900–2100, the range this module guarantees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

__all__ = [
    "VIETNAM_UTC_OFFSET_HOURS",
    "LunarDate",
    "LunarDateError",
    "from_lunar",
    "hung_kings_day",
    "lunar_new_year",
    "to_lunar",
]

VIETNAM_UTC_OFFSET_HOURS = 7.0

MIN_YEAR = 1800
MAX_YEAR = 2199

_SYNODIC_MONTH = 29.530588853
# Julian day (UT) of the new moon of 1900-01-01 that Meeus' series counts k from.
_NEW_MOON_EPOCH = 2415021.076998695
# Offset between Python's proleptic Gregorian ordinal and the Julian Day Number.
_JDN_OFFSET = 1721425
_DEG = math.pi / 180.0


class LunarDateError(ValueError):
    """A lunar date that does not exist (day 30 of a short month, a leap month the year lacks)."""


@dataclass(frozen=True, order=True)
class LunarDate:
    """A day of the Vietnamese lunar calendar; ``year`` is the lunar year (Giáp Thìn = 2024)."""

    year: int
    month: int
    day: int
    leap: bool = False  # tháng nhuận

    def __str__(self) -> str:
        suffix = " (nhuận)" if self.leap else ""
        return f"{self.day:02d}/{self.month:02d}{suffix}/{self.year}"


def _jdn(d: date) -> int:
    return d.toordinal() + _JDN_OFFSET


def _date(jdn: int) -> date:
    return date.fromordinal(jdn - _JDN_OFFSET)


def _new_moon_jd(k: int) -> float:
    """Julian day (TT corrected to UT) of the k-th mean-lunation new moon after 1900-01-01."""
    t = k / 1236.85
    t2 = t * t
    t3 = t2 * t
    jd = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3
    jd += 0.00033 * math.sin((166.56 + 132.87 * t - 0.009173 * t2) * _DEG)
    sun_anomaly = (359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3) * _DEG
    moon_anomaly = (306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3) * _DEG
    latitude_arg = (21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3) * _DEG
    correction = (
        (0.1734 - 0.000393 * t) * math.sin(sun_anomaly)
        + 0.0021 * math.sin(2 * sun_anomaly)
        - 0.4068 * math.sin(moon_anomaly)
        + 0.0161 * math.sin(2 * moon_anomaly)
        - 0.0004 * math.sin(3 * moon_anomaly)
        + 0.0104 * math.sin(2 * latitude_arg)
        - 0.0051 * math.sin(sun_anomaly + moon_anomaly)
        - 0.0074 * math.sin(sun_anomaly - moon_anomaly)
        + 0.0004 * math.sin(2 * latitude_arg + sun_anomaly)
        - 0.0004 * math.sin(2 * latitude_arg - sun_anomaly)
        - 0.0006 * math.sin(2 * latitude_arg + moon_anomaly)
        + 0.0010 * math.sin(2 * latitude_arg - moon_anomaly)
        + 0.0005 * math.sin(2 * moon_anomaly + sun_anomaly)
    )
    if t < -11:
        delta_t = 0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    else:
        delta_t = -0.000278 + 0.000265 * t + 0.000262 * t2
    return jd + correction - delta_t


def _sun_longitude(jd: float) -> float:
    """Apparent longitude of the sun in radians, normalised to [0, 2π)."""
    t = (jd - 2451545.0) / 36525
    t2 = t * t
    mean_anomaly = (357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2) * _DEG
    mean_longitude = 280.46645 + 36000.76983 * t + 0.0003032 * t2
    centre = (
        (1.914600 - 0.004817 * t - 0.000014 * t2) * math.sin(mean_anomaly)
        + (0.019993 - 0.000101 * t) * math.sin(2 * mean_anomaly)
        + 0.000290 * math.sin(3 * mean_anomaly)
    )
    longitude = (mean_longitude + centre) * _DEG
    return longitude % (2 * math.pi)


def _new_moon_day(k: int, tz: float) -> int:
    """JDN of the local civil day on which the k-th new moon falls."""
    return math.floor(_new_moon_jd(k) + 0.5 + tz / 24)


def _major_term(jdn: int, tz: float) -> int:
    """Index 0..11 of the 30° sector the sun is in at local midnight starting day ``jdn``.

    A month whose first day and the next month's first day share the index contains no major
    solar term (trung khí); that is how the leap month is found.
    """
    return math.floor(_sun_longitude(jdn - 0.5 - tz / 24) / math.pi * 6)


def _month11_start(year: int, tz: float) -> int:
    """JDN of the first day of lunar month 11, the month containing the December solstice."""
    last_day = _jdn(date(year, 12, 31))
    k = math.floor((last_day - 2415021) / _SYNODIC_MONTH)
    start = _new_moon_day(k, tz)
    if _major_term(start, tz) >= 9:  # the solstice (270°) already passed when this month began
        start = _new_moon_day(k - 1, tz)
    return start


@dataclass(frozen=True)
class _Month:
    start: int  # JDN of day 1
    length: int  # 29 or 30
    lunar_year: int
    number: int  # 1..12
    leap: bool


@lru_cache(maxsize=512)
def _cycle(year: int, tz: float) -> tuple[_Month, ...]:
    """The months from month 11 of lunar year ``year - 1`` up to (not incl.) month 11 of ``year``.

    Twelve months normally; thirteen when the two solstice months are more than 365 days apart,
    in which case the first month after month 11 without a major solar term is the leap month
    and repeats the number of the month before it.
    """
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise LunarDateError(f"lunar calendar supported for {MIN_YEAR}–{MAX_YEAR}, not {year}")
    a11 = _month11_start(year - 1, tz)
    b11 = _month11_start(year, tz)
    k = math.floor((a11 - _NEW_MOON_EPOCH) / _SYNODIC_MONTH + 0.5)
    starts = [a11]
    i = 1
    while True:
        nxt = _new_moon_day(k + i, tz)
        if nxt >= b11:
            break
        starts.append(nxt)
        i += 1
    starts.append(b11)
    leap_index = -1
    if len(starts) - 1 == 13:
        for idx in range(1, 13):
            if _major_term(starts[idx], tz) == _major_term(starts[idx + 1], tz):
                leap_index = idx
                break
        if leap_index < 0:  # pragma: no cover - astronomically impossible in the range
            leap_index = 12
    months: list[_Month] = []
    number = 10  # incremented before use: the first month is 11
    for idx in range(len(starts) - 1):
        leap = idx == leap_index
        if not leap:
            number = number % 12 + 1
        lunar_year = year - 1 if number >= 11 else year
        months.append(_Month(starts[idx], starts[idx + 1] - starts[idx], lunar_year, number, leap))
    return tuple(months)


def _cycle_for_jdn(jdn: int, year: int, tz: float) -> tuple[_Month, ...]:
    if jdn >= _month11_start(year, tz):
        return _cycle(year + 1, tz)
    return _cycle(year, tz)


def to_lunar(day: date, tz: float = VIETNAM_UTC_OFFSET_HOURS) -> LunarDate:
    """Lunar date of a solar (Gregorian) date; ``tz`` exists only to compare with UTC+8 tables."""
    jdn = _jdn(day)
    for month in reversed(_cycle_for_jdn(jdn, day.year, tz)):
        if month.start <= jdn:
            return LunarDate(month.lunar_year, month.number, jdn - month.start + 1, month.leap)
    raise AssertionError("unreachable: a cycle always starts on or before the day")


def from_lunar(
    year: int, month: int, day: int, leap: bool = False, tz: float = VIETNAM_UTC_OFFSET_HOURS
) -> date:
    """Solar date of a lunar date; raises :class:`LunarDateError` if the lunar date is absent."""
    if not 1 <= month <= 12:
        raise LunarDateError(f"lunar month must be 1..12, not {month}")
    cycle = _cycle(year + 1 if month >= 11 else year, tz)
    for m in cycle:
        if m.number == month and m.leap == leap and m.lunar_year == year:
            if not 1 <= day <= m.length:
                raise LunarDateError(
                    f"lunar month {month}{' (leap)' if leap else ''} of {year} has {m.length} days"
                )
            return _date(m.start + day - 1)
    raise LunarDateError(f"lunar year {year} has no leap month {month}")


def lunar_new_year(year: int, tz: float = VIETNAM_UTC_OFFSET_HOURS) -> date:
    """Solar date of Tết Nguyên đán (1st day of the 1st lunar month) of lunar year ``year``."""
    return from_lunar(year, 1, 1, tz=tz)


def lunar_year_end(year: int, tz: float = VIETNAM_UTC_OFFSET_HOURS) -> date:
    """Last day of lunar year ``year - 1`` as seen from solar year ``year`` (giao thừa's day)."""
    return lunar_new_year(year, tz) - timedelta(days=1)


def hung_kings_day(year: int) -> date:
    """Giỗ Tổ Hùng Vương: the 10th day of the 3rd lunar month (never a leap month by custom)."""
    return from_lunar(year, 3, 10)
