"""The gap guard's tail check (lienthong.streams.gaps) against a consumer a test drives.

The consumer here is a stand-in for the calls the guard makes on Faust's consumer
(assignment, highwater, earliest_offsets, seek, and the paused / "buffer full" sets with the
two calls that empty them); the guard's behaviour against the real
broker is exercised by the SIGKILL/restart tests in tests/integration.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from lienthong.streams.gaps import GapGuard

TOPIC = "t.dossier-events"


@dataclass
class FakeConsumer:
    highwaters: dict[int, int]
    starts: dict[int, int] = field(default_factory=dict)
    seeks: list[tuple[int, int]] = field(default_factory=list)
    earliest_calls: list[list[int]] = field(default_factory=list)
    _read_offset: dict[Any, int] = field(default_factory=dict)
    # Assigned but never fetched: aiokafka has no high watermark for them.
    unfetched: set[int] = field(default_factory=set)
    _paused_partitions: set[TP] = field(default_factory=set)
    _buffered_partitions: set[TP] = field(default_factory=set)

    def assignment(self) -> set[TP]:
        return {TP(TOPIC, p) for p in set(self.highwaters) | self.unfetched}

    def highwater(self, tp: TP) -> int | None:
        if tp.partition in self.unfetched:
            return None
        return self.highwaters[tp.partition]

    def resume_partitions(self, tps: list[TP]) -> None:
        self._paused_partitions.difference_update(tps)

    def on_buffer_drop(self, tp: TP) -> None:
        self._buffered_partitions.discard(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.earliest_calls.append(sorted(tp.partition for tp in tps))
        return {tp: self.starts.get(tp.partition, 0) for tp in tps}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp.partition, offset))
        if tp in self._read_offset:  # as Faust's Consumer.seek
            self._read_offset[tp] = offset


@dataclass
class FakeApp:
    consumer: FakeConsumer
    rebalancing: bool = False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard_for(consumer: FakeConsumer, applied: dict[int, int], clock: Clock) -> GapGuard:
    return GapGuard(
        FakeApp(consumer),
        TOPIC,
        lambda p: applied.get(p, -1),
        idle_seconds=3.0,
        monotonic=clock,
    )


async def settle(guard: GapGuard) -> None:
    for task in list(guard._repairing.values()):
        await task


def test_a_record_just_fetched_after_an_idle_spell_is_not_sought_back():
    """The flake of test_event_with_an_oversize_portal_record…: the tail check ran while the
    next record waited in the agent's batch buffer, sought back, and the record was applied
    (and its portal record sent) twice."""

    async def run() -> None:
        clock = Clock()
        applied = {0: 9}
        consumer = FakeConsumer(highwaters={0: 10})
        guard = guard_for(consumer, applied, clock)
        await guard.check_idle_partitions()  # first sight of the partition: not idle yet
        clock.now += 5
        consumer.highwaters[0] = 11  # offset 10 fetched, not applied yet
        await guard.check_idle_partitions()
        assert guard.gaps_repaired == 0
        clock.now += 0.5
        applied[0] = 10  # the agent gets to it
        await guard.check_idle_partitions()
        clock.now += 5
        await guard.check_idle_partitions()
        await settle(guard)
        assert guard.gaps_repaired == 0 and consumer.seeks == []

    asyncio.run(run())


def test_a_tail_gap_still_there_one_idle_period_later_is_sought_back_once():
    async def run() -> None:
        clock = Clock()
        applied = {0: 9}
        consumer = FakeConsumer(highwaters={0: 12})
        consumer._read_offset[TP(TOPIC, 0)] = 11  # handed to the stream, never applied: dropped
        guard = guard_for(consumer, applied, clock)
        await guard.check_idle_partitions()
        clock.now += 5
        await guard.check_idle_partitions()  # suspected
        clock.now += 2
        await guard.check_idle_partitions()  # not yet an idle period later
        assert guard.gaps_repaired == 0
        clock.now += 2
        await guard.check_idle_partitions()  # confirmed
        await settle(guard)
        assert guard.gaps_repaired == 1 and consumer.seeks[0] == (0, 10)

    asyncio.run(run())


def test_a_gap_that_changes_is_a_stream_at_work_not_a_drop():
    async def run() -> None:
        clock = Clock()
        applied = {0: 9}
        consumer = FakeConsumer(highwaters={0: 12})
        guard = guard_for(consumer, applied, clock)
        await guard.check_idle_partitions()
        for hw in range(13, 20):
            clock.now += 4
            consumer.highwaters[0] = hw  # the producer keeps writing, the agent keeps up later
            await guard.check_idle_partitions()
        assert guard.gaps_repaired == 0

    asyncio.run(run())


def test_log_starts_of_never_applied_partitions_are_asked_once_in_one_request():
    """Every check used to ask the broker for each never-applied partition's log start, one
    partition at a time: ~2 s each on a loaded machine, so the 2 s repair timer of a worker
    with five idle partitions ran for 10 s, every time."""

    async def run() -> None:
        clock = Clock()
        consumer = FakeConsumer(highwaters={p: 0 for p in range(6)})
        guard = guard_for(consumer, {0: 4}, clock)
        consumer.highwaters[0] = 5
        await guard.check_idle_partitions()
        for _ in range(10):
            clock.now += 4
            await guard.check_idle_partitions()
        assert consumer.earliest_calls == [[1, 2, 3, 4, 5]]
        clock.now += 60  # then refreshed, still in one request
        await guard.check_idle_partitions()
        assert consumer.earliest_calls[1:] == [[1, 2, 3, 4, 5]]
        assert guard.gaps_repaired == 0

    asyncio.run(run())


def test_a_first_record_past_the_log_start_is_a_gap_even_with_a_cached_start():
    async def run() -> None:
        clock = Clock()
        consumer = FakeConsumer(highwaters={0: 10}, starts={0: 3})
        guard = guard_for(consumer, {}, clock)

        @dataclass
        class Message:
            partition: int
            offset: int
            tp: TP = TP(TOPIC, 0)

        assert await guard.admit(Message(0, 3)) is True
        assert await guard.admit(Message(0, 5)) is False  # 3 and 4 never arrived
        await settle(guard)
        assert consumer.seeks[0] == (0, 3)
        consumer.starts[0] = 5  # retention removed 3 and 4: the cached start is stale
        assert await guard.admit(Message(0, 5)) is True

    asyncio.run(run())


def test_a_backlog_not_yet_handed_to_the_stream_is_not_sought_back():
    """The month replay's documents agent: its partitions had a backlog the worker had not got
    to (Faust's read offset at the applied one), the tail check took it for a dropped tail and
    sought back every few seconds, and each seek threw away what had been fetched."""

    async def run() -> None:
        clock = Clock()
        applied = {0: 9, 1: -1}
        consumer = FakeConsumer(highwaters={0: 5000, 1: 800})
        consumer._read_offset[TP(TOPIC, 0)] = 9
        guard = guard_for(consumer, applied, clock)
        for _ in range(6):  # 20 s without a record handed over: a backlog on its way
            await guard.check_idle_partitions()
            clock.now += 4
        await settle(guard)
        assert guard.gaps_repaired == 0 and consumer.seeks == []
        consumer._read_offset[TP(TOPIC, 0)] = 10  # now handed over and not applied: dropped
        for _ in range(2):
            await guard.check_idle_partitions()
            clock.now += 4
        await settle(guard)
        assert consumer.seeks == [(0, 10)]  # partition 1 is still a backlog (28 s < 30 s)

    asyncio.run(run())


def test_a_backlog_nothing_is_handed_over_from_for_long_is_a_stalled_fetch():
    """After a restart under load a ready worker once fetched nothing for a minute: a backlog
    with no record handed over for ``stall_seconds`` is sought back (once per stall)."""

    async def run() -> None:
        clock = Clock()
        applied = {0: 9}
        consumer = FakeConsumer(highwaters={0: 40})
        guard = guard_for(consumer, applied, clock)
        await guard.check_idle_partitions()
        for _ in range(7):
            clock.now += 4
            await guard.check_idle_partitions()
        assert consumer.seeks == []  # 28 s: still waiting
        for _ in range(2):
            clock.now += 4
            await guard.check_idle_partitions()
        await settle(guard)
        assert consumer.seeks == [(0, 10)]
        for _ in range(4):  # the seek counts as activity: not again at once
            clock.now += 4
            await guard.check_idle_partitions()
        await settle(guard)
        assert consumer.seeks == [(0, 10)]

    asyncio.run(run())


def test_a_partition_never_fetched_is_left_to_the_fetch_watch_with_its_idle_time():
    """No high watermark: the guard cannot tell a gap (lienthong.streams.fetching restarts the
    fetch, asking the guard how long the agent has been idle) but reports what it knows."""

    async def run() -> None:
        clock = Clock()
        applied = {0: 41, 1: 7}
        consumer = FakeConsumer(highwaters={1: 8}, unfetched={0})
        tp0 = TP(TOPIC, 0)
        consumer._buffered_partitions.add(tp0)
        guard = guard_for(consumer, applied, clock)
        await guard.check_idle_partitions()
        for _ in range(10):
            clock.now += 4
            await guard.check_idle_partitions()
        await settle(guard)
        assert consumer.seeks == [] and guard.idle_for(0) == 40
        guard.busy()
        assert guard.idle_for(0) == 0
        state = guard.fetch_state(tp0)
        assert state["applied_offset"] == 41 and state["buffer_full"] and not state["paused"]
        report = guard.partitions_report()
        assert set(report) == {f"{TOPIC}[0]", f"{TOPIC}[1]"}
        assert report[f"{TOPIC}[1]"]["applied_offset"] == 7

    asyncio.run(run())


def test_a_partition_left_out_of_the_fetch_set_is_put_back_with_its_tail_seek():
    """A tail gap whose partition Faust had left in its "buffer full" set: seeking alone would
    not fetch it again."""

    async def run() -> None:
        clock = Clock()
        consumer = FakeConsumer(highwaters={0: 12})
        consumer._read_offset[TP(TOPIC, 0)] = 11
        consumer._buffered_partitions.add(TP(TOPIC, 0))
        guard = guard_for(consumer, {0: 9}, clock)
        for _ in range(4):
            await guard.check_idle_partitions()
            clock.now += 4
        await settle(guard)
        assert consumer.seeks == [(0, 10)] and not consumer._buffered_partitions

    asyncio.run(run())
