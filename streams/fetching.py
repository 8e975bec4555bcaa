"""What the consumer knows of a partition it should fetch, and restarting a fetch that stopped.

Seen after a SIGKILL and restart under load: the restarted worker was ready, fetched its other
partitions to the end, and never fetched one partition again (``dossier-events[0]`` once,
``stats-partials[0]`` once), with no error logged. faust-streaming keeps its own fetch set
(assigned minus paused minus "buffer full") on top of aiokafka's, and clears its stream queues
on every flow-control resume; a partition can be left outside that set, or with records it
read but never handed over, with nothing that would ever fetch it again.

A record Faust read and cleared from its queue before the agent got it is never acknowledged,
and Faust commits only the first unbroken run of acknowledged offsets: that partition's commit
stops there for good. The gap guards (:mod:`lienthong.streams.gaps`) re-read what lies past
the last applied offset, but not a record the agent had already applied before a crash and
that Faust dropped on its redelivery: the partition's effects are all in, its lag never
reaches 0, and a restart re-reads everything since.

:class:`FetchWatch` looks at every source partition: one with records past its committed
offset, whose read and committed offsets have not moved for ``stall_seconds`` while its agent
was idle, is logged with :func:`fetch_state`, put back in the fetch set and sought to its
committed offset. Every agent is idempotent under redelivery (the tracker recognises repeats
and re-emits them identically, the others skip them), so the only cost is the re-read.

The state is read from private attributes of faust-streaming 0.15 and aiokafka 0.12, read-only
and best effort: a key that cannot be read is left out, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lienthong.logs import get_logger

log = get_logger(__name__)


def fetch_state(consumer: Any, tp: Any) -> dict[str, Any]:
    """Faust's and aiokafka's view of ``tp``: offsets, high watermark, fetch set membership."""
    state: dict[str, Any] = {
        "read_offset": getattr(consumer, "_read_offset", {}).get(tp),
        "committed_offset": getattr(consumer, "_committed_offset", {}).get(tp),
        "paused": tp in getattr(consumer, "_paused_partitions", ()),
        "buffer_full": tp in getattr(consumer, "_buffered_partitions", ()),
        "active": tp in (getattr(consumer, "_active_partitions", None) or ()),
    }
    try:
        from aiokafka import TopicPartition

        client = consumer._thread._ensure_consumer()
        assignment = client._fetcher._subscriptions.subscription.assignment
        tp_state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    except Exception:
        return state
    if tp_state is None:
        state["fetch_assigned"] = False
        return state
    state.update(
        fetch_position=tp_state._position,
        fetch_highwater=tp_state.highwater,
        fetch_paused=tp_state.paused,
        fetch_awaiting_reset=tp_state.awaiting_reset,
    )
    return state


def resume_fetching(consumer: Any, tp: Any) -> None:
    """Take ``tp`` out of Faust's paused and "buffer full" sets; both leave it unfetched.

    Only for a partition nothing has come from for a long spell outside a rebalance: its
    stream buffer is not full, and recovery has long resumed it.
    """
    where = {"topic": tp.topic, "partition": tp.partition}
    if tp in getattr(consumer, "_paused_partitions", ()):
        log.warning("source_partition_resumed", was="paused", **where)
        consumer.resume_partitions([tp])
    if tp in getattr(consumer, "_buffered_partitions", ()):
        log.warning("source_partition_resumed", was="buffer_full", **where)
        consumer.on_buffer_drop(tp)


def highwater_of(consumer: Any, tp: Any) -> int | None:
    try:
        return consumer.highwater(tp)
    except Exception:  # not assigned any more, or no fetch answer
        return None


class FetchWatch:
    """Restart the fetch of source partitions that stopped (see module doc).

    ``idle_for(tp)`` is how long the partition's agent has had nothing to do with it (a gap
    guard's view), or None when no guard knows: a partition whose agent is busy is not stuck.
    """

    def __init__(
        self,
        app: Any,
        idle_for: Callable[[Any], float | None] = lambda tp: None,
        stall_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.idle_for = idle_for
        self.stall_seconds = stall_seconds
        self._now = monotonic
        # tp -> ((read offset, committed offset), since when unchanged)
        self._seen: dict[Any, tuple[tuple[Any, Any], float]] = {}
        # tp -> log start offset, asked for a partition nothing was ever committed of
        self._log_starts: dict[Any, int] = {}
        self.restarts = 0

    def source_topics(self) -> set[str]:
        """The topics the app's agents consume (not the changelogs, not Faust's own)."""
        return {name for agent in self.app.agents.values() for name in agent.channel.topics}

    def watched(self) -> list[Any]:
        consumer = self.app.consumer
        if consumer is None:
            return []
        sources = self.source_topics()
        return sorted(tp for tp in consumer.assignment() if tp.topic in sources)

    async def check(self) -> None:
        consumer = self.app.consumer
        # Table recovery pauses the stream partitions on purpose (Faust's rebalancing flag
        # covers it; in_recovery is asked too, in case a version sets them apart).
        if consumer is None or self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return
        now = self._now()
        watched = self.watched()
        for tp in list(self._seen):
            if tp not in watched:
                del self._seen[tp]
        for tp in watched:
            marker = (
                getattr(consumer, "_read_offset", {}).get(tp),
                getattr(consumer, "_committed_offset", {}).get(tp),
            )
            seen = self._seen.get(tp)
            if seen is None or seen[0] != marker:
                self._seen[tp] = (marker, now)
                continue
            if now - seen[1] < self.stall_seconds:
                continue
            committed = marker[1]
            highwater = highwater_of(consumer, tp)
            if highwater is not None:
                if committed is None:  # nothing committed yet: behind its log start?
                    committed = await self._log_start(consumer, tp)
                if committed is None or highwater <= committed:
                    continue
            idle = self.idle_for(tp)
            if idle is not None and idle < self.stall_seconds:
                continue  # its agent is working through what it was given
            self._seen[tp] = (marker, now)  # at most once per stall
            await self._restart(consumer, tp, committed, highwater)

    async def _log_start(self, consumer: Any, tp: Any) -> int | None:
        if tp not in self._log_starts:
            try:
                starts = await consumer.earliest_offsets(tp)
            except Exception:  # the broker is slow or away: ask at the next check
                return None
            self._log_starts[tp] = int(starts.get(tp, 0) or 0)
        return self._log_starts[tp]

    async def _restart(self, consumer: Any, tp: Any, committed: Any, highwater: Any) -> None:
        if committed is None:
            committed = await self._log_start(consumer, tp)
            if committed is None:
                return
        log.warning(
            "source_partition_not_fetched",
            topic=tp.topic,
            partition=tp.partition,
            highwater=highwater,
            seek_to=committed,
            fetch=fetch_state(consumer, tp),
        )
        self.restarts += 1
        resume_fetching(consumer, tp)
        await consumer.seek(tp, committed)

    def report(self) -> dict[str, dict[str, Any]]:
        consumer = self.app.consumer
        return {f"{tp.topic}[{tp.partition}]": fetch_state(consumer, tp) for tp in self.watched()}
