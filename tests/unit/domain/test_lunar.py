"""The lunar converter against published Tết dates, and UTC+7 vs UTC+8 differences."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from lienthong.domain.lunar import (
    LunarDate,
    LunarDateError,
    from_lunar,
    hung_kings_day,
    lunar_new_year,
    to_lunar,
)

_DATA = Path(__file__).parent / "data" / "tet_dates.csv"


def _tet_rows() -> list[tuple[int, date, str]]:
    lines = [ln for ln in _DATA.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return [
        (int(r["year"]), date.fromisoformat(r["tet"]), r["source"]) for r in csv.DictReader(lines)
    ]


ROWS = _tet_rows()


def test_table_covers_1900_to_2100_with_independent_years():
    years = [y for y, _, _ in ROWS]
    assert years == list(range(1900, 2101))
    independent = [y for y, _, src in ROWS if src != "generated"]
    assert len(independent) >= 100
    assert {1968, 1969, 1985, 2007} <= set(independent)


@pytest.mark.parametrize(("year", "tet", "source"), ROWS, ids=[str(r[0]) for r in ROWS])
def test_tet_matches_published_table(year, tet, source):
    assert lunar_new_year(year) == tet, source
    assert to_lunar(tet) == LunarDate(year, 1, 1, False)


@pytest.mark.parametrize(
    ("year", "vietnam", "china"),
    [
        (1968, date(1968, 1, 29), date(1968, 1, 30)),
        (1969, date(1969, 2, 16), date(1969, 2, 17)),
        (1985, date(1985, 1, 21), date(1985, 2, 20)),
        (2007, date(2007, 2, 17), date(2007, 2, 18)),
        (2030, date(2030, 2, 2), date(2030, 2, 3)),
    ],
)
def test_vietnam_time_zone_differs_from_china(year, vietnam, china):
    assert lunar_new_year(year) == vietnam
    # Same algorithm at UTC+8 gives the Chinese date: the difference is the time zone only.
    assert lunar_new_year(year, tz=8.0) == china


@pytest.mark.parametrize(
    ("solar", "lunar"),
    [
        (date(2023, 3, 22), LunarDate(2023, 2, 1, True)),  # tháng 2 nhuận Quý Mão
        (date(2020, 5, 23), LunarDate(2020, 4, 1, True)),
        (date(2025, 7, 25), LunarDate(2025, 6, 1, True)),
        (date(2033, 12, 22), LunarDate(2033, 11, 1, True)),  # the "2033 problem" year
        (date(2024, 2, 9), LunarDate(2023, 12, 30)),  # 30 Tết Quý Mão
        (date(2025, 1, 28), LunarDate(2024, 12, 29)),  # no 30th in Giáp Thìn's last month
        (date(2026, 2, 16), LunarDate(2025, 12, 29)),
        (date(2024, 9, 17), LunarDate(2024, 8, 15)),  # Tết Trung thu 2024
    ],
)
def test_known_lunar_dates_and_leap_months(solar, lunar):
    assert to_lunar(solar) == lunar
    assert from_lunar(lunar.year, lunar.month, lunar.day, lunar.leap) == solar


@pytest.mark.parametrize(
    ("year", "day"),
    [(2024, date(2024, 4, 18)), (2025, date(2025, 4, 7)), (2026, date(2026, 4, 26))],
)
def test_hung_kings_day(year, day):
    assert hung_kings_day(year) == day


def test_round_trip_every_day_of_two_centuries_sampled():
    d = date(1900, 3, 1)
    while d < date(2100, 12, 1):
        lunar = to_lunar(d)
        assert from_lunar(lunar.year, lunar.month, lunar.day, lunar.leap) == d
        d = d.fromordinal(d.toordinal() + 13)


def test_absent_lunar_dates_are_errors():
    with pytest.raises(LunarDateError, match="no leap month"):
        from_lunar(2024, 2, 1, leap=True)
    with pytest.raises(LunarDateError, match="has 29 days"):
        from_lunar(2024, 12, 30)
    with pytest.raises(LunarDateError):
        from_lunar(2024, 13, 1)
