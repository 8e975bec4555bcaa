"""``lienthong calendar``: ask the working-day calendar and the lunar converter."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from lienthong.cli.main import UsageError
from lienthong.domain.calendar import default_calendar
from lienthong.domain.lunar import LunarDateError, to_lunar


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a valid date (YYYY-MM-DD)") from None


def _emit(obj: dict[str, Any]) -> int:
    print(json.dumps(obj, ensure_ascii=False))
    return 0


def _day(args: argparse.Namespace) -> int:
    d = _date(args.date)
    try:
        status = default_calendar().day_status(d)
    except LunarDateError as exc:
        raise UsageError(str(exc)) from None
    return _emit({"date": d.isoformat(), "working": status.working, "reason": status.reason})


def _holidays(args: argparse.Namespace) -> int:
    try:
        year = int(args.year)
    except ValueError:
        raise UsageError(f"{args.year!r} is not a year") from None
    if not 1900 <= year <= 2100:
        raise UsageError(f"year {year} is outside 1900-2100")
    cal = default_calendar()
    days = [
        {"date": s.day.isoformat(), "weekday": s.day.strftime("%A"), "reason": s.reason}
        for s in cal.non_working_weekdays(year)
    ]
    make_up = [
        {"date": d.isoformat(), "reason": r}
        for d, r in sorted(cal.holidays.make_up_days(year).items())
    ]
    schedule = cal.holidays.schedule(year)
    return _emit(
        {
            "year": year,
            "official_schedule": schedule is not None,
            "non_working_weekdays": days,
            "make_up_working_days": make_up,
        }
    )


def _lunar(args: argparse.Namespace) -> int:
    d = _date(args.date)
    try:
        lunar = to_lunar(d)
    except LunarDateError as exc:
        raise UsageError(str(exc)) from None
    return _emit(
        {
            "date": d.isoformat(),
            "lunar_year": lunar.year,
            "lunar_month": lunar.month,
            "lunar_day": lunar.day,
            "leap_month": lunar.leap,
        }
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calendar", help="working days, holidays and lunar dates (Vietnam, UTC+7)"
    )
    sub = parser.add_subparsers(dest="calendar_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("day", help="is a date a working day, and why not")
    p.add_argument("date", help="YYYY-MM-DD")
    p.set_defaults(func=_day)
    p = sub.add_parser("holidays", help="non-working weekdays of a year, with reasons")
    p.add_argument("year", help="YYYY")
    p.set_defaults(func=_holidays)
    p = sub.add_parser("lunar", help="Vietnamese lunar date of a solar date")
    p.add_argument("date", help="YYYY-MM-DD")
    p.set_defaults(func=_lunar)
