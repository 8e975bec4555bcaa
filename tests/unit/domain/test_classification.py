from __future__ import annotations

from datetime import timedelta

import pytest

from lienthong.domain.classification import Outcome, classify, end_instant, on_time_rate
from lienthong.domain.deadlines import Pause

from .conftest import vn

H = timedelta(hours=1)
RECEIVED = vn(2025, 3, 3, 8)
DUE = vn(2025, 3, 7, 17)  # Friday closing


@pytest.mark.parametrize(
    ("finished", "outcome"),
    [
        (vn(2025, 3, 7, 17), Outcome.ON_TIME),  # exactly at the appointment
        (vn(2025, 3, 7, 14), Outcome.ON_TIME),  # 3 h early: less than a session
        (vn(2025, 3, 7, 13), Outcome.EARLY),  # a full 4 h session to spare
        (vn(2025, 3, 7, 17, 1), Outcome.LATE),
        (vn(2025, 3, 8, 9), Outcome.LATE),  # Saturday, after the due instant
    ],
)
def test_with_appointment(finished, outcome):
    assert classify(received=RECEIVED, finished=finished, due=DUE).outcome is outcome


def test_supplement_time_does_not_count():
    pause = Pause(vn(2025, 3, 4, 8), vn(2025, 3, 5, 8))  # 8 working hours
    r = classify(received=RECEIVED, finished=vn(2025, 3, 10, 16), due=DUE, pauses=[pause])
    assert r.outcome is Outcome.ON_TIME
    assert r.effective_due == vn(2025, 3, 10, 17)
    # Mon 08:00-17:00 7.5 h + Tue-Fri 32 h + Mon 07:30-16:00 7 h, less the 8 h pause.
    assert r.working_time_used == 38.5 * H


def test_more_than_one_supplement_is_late():
    pauses = [
        Pause(vn(2025, 3, 4, 8), vn(2025, 3, 4, 9)),
        Pause(vn(2025, 3, 5, 8), vn(2025, 3, 5, 9)),
    ]
    r = classify(received=RECEIVED, finished=vn(2025, 3, 5, 10), due=DUE, pauses=pauses)
    assert r.outcome is Outcome.LATE
    assert "supplement" in r.reason
    assert (
        classify(received=RECEIVED, finished=vn(2025, 3, 4), due=DUE, supplement_requests=2).outcome
        is Outcome.LATE
    )


def test_without_appointment_uses_legal_maximum():
    legal = 5 * 8 * H
    assert (
        classify(received=RECEIVED, finished=vn(2025, 3, 7, 16), legal_max=legal).outcome
        is Outcome.ON_TIME
    )
    assert (
        classify(received=RECEIVED, finished=vn(2025, 3, 6, 17), legal_max=legal).outcome
        is Outcome.EARLY
    )
    assert (
        classify(received=RECEIVED, finished=vn(2025, 3, 10, 9), legal_max=legal).outcome
        is Outcome.LATE
    )
    with pytest.raises(ValueError):
        classify(received=RECEIVED, finished=vn(2025, 3, 6))


def test_early_margin_is_configurable():
    r = classify(received=RECEIVED, finished=vn(2025, 3, 7, 14), due=DUE, early_margin=2 * H)
    assert r.outcome is Outcome.EARLY


def test_end_instant_is_the_first():
    assert end_instant(finished=vn(2025, 3, 5), returned=vn(2025, 3, 6)) == vn(2025, 3, 5)
    assert end_instant(stopped=vn(2025, 3, 4), returned=vn(2025, 3, 6)) == vn(2025, 3, 4)
    assert end_instant() is None


def test_on_time_rate():
    assert on_time_rate({Outcome.EARLY: 1, Outcome.ON_TIME: 2, Outcome.LATE: 1}) == 0.75
    assert on_time_rate({"late": 0}) is None
    # Lào Cai departments (brief §6): 55,697 on time of 56,356 resolved.
    assert round(on_time_rate({"on_time": 55_697, "late": 659}), 4) == 0.9883
