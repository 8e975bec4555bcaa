"""The fetch watch (lienthong.streams.fetching) against a consumer a test drives.

The stand-in has what the watch reads of Faust's consumer (assignment, read and committed
offsets, high watermarks, the paused and "buffer full" sets) and the calls it makes (resume,
buffer drop, earliest offsets, seek). The real broker case is the SIGKILL/restart tests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from lienthong.streams.fetching import FetchWatch

PARTIALS = TP("t.stats-partials", 0)
EVENTS = TP("t.dossier-events", 0)
CHANGELOG = TP("app-stats-totals-changelog", 0)


@dataclass
class FakeConsumer:
    highwaters: dict[TP, int | None]
    _read_offset: dict[TP, int | None] = field(default_factory=dict)
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    _paused_partitions: set[TP] = field(default_factory=set)
    _buffered_partitions: set[TP] = field(default_factory=set)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]

    def resume_partitions(self, tps: list[TP]) -> None:
        self._paused_partitions.difference_update(tps)

    def on_buffer_drop(self, tp: TP) -> None:
        self._buffered_partitions.discard(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: 3 if tp == PARTIALS else 0 for tp in tps}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class Channel:
    topics: tuple[str, ...]


@dataclass
class Agent:
    channel: Channel


def agents_of(*topics: str) -> dict[str, Agent]:
    return {f"agent-{name}": Agent(Channel((name,))) for name in topics}


@dataclass
class FakeApp:
    consumer: FakeConsumer
    agents: dict[str, Agent] = field(
        default_factory=lambda: agents_of(PARTIALS.topic, EVENTS.topic)
    )
    rebalancing: bool = False
    in_recovery: bool = False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def checks(watch: FetchWatch, clock: Clock, seconds: float, step: float = 5.0) -> None:
    async def run() -> None:
        elapsed = 0.0
        while elapsed < seconds:
            await watch.check()
            clock.now += step
            elapsed += step

    asyncio.run(run())


def watch_for(consumer: FakeConsumer, clock: Clock, busy: set[TP] | None = None) -> FetchWatch:
    """``busy``: partitions whose agent keeps working (a gap guard's idle time of 0)."""
    busy = busy or set()

    def idle_for(tp: TP) -> float | None:
        return 0.0 if tp in busy else None

    return FetchWatch(FakeApp(consumer), idle_for, monotonic=clock)


def test_a_partition_behind_its_high_watermark_that_does_not_move_is_restarted_once():
    """The SIGKILL/restart flakes: stage 2 never fetched stats-partials[0] again; the tracker's
    dossier-events[0] stayed 106 records behind its commit with everything applied."""
    clock = Clock()
    consumer = FakeConsumer(
        {PARTIALS: None, EVENTS: 80, CHANGELOG: 900},
        _read_offset={PARTIALS: 40, EVENTS: 79},
        _committed_offset={PARTIALS: 12, EVENTS: 40, CHANGELOG: 0},
        _buffered_partitions={PARTIALS},
    )
    watch = watch_for(consumer, clock)
    checks(watch, clock, 30)  # 25 s unchanged: not yet
    assert consumer.seeks == []
    checks(watch, clock, 10)
    # Sought to their committed offsets (the agents are idempotent under redelivery), put back
    # in the fetch set; the changelog is no agent's (table recovery reads it).
    assert sorted(consumer.seeks) == [(EVENTS, 40), (PARTIALS, 12)]
    assert not consumer._buffered_partitions
    checks(watch, clock, 20)
    assert len(consumer.seeks) == 2  # at most once per stall_seconds
    assert set(watch.report()) == {"t.stats-partials[0]", "t.dossier-events[0]"}


def test_a_partition_that_is_caught_up_or_moving_is_left_alone():
    clock = Clock()
    consumer = FakeConsumer(
        {PARTIALS: 13}, _read_offset={PARTIALS: 12}, _committed_offset={PARTIALS: 13}
    )
    watch = watch_for(consumer, clock)
    checks(watch, clock, 60)  # idle and caught up
    consumer.highwaters[PARTIALS] = 500

    async def moving() -> None:
        for offset in range(13, 30):
            consumer._read_offset[PARTIALS] = offset  # a backlog being read
            await watch.check()
            clock.now += 5

    asyncio.run(moving())
    assert consumer.seeks == [] and watch.restarts == 0


def test_never_committed_partitions_are_sought_to_their_log_start():
    clock = Clock()
    consumer = FakeConsumer({PARTIALS: None}, _paused_partitions={PARTIALS})
    watch = watch_for(consumer, clock)
    checks(watch, clock, 40)
    assert consumer.seeks == [(PARTIALS, 3)] and not consumer._paused_partitions


def test_nothing_is_done_while_the_group_rebalances_or_tables_recover():
    for flags in ({"rebalancing": True}, {"in_recovery": True}):
        clock = Clock()
        consumer = FakeConsumer({PARTIALS: None}, _paused_partitions={PARTIALS})
        app: Any = FakeApp(consumer, **flags)
        watch = FetchWatch(app, lambda tp: None, monotonic=clock)
        checks(watch, clock, 120)
        assert consumer.seeks == [] and consumer._paused_partitions == {PARTIALS}


def test_a_partition_whose_agent_is_busy_is_not_stuck():
    clock = Clock()
    consumer = FakeConsumer(
        {EVENTS: 5000}, _read_offset={EVENTS: 99}, _committed_offset={EVENTS: 50}
    )
    watch = watch_for(consumer, clock, busy={EVENTS})
    checks(watch, clock, 120)  # a long batch on a slow broker: offsets still, agent at work
    assert consumer.seeks == []


def test_empty_never_committed_partitions_and_faust_s_own_topics_are_left_alone():
    """The first version took "nothing committed" for "behind": every empty partition, and
    Faust's leader topic, was sought every 30 s."""
    clock = Clock()
    leader = TP("app-__assignor-__leader", 0)
    consumer = FakeConsumer({PARTIALS: 3, EVENTS: 0, leader: 0})  # log starts at 3
    watch = watch_for(consumer, clock)
    checks(watch, clock, 120)
    assert consumer.seeks == []
    assert set(watch.report()) == {"t.stats-partials[0]", "t.dossier-events[0]"}
