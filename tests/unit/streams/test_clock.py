"""The stream clock: event time in replay; in live mode, wall time only once caught up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lienthong.streams.clock import Clock, backlog_after

WALL = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PAST = WALL - timedelta(days=1)


def live() -> Clock:
    return Clock("live", wall=lambda: WALL)


def test_replay_is_the_partitions_watermark_whatever_the_backlog() -> None:
    clock = Clock("replay", wall=lambda: WALL)
    assert clock.now(0) is None
    clock.consumed(0, backlog=0)
    clock.observe(0, PAST)
    clock.observe(0, PAST - timedelta(hours=1))  # an older event does not move it back
    assert clock.now(0) == PAST
    assert clock.now(1) is None


def test_live_caught_up_is_the_wall_clock() -> None:
    clock = live()
    assert clock.now(0) == WALL  # nothing seen yet: the wall clock
    clock.consumed(0, backlog=0)
    clock.observe(0, PAST)
    assert clock.now(0) == WALL


def test_live_behind_a_backlog_is_the_watermark_until_the_last_known_record() -> None:
    clock = live()
    clock.consumed(0, backlog=2)
    clock.observe(0, PAST)
    assert clock.now(0) == PAST and clock.behind(0)
    assert clock.now(1) == WALL  # other partitions are not held back
    clock.consumed(0, backlog=1)
    clock.observe(0, PAST + timedelta(hours=2))
    assert clock.now(0) == PAST + timedelta(hours=2)
    # The last record may be one that is dead-lettered (no event time): still caught up.
    clock.consumed(0, backlog=0)
    assert clock.now(0) == WALL and not clock.behind(0)


def test_live_never_runs_ahead_of_the_wall_clock() -> None:
    clock = live()
    clock.consumed(0, backlog=5)
    clock.observe(0, WALL + timedelta(minutes=3))  # a producer's clock a little ahead
    assert clock.now(0) == WALL


def test_backlog_from_the_fetched_high_watermark() -> None:
    assert backlog_after(offset=9, highwater=15) == 5
    assert backlog_after(offset=14, highwater=15) == 0
    assert backlog_after(offset=20, highwater=15) == 0  # a stale high watermark
    assert backlog_after(offset=3, highwater=None) == 0  # not fetched yet: caught up
