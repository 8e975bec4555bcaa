"""The tracker's pending timers (lienthong.streams.timers) as an object a test builds."""

from __future__ import annotations

from datetime import datetime, timedelta

from lienthong.domain.calendar import VN_TZ
from lienthong.streams.timers import PartitionTimers

T = datetime(2025, 3, 3, 8, tzinfo=VN_TZ)


def test_due_timers_come_earliest_first_per_partition_and_leave_the_heap():
    timers = PartitionTimers()
    timers.schedule(0, T + timedelta(hours=2), "HS-B")
    timers.schedule(0, T + timedelta(hours=1), "HS-A")
    timers.schedule(1, T, "HS-OTHER")
    timers.schedule(0, T + timedelta(days=1), "HS-LATER")
    assert list(timers.due(0, None)) == []  # no clock yet: nothing is due
    assert list(timers.due(0, T + timedelta(hours=2))) == ["HS-A", "HS-B"]
    assert list(timers.due(0, T + timedelta(hours=2))) == []
    assert timers.pending(0) == 1 and timers.pending(1) == 1


def test_a_timer_scheduled_while_due_ones_are_taken_is_seen_if_due_too():
    timers = PartitionTimers()
    timers.schedule(0, T, "HS-A")
    seen = []
    for dossier_id in timers.due(0, T + timedelta(hours=1)):
        seen.append(dossier_id)
        if dossier_id == "HS-A":
            timers.schedule(0, T + timedelta(minutes=30), "HS-A2")  # e.g. the next alert
            timers.schedule(0, T + timedelta(hours=3), "HS-A3")
    assert seen == ["HS-A", "HS-A2"] and timers.pending(0) == 1


def test_rebuilding_a_partition_drops_its_timers_and_a_rebalance_forgets_what_was_built():
    timers = PartitionTimers()
    timers.schedule(2, T, "HS-A")
    timers.rebuilding(2)
    timers.rebuilt(2)
    timers.rebuilt(0)
    assert timers.pending(2) == 0 and timers.built() == [0, 2] and timers.is_built(2)
    timers.forget_all()
    assert timers.built() == [] and not timers.is_built(0)


def test_a_rescheduled_dossier_comes_once_at_its_latest_timer_and_a_dropped_one_not_at_all():
    timers = PartitionTimers()
    timers.schedule(0, T, "HS-MOVED")
    timers.schedule(0, T + timedelta(hours=5), "HS-MOVED")  # its alert moved later
    timers.schedule(0, T + timedelta(hours=1), "HS-CLOSED")
    timers.drop(0, "HS-CLOSED")  # finished: nothing pending any more
    assert timers.pending(0) == 1
    assert list(timers.due(0, T + timedelta(hours=2))) == []
    assert list(timers.due(0, T + timedelta(hours=5))) == ["HS-MOVED"]
    assert timers.pending(0) == 0


def test_stale_entries_are_compacted_so_the_heap_stays_bounded_by_the_pending_dossiers():
    timers = PartitionTimers()
    # 20,000 dossiers each rescheduled five times and then closed: a heap that kept every
    # entry would hold 100,000.
    for n in range(20_000):
        dossier = f"HS-{n}"
        for k in range(5):
            timers.schedule(0, T + timedelta(days=30, minutes=k + n), dossier)
        if n % 100:
            timers.drop(0, dossier)
    assert timers.pending(0) == 200
    assert timers.entries(0) <= 2 * 200 + 1024 + 1
    due = list(timers.due(0, T + timedelta(days=60)))
    assert due == [f"HS-{n}" for n in range(0, 20_000, 100)]
