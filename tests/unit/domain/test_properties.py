"""Property-based tests of the deadline arithmetic (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lienthong.domain.calendar import VN_TZ, default_calendar
from lienthong.domain.deadlines import Pause, compute_appointment, extend_for_pauses

CAL = default_calendar()

instants = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(VN_TZ)
).map(lambda t: t.replace(microsecond=0))
durations = st.integers(min_value=0, max_value=60 * 8 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(instants, durations)
def test_due_is_a_working_instant(start, duration):
    due = CAL.add_working_time(start, duration)
    assert CAL.is_working_instant(due)


@settings(max_examples=300, deadline=None)
@given(instants, durations)
def test_working_time_between_start_and_due_is_the_duration(start, duration):
    appt = compute_appointment(start, duration, calendar=CAL)
    assert CAL.working_time_between(appt.clock_start, appt.due) == duration
    # Receipt outside hours adds nothing either.
    assert CAL.working_time_between(start, appt.due) == duration


@settings(max_examples=300, deadline=None)
@given(instants, durations, durations)
def test_longer_durations_never_give_earlier_due(start, a, b):
    short, long_ = sorted((a, b))
    assert CAL.add_working_time(start, short) <= CAL.add_working_time(start, long_)


@st.composite
def pauses_before_due(draw):
    start = draw(instants)
    duration = draw(
        st.integers(min_value=1, max_value=30 * 8 * 60).map(lambda m: timedelta(minutes=m))
    )
    due = CAL.add_working_time(start, duration)
    span = int((due - start).total_seconds() // 60)
    pauses = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        offset = draw(st.integers(min_value=0, max_value=max(span - 1, 0)))
        length = draw(st.integers(min_value=0, max_value=10 * 24 * 60))
        p_start = start + timedelta(minutes=offset)
        pauses.append(Pause(p_start, p_start + timedelta(minutes=length)))
    return start, duration, pauses


@settings(max_examples=300, deadline=None)
@given(pauses_before_due())
def test_pauses_shift_due_by_exactly_the_paused_working_time(case):
    start, duration, pauses = case
    without = compute_appointment(start, duration, calendar=CAL)
    with_pauses = compute_appointment(start, duration, pauses=pauses, calendar=CAL)
    shift = CAL.working_time_between(without.due, with_pauses.due)
    assert shift == with_pauses.paused
    # Non-overlapping pauses before the due instant: the shift is their working time.
    merged_total = timedelta(0)
    from lienthong.domain.deadlines import merge_pauses

    for p in merge_pauses(pauses):
        merged_total += CAL.working_time_between(p.start, p.end)
    if all(p.start < without.due for p in pauses):
        assert shift == merged_total
    assert with_pauses.due >= without.due


@settings(max_examples=200, deadline=None)
@given(instants, durations, st.integers(min_value=1, max_value=5))
def test_several_pauses_add_up(start, duration, n):
    duration = duration + timedelta(hours=1)
    due = CAL.add_working_time(start, duration)
    clock = CAL.next_working_instant(start)
    # n one-hour pauses back to back from the clock start, all inside working time.
    pauses = []
    t = clock
    for _ in range(n):
        end = CAL.add_working_time(t, timedelta(minutes=30))
        pauses.append(Pause(t, end))
        t = CAL.add_working_time(end, timedelta(minutes=1))
    extended = extend_for_pauses(due, pauses, CAL)
    assert CAL.working_time_between(due, extended) == timedelta(minutes=30) * n
