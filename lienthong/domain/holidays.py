"""Public holidays for civil servants: the Labour Code rules plus yearly official schedules.

The rules (Labour Code 2019, Art. 112) give the holidays themselves; a holiday falling on a
Saturday or Sunday gives a compensatory day off (nghỉ bù) on the next working day. Every year
the Government (Ministry of Labour until 2025, Ministry of Home Affairs since) decides which
five days Tết covers, which day next to 2 September is off, and often swaps a working day with a
make-up Saturday (làm bù). Those decisions cannot be derived, so they live in data files
``data/holidays/<year>.toml`` that *replace* what the rules produce for the occasions they
name. Adding a year is a data-only change.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from threading import Lock
from types import MappingProxyType
from typing import Any

from lienthong.domain.lunar import from_lunar, lunar_new_year

__all__ = [
    "OCCASIONS",
    "HolidayCalendar",
    "HolidayDataError",
    "OccasionOverride",
    "RuleHoliday",
    "YearSchedule",
    "default_holiday_calendar",
    "load_year_schedules",
    "national_day_adjacent",
    "rule_holidays",
]

# Occasions a yearly schedule can override, with the reason shown to users.
OCCASIONS: Mapping[str, str] = MappingProxyType(
    {
        "new_year": "New Year's Day (Tết Dương lịch)",
        "tet": "Lunar New Year (Tết Nguyên đán)",
        "hung_kings": "Hùng Kings' Commemoration (Giỗ Tổ Hùng Vương)",
        "reunification_labour": "Reunification Day and Labour Day (30/4 và 1/5)",
        "national_day": "National Day (Quốc khánh 2/9)",
    }
)

_SATURDAY = 5


class HolidayDataError(ValueError):
    """A yearly schedule file is malformed; the message names the file, the field and why."""


@dataclass(frozen=True)
class RuleHoliday:
    """A holiday produced by the rules (may fall on a weekend; then it earns a compensatory day)."""

    day: date
    occasion: str
    reason: str


def national_day_adjacent(year: int) -> date:
    """The day next to 2 September that is off when no official schedule chose it.

    The law leaves the choice to the Prime Minister. The default joins the break to a weekend
    where possible, which reproduces the choices made for 2021–2026 (Thu→3rd, Fri→1st,
    Sat→1st, Mon→3rd, Tue→1st, Wed→1st).
    """
    sep2 = date(year, 9, 2)
    weekday = sep2.weekday()  # Monday = 0
    if weekday in (0, 3, 6):  # Mon, Thu, Sun: the 3rd joins the weekend / follows it
        return sep2 + timedelta(days=1)
    return sep2 - timedelta(days=1)


def rule_holidays(year: int) -> list[RuleHoliday]:
    """Holidays of a solar year by the Labour Code rules alone, sorted by date."""
    out = [RuleHoliday(date(year, 1, 1), "new_year", "New Year's Day (Tết Dương lịch)")]
    tet = lunar_new_year(year)
    out.append(
        RuleHoliday(
            tet - timedelta(days=1),
            "tet",
            "Lunar New Year (Tết Nguyên đán): last day of the lunar year",
        )
    )
    for n in range(4):
        out.append(
            RuleHoliday(
                tet + timedelta(days=n),
                "tet",
                f"Lunar New Year (Tết Nguyên đán): day {n + 1} of the first lunar month",
            )
        )
    out.append(
        RuleHoliday(
            from_lunar(year, 3, 10),
            "hung_kings",
            "Hùng Kings' Commemoration (Giỗ Tổ Hùng Vương, 10/3 âm lịch)",
        )
    )
    out.append(
        RuleHoliday(
            date(year, 4, 30), "reunification_labour", "Reunification Day (Ngày Chiến thắng 30/4)"
        )
    )
    out.append(
        RuleHoliday(
            date(year, 5, 1), "reunification_labour", "International Labour Day (Quốc tế Lao động)"
        )
    )
    out.append(RuleHoliday(date(year, 9, 2), "national_day", "National Day (Quốc khánh 2/9)"))
    out.append(
        RuleHoliday(
            national_day_adjacent(year),
            "national_day",
            "National Day (Quốc khánh): adjacent day",
        )
    )
    return sorted(out, key=lambda h: h.day)


@dataclass(frozen=True)
class OccasionOverride:
    """What the official schedule decided for one occasion: it replaces the rules' days."""

    occasion: str
    source: str
    days_off: Mapping[date, str]
    make_up_days: Mapping[date, str]


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule (lịch nghỉ lễ, Tết của công chức, viên chức)."""

    year: int
    path: str
    occasions: Mapping[str, OccasionOverride]
    extra_days_off: Mapping[date, str] = field(default_factory=dict)


def _fail(path: str, where: str, why: str) -> HolidayDataError:
    return HolidayDataError(f"{path}: {where}: {why}")


def _parse_days(path: str, where: str, raw: Any, year: int, *, weekend: bool) -> dict[date, str]:
    if not isinstance(raw, list):
        raise _fail(path, where, 'must be a list of { date = YYYY-MM-DD, reason = "..." }')
    out: dict[date, str] = {}
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or set(item) - {"date", "reason"}:
            raise _fail(path, here, "must be a table with keys date and reason")
        day = item.get("date")
        reason = item.get("reason")
        if type(day) is not date:
            raise _fail(path, here + ".date", "must be a TOML local date (YYYY-MM-DD)")
        if not isinstance(reason, str) or not reason.strip():
            raise _fail(path, here + ".reason", "must be a non-empty string")
        if day.year != year:
            raise _fail(path, here + ".date", f"{day} is not in {year}")
        is_weekend = day.weekday() >= _SATURDAY
        if weekend and not is_weekend:
            raise _fail(path, here + ".date", f"{day} is a weekday; make-up days are weekends")
        if not weekend and is_weekend:
            raise _fail(path, here + ".date", f"{day} is a weekend day, already off")
        if day in out:
            raise _fail(path, here + ".date", f"{day} listed twice")
        out[day] = reason
    return out


def parse_year_schedule(text: str, path: str) -> YearSchedule:
    """Parse and validate one yearly schedule file (see docs/domain.md for the format)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HolidayDataError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"year", "occasion", "extra_day_off"}
    if unknown:
        raise _fail(path, ", ".join(sorted(unknown)), "unknown key")
    year = data.get("year")
    if not isinstance(year, int) or not 1900 <= year <= 2100:
        raise _fail(path, "year", "must be an integer year between 1900 and 2100")
    stem = Path(path).stem
    if stem.isdigit() and int(stem) != year:
        raise _fail(path, "year", f"{year} does not match the file name")
    occasions: dict[str, OccasionOverride] = {}
    for i, occ in enumerate(data.get("occasion", [])):
        where = f"occasion[{i}]"
        if not isinstance(occ, dict):
            raise _fail(path, where, "must be a table")
        extra = set(occ) - {"name", "source", "days_off", "make_up_days"}
        if extra:
            raise _fail(path, where, f"unknown key(s) {', '.join(sorted(extra))}")
        name = occ.get("name")
        if name not in OCCASIONS:
            raise _fail(path, where + ".name", f"must be one of {', '.join(OCCASIONS)}")
        if name in occasions:
            raise _fail(path, where + ".name", f"occasion {name!r} given twice")
        source = occ.get("source")
        if not isinstance(source, str) or not source.strip():
            raise _fail(path, where + ".source", "cite the official document")
        occasions[name] = OccasionOverride(
            occasion=name,
            source=source,
            days_off=_parse_days(
                path, where + ".days_off", occ.get("days_off", []), year, weekend=False
            ),
            make_up_days=_parse_days(
                path, where + ".make_up_days", occ.get("make_up_days", []), year, weekend=True
            ),
        )
    extra_days = _parse_days(
        path, "extra_day_off", data.get("extra_day_off", []), year, weekend=False
    )
    return YearSchedule(year=year, path=path, occasions=occasions, extra_days_off=extra_days)


def load_year_schedules(directory: Path | None = None) -> dict[int, YearSchedule]:
    """Load every ``<year>.toml`` from the packaged data (or from ``directory``)."""
    out: dict[int, YearSchedule] = {}
    if directory is None:
        root = resources.files("lienthong.domain").joinpath("data", "holidays")
        entries = [
            (e.name, e.read_text(encoding="utf-8"))
            for e in root.iterdir()
            if e.name.endswith(".toml")
        ]
        prefix = "lienthong/domain/data/holidays/"
    else:
        entries = [
            (p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.toml"))
        ]
        prefix = f"{directory}/"
    for name, text in sorted(entries):
        schedule = parse_year_schedule(text, prefix + name)
        if schedule.year in out:
            raise HolidayDataError(f"{prefix + name}: year {schedule.year} defined twice")
        out[schedule.year] = schedule
    return out


@dataclass(frozen=True)
class _Year:
    days_off: Mapping[date, str]  # weekdays that are not worked
    make_up_days: Mapping[date, str]  # weekend days that are worked


class HolidayCalendar:
    """Which days of a year are off, by rule and by official schedule; cached per year.

    Thread-safe and cheap to query: the per-year sets are computed once.
    """

    def __init__(self, schedules: Mapping[int, YearSchedule] | None = None) -> None:
        self._schedules = dict(schedules or {})
        self._years: dict[int, _Year] = {}
        self._lock = Lock()

    @cached_property
    def scheduled_years(self) -> tuple[int, ...]:
        return tuple(sorted(self._schedules))

    def schedule(self, year: int) -> YearSchedule | None:
        return self._schedules.get(year)

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            cached = self._compute(year)
            with self._lock:
                self._years[year] = cached
        return cached

    def _compute(self, year: int) -> _Year:
        schedule = self._schedules.get(year)
        overridden = schedule.occasions if schedule else {}
        holidays = [h for h in rule_holidays(year) if h.occasion not in overridden]
        holiday_days = {h.day for h in holidays}
        off: dict[date, str] = {}
        make_up: dict[date, str] = {}
        for occ in overridden.values():
            off.update(occ.days_off)
            make_up.update(occ.make_up_days)
        for h in holidays:
            if h.day.weekday() < _SATURDAY:
                off.setdefault(h.day, h.reason)
        for h in holidays:
            if h.day.weekday() >= _SATURDAY:
                d = h.day + timedelta(days=1)
                while d.weekday() >= _SATURDAY or d in off or d in holiday_days:
                    d += timedelta(days=1)
                off[d] = f"compensatory day off (nghỉ bù) for {h.reason} on {h.day.isoformat()}"
        if schedule:
            for d, reason in schedule.extra_days_off.items():
                off.setdefault(d, reason)
        return _Year(MappingProxyType(off), MappingProxyType(make_up))

    def days_off(self, year: int) -> Mapping[date, str]:
        """Weekdays of ``year`` that are not worked, with the reason."""
        return self._year(year).days_off

    def make_up_days(self, year: int) -> Mapping[date, str]:
        """Weekend days of ``year`` that are worked (ngày làm bù), with the reason."""
        return self._year(year).make_up_days

    def status(self, day: date) -> tuple[bool, str | None]:
        """(working, reason): reason names the holiday, "weekend", or the make-up day."""
        y = self._year(day.year)
        if day.weekday() >= _SATURDAY:
            reason = y.make_up_days.get(day)
            if reason is not None:
                return True, None
            return False, "weekend"
        reason = y.days_off.get(day)
        if reason is not None:
            return False, reason
        return True, None

    def is_working_day(self, day: date) -> bool:
        y = self._year(day.year)
        if day.weekday() >= _SATURDAY:
            return day in y.make_up_days
        return day not in y.days_off


_default: HolidayCalendar | None = None


def default_holiday_calendar() -> HolidayCalendar:
    """The rules plus every packaged yearly schedule (loaded once per process)."""
    global _default
    if _default is None:
        _default = HolidayCalendar(load_year_schedules())
    return _default


def merge_schedules(*groups: Iterable[YearSchedule]) -> dict[int, YearSchedule]:
    """Later groups win: lets a province ship its own schedules over the national ones."""
    out: dict[int, YearSchedule] = {}
    for group in groups:
        for s in group:
            out[s.year] = s
    return out
