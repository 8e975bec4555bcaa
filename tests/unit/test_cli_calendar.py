"""CLI tests for ``lienthong calendar`` and ``lienthong deadline``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lienthong.cli.main import main


def run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_calendar_day_holiday(capsys):
    code, out, _ = run(capsys, "calendar", "day", "2025-01-29")
    assert code == 0
    assert out["date"] == "2025-01-29" and out["working"] is False
    assert "Tết" in out["reason"]


def test_calendar_day_weekend_and_working(capsys):
    assert run(capsys, "calendar", "day", "2025-03-08")[1] == {
        "date": "2025-03-08",
        "working": False,
        "reason": "weekend",
    }
    assert run(capsys, "calendar", "day", "2025-04-26")[1]["working"] is True  # make-up Saturday
    assert run(capsys, "calendar", "day", "2025-03-03")[1]["reason"] is None


def test_calendar_holidays(capsys):
    code, out, _ = run(capsys, "calendar", "holidays", "2024")
    assert code == 0
    days = {d["date"]: d["reason"] for d in out["non_working_weekdays"]}
    assert {"2024-01-01", "2024-02-08", "2024-04-29", "2024-09-03"} <= set(days)
    assert out["make_up_working_days"][0]["date"] == "2024-05-04"


def test_calendar_lunar(capsys):
    code, out, _ = run(capsys, "calendar", "lunar", "1985-01-21")
    assert code == 0
    assert out["lunar_year"] == 1985 and out["lunar_month"] == 1 and out["lunar_day"] == 1
    assert out["leap_month"] is False
    assert run(capsys, "calendar", "lunar", "2023-03-22")[1]["leap_month"] is True


def test_deadline_due_with_duration_and_cutoff(capsys):
    code, out, _ = run(
        capsys, "deadline", "due", "--received", "2025-03-03T15:30:00+07:00",
        "--duration", "1d", "--cutoff", "15:00",
    )  # fmt: skip
    assert code == 0
    assert out == {"clock_start": "2025-03-04T07:30:00+07:00", "due": "2025-03-04T17:00:00+07:00"}


def test_deadline_due_with_procedure_and_pause(capsys):
    code, out, _ = run(
        capsys, "deadline", "due", "--received", "2025-03-03T08:00:00+07:00",
        "--procedure", "1.004227",
        "--pause", "2025-03-04T07:30:00+07:00/2025-03-05T07:30:00+07:00",
    )  # fmt: skip
    assert code == 0
    # 10 working days from Mon 08:00 is Mon 17/3 08:00; the 8 h pause moves it a day.
    assert out["due"] == "2025-03-18T08:00:00+07:00"


def test_deadline_classify(capsys):
    code, out, _ = run(
        capsys, "deadline", "classify", "--received", "2025-03-03T08:00:00+07:00",
        "--due", "2025-03-07T17:00:00+07:00", "--finished", "2025-03-10T09:00:00+07:00",
    )  # fmt: skip
    assert code == 0
    assert out["outcome"] == "late"
    assert out["working_hours_used"] == 41.0
    assert out["reason"]
    code, out, _ = run(
        capsys, "deadline", "classify", "--received", "2025-03-03T08:00:00+07:00",
        "--due", "2025-03-07T17:00:00+07:00", "--finished", "2025-03-05T09:00:00+07:00",
        "--supplements", "2",
    )  # fmt: skip
    assert out["outcome"] == "late"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calendar", "day", "2025-02-30"], "not a valid date"),
        (["calendar", "lunar", "2025-13-01"], "not a valid date"),
        (["calendar", "holidays", "abcd"], "not a year"),
        (["calendar", "day", "0001-01-01"], "supported for"),
        (
            [
                "deadline",
                "due",
                "--received",
                "2025-03-03T08:00:00+07:00",
                "--procedure",
                "9.999999",
            ],
            "unknown procedure",
        ),
        (
            [
                "deadline",
                "due",
                "--received",
                "2025-03-03T08:00:00+07:00",
                "--duration",
                "1d",
                "--pause",
                "2025-03-05T08:00:00+07:00/2025-03-04T08:00:00+07:00",
            ],
            "ends before it starts",
        ),
        (
            ["deadline", "due", "--received", "2025-03-03T08:00:00", "--duration", "1d"],
            "no time zone",
        ),
        (
            ["deadline", "due", "--received", "2025-03-03T08:00:00+07:00", "--duration", "3w"],
            "bad duration",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("lienthong: ")


def test_console_script_bad_date_exits_non_zero_with_one_line():
    script = shutil.which("lienthong") or str(Path(sys.executable).parent / "lienthong")
    proc = subprocess.run(
        [script, "calendar", "day", "2025-02-30"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "2025-02-30" in lines[0]
