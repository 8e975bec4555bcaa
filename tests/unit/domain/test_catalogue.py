"""Procedure catalogue, agency registry and yearly holiday files: shipped data and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from lienthong.domain.agencies import (
    AgencyDataError,
    AgencyLevel,
    is_valid_agency_code,
    load_agencies,
    parse_agencies,
)
from lienthong.domain.holidays import HolidayDataError, load_year_schedules, parse_year_schedule
from lienthong.domain.procedures import ProcedureDataError, load_procedures, parse_procedures


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("000.00.12.H10", True),
        ("000.20.31.H10", True),
        ("G01.00.00.G12", True),
        ("H10.20", False),
        ("000.00.12.h10", False),
        ("00.00.12.H10", False),
        ("000.00.12.H1", False),
        ("000.00.12.H10 ", False),
    ],
)
def test_agency_code_pattern(code, ok):
    assert is_valid_agency_code(code) is ok


def test_shipped_agency_registry():
    reg = load_agencies()
    assert reg.is_known("000.00.01.H10")
    assert not reg.is_known("999.99.99.H99")
    assert reg.get("999.99.99.H99") is None
    assert len(reg.by_level(AgencyLevel.PROVINCE_CENTER)) == 1
    assert len(reg.by_level("department")) >= 16
    assert len(reg.by_level("district")) >= 2 and len(reg.by_level("commune")) >= 2
    central = " ".join(a.name for a in reg.by_level("central"))
    for word in ("Thuế", "Công an", "Bảo hiểm xã hội", "Kho bạc"):
        assert word in central


def test_shipped_procedure_catalogue():
    cat = load_procedures()
    reg = load_agencies()
    assert len(cat) >= 16
    departments = {
        s.agency for p in cat for s in p.steps if reg[s.agency].level is AgencyLevel.DEPARTMENT
    }
    assert len(departments) >= 16
    land = cat["1.004227"]
    chain = [reg[s.agency].level.value for s in land.steps]
    assert "central" in chain and land.inter_agency
    assert [s.agency for s in land.steps][1:4] == [
        "000.01.11.H10",
        "000.00.60.H10",
        "000.01.11.H10",
    ]
    assert any(p.duration.unit == "h" for p in cat)
    assert any(p.cutoff is not None for p in cat)


AG = '[[agency]]\ncode = "000.00.01.H10"\nname = "Center"\nlevel = "province_center"\n'
GOOD_PROC = """
[[procedure]]
code = "1.000001"
name = "X"
sector = "S"
level = "province"
duration = "5d"
postal_result = true
online = "full"
  [[procedure.step]]
  agency = "000.00.01.H10"
  task = "do"
  share = 100
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('code = "1.000001"', 'code = "1000001"'), "procedure 1000001: code:"),
        (('duration = "5d"', 'duration = "5 weeks"'), "procedure 1.000001: duration:"),
        (('duration = "5d"', 'duration = "5d"\ncutoff = "25:00"'), "procedure 1.000001: cutoff:"),
        (('online = "full"', 'online = "maybe"'), "procedure 1.000001: online:"),
        (("postal_result = true", 'postal_result = "yes"'), "procedure 1.000001: postal_result:"),
        (('agency = "000.00.01.H10"', 'agency = "000.00.99.H10"'), "step[1].agency"),
        (("share = 100", "share = 90"), "shares add up to 90%"),
        (('sector = "S"', 'sector = "S"\ncolour = "red"'), "colour: unknown field"),
    ],
)
def test_procedure_validation_errors_name_file_code_field(change, message):
    agencies = parse_agencies(AG, "agencies.toml")
    text = GOOD_PROC.replace(*change)
    with pytest.raises(ProcedureDataError) as info:
        parse_procedures(text, "procs.toml", agencies)
    assert str(info.value).startswith("procs.toml: ")
    assert message in str(info.value)


def test_good_procedure_parses():
    cat = parse_procedures(GOOD_PROC, "p.toml", parse_agencies(AG, "a.toml"))
    assert cat["1.000001"].steps[0].share == 100


def test_agency_validation_errors():
    with pytest.raises(AgencyDataError, match="a.toml: agency\\[0\\].*code"):
        parse_agencies(AG.replace("000.00.01.H10", "1.2.3"), "a.toml")
    with pytest.raises(AgencyDataError, match="level: must be one of"):
        parse_agencies(AG.replace("province_center", "ministry"), "a.toml")


def test_holiday_schedules_ship_and_cite_sources():
    schedules = load_year_schedules()
    assert {2024, 2025, 2026} <= set(schedules)
    for s in schedules.values():
        for occ in s.occasions.values():
            assert occ.source.strip()
    root = Path(__file__).parents[3] / "lienthong" / "domain" / "data" / "holidays"
    for f in root.glob("*.toml"):
        assert "Thông báo" in f.read_text() or "Văn bản" in f.read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("year = 2030\n", "does not match the file name"),
        ('year = 2031\n[[occasion]]\nname = "xmas"\nsource = "x"\n', "occasion[0].name"),
        ('year = 2031\n[[occasion]]\nname = "tet"\n', "cite the official document"),
        (
            'year = 2031\n[[occasion]]\nname = "tet"\nsource = "x"\n'
            'days_off = [{ date = 2031-01-25, reason = "x" }]\n',
            "weekend day, already off",
        ),
        (
            'year = 2031\n[[occasion]]\nname = "tet"\nsource = "x"\n'
            'make_up_days = [{ date = 2031-01-27, reason = "x" }]\n',
            "is a weekday; make-up days are weekends",
        ),
        (
            'year = 2031\n[[occasion]]\nname = "tet"\nsource = "x"\n'
            'days_off = [{ date = 2032-01-27, reason = "x" }]\n',
            "is not in 2031",
        ),
    ],
)
def test_holiday_file_validation(text, message):
    with pytest.raises(HolidayDataError) as info:
        parse_year_schedule(text, "data/2031.toml")
    assert str(info.value).startswith("data/2031.toml: ")
    assert message in str(info.value)


def test_adding_a_year_is_data_only(tmp_path):
    (tmp_path / "2031.toml").write_text(
        'year = 2031\n[[occasion]]\nname = "national_day"\nsource = "Thông báo số 1/TB-BNV"\n'
        'days_off = [{ date = 2031-09-01, reason = "adjacent" }, '
        '{ date = 2031-09-02, reason = "National Day" }]\n'
    )
    from datetime import date

    from lienthong.domain.calendar import WorkingCalendar
    from lienthong.domain.holidays import HolidayCalendar

    cal = WorkingCalendar(holidays=HolidayCalendar(load_year_schedules(tmp_path)))
    assert not cal.is_working_day(date(2031, 9, 1))
    assert cal.is_working_day(date(2031, 9, 3))  # the rule's choice (Tuesday 2/9 -> 1/9) kept
