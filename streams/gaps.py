"""Never lose a record that Faust dropped around a rebalance.

faust-streaming 0.15.3 can drop a record it has already fetched when flow control is
suspended and resumed during a rebalance or table recovery: the record is cleared from the
stream's queue, but the consumer's read offset has moved past it, so it is not fetched again
in this session; and because Faust commits the first consecutive run of acknowledged offsets,
a later acknowledged record in the same partition can commit past it for good. (We saw it in
our SIGKILL/restart tests; faust-streaming's history has several fixes for variants of it.)

Our agents keep, in the same table record as their state, the offset of the last record they
applied per source partition. That makes the gap visible and fixable here, without trusting
Faust's bookkeeping:

- a record whose offset is not ``applied + 1`` reveals a gap: it is not applied, and the
  consumer is sought back to ``applied + 1`` (Faust's ``Consumer.seek`` also resets its read
  offset, so the missing records are delivered again, in order);
- a record at or below ``applied`` is a redelivery and is skipped (the effects are already in
  the state);
- a gap at the end of a partition shows no later record, so a periodic check compares the
  partition's high watermark with ``applied`` and seeks back when the stream has been idle,
  Faust has handed the stream a record past ``applied`` (its read offset: a record not handed
  over yet is a backlog, not a drop, unless nothing has come for ``stall_seconds``: a stalled
  fetch) and the same gap is still there one idle period later.
  (Seen only once, it is usually a record that has just been fetched and waits in the agent's
  batch buffer: seeking then made the agent apply it twice and re-emit its outputs.)
- a partition the consumer has stopped fetching (no high watermark), or whose commit is stuck
  below the applied offset, is :mod:`lienthong.streams.fetching`'s: it asks :meth:`idle_for`.

This relies on offsets being contiguous in the source topics, which holds for the bus's topics
(delete retention, no transactional producers). Compacted or transactional sources would need
a different check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lienthong.logs import get_logger
from lienthong.streams.fetching import fetch_state, highwater_of, resume_fetching

log = get_logger(__name__)


class GapGuard:
    """Per-agent gatekeeper deciding whether a source record is applied now.

    ``applied_offset(partition)`` returns the last applied offset of a source partition as
    recorded in the agent's table (-1 when nothing has been applied yet).
    """

    def __init__(
        self,
        app: Any,
        source_topic: str,
        applied_offset: Callable[[int], int],
        idle_seconds: float = 3.0,
        skip_redelivered: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        log_start_ttl_s: float = 60.0,
        stall_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.source_topic = source_topic
        self.applied_offset = applied_offset
        self.idle_seconds = idle_seconds
        # A backlog Faust has not handed over at all for this long is a stalled fetch, not a
        # slow agent: sought back once too (seen once after a restart under load: the worker
        # was ready and fetched nothing for a minute).
        self.stall_seconds = stall_seconds
        # False when the agent recognises repeats itself and must see them (e.g. to re-emit
        # outputs a crash may have lost); the guard then only repairs gaps.
        self.skip_redelivered = skip_redelivered
        self._now = monotonic
        self._last_activity: dict[int, float] = {}
        self._repairing: dict[int, asyncio.Task[None]] = {}
        # partition -> (applied offset, high watermark, first seen): a tail gap not yet confirmed.
        self._suspects: dict[int, tuple[int, int, float]] = {}
        # partition -> (log start offset, fetched at): asking the broker costs a round trip
        # through Faust's consumer thread (~2 s per partition on a loaded machine, which made
        # every check of a worker with idle partitions overrun its 2 s timer), and it only
        # moves when retention deletes old segments.
        self._log_starts: dict[int, tuple[int, float]] = {}
        self._log_start_ttl = log_start_ttl_s
        self.gaps_repaired = 0

    async def admit(self, message: Any) -> bool:
        """True when ``message`` is the next record to apply for its partition."""
        partition, offset = message.partition, message.offset
        self._last_activity[partition] = self._now()
        applied = self.applied_offset(partition)
        if offset <= applied:
            if not self.skip_redelivered:
                return True
            log.info("redelivered_record_skipped", partition=partition, offset=offset)
            return False
        if applied >= 0:
            expected = applied + 1
        else:
            expected = await self._log_start(message.tp)
            if offset > expected:  # retention may have moved the start since we asked
                expected = await self._log_start(message.tp, fresh=True)
        if offset > expected:
            log.warning(
                "record_gap_repaired",
                topic=self.source_topic,
                partition=partition,
                expected_offset=expected,
                got_offset=offset,
            )
            self._schedule_seek(message.tp, expected)
            return False
        return True

    def _schedule_seek(self, tp: Any, offset: int) -> None:
        """Seek outside the delivery path, and again if Faust overwrote the read offset.

        Faust sets its read offset right after handing a record to the stream; a seek made
        while the stream handles that record can be overwritten by it, and the re-read record
        would then be dropped as "already read". Seeking from a separate task after a short
        pause, and checking the read offset afterwards, avoids that race.
        """
        running = self._repairing.get(tp.partition)
        if running is not None and not running.done():
            return
        self.gaps_repaired += 1
        self._repairing[tp.partition] = asyncio.ensure_future(self._seek(tp, offset))

    async def _seek(self, tp: Any, offset: int) -> None:
        consumer = self.app.consumer
        for _attempt in range(5):
            await asyncio.sleep(0.2)
            await consumer.seek(tp, offset)
            await asyncio.sleep(0.2)
            read = getattr(consumer, "_read_offset", {}).get(tp)
            if read is None or read <= offset or self.applied_offset(tp.partition) >= offset:
                return
        log.error("record_gap_seek_failed", partition=tp.partition, offset=offset)

    def busy(self) -> None:
        """The agent is working through what it was given: no partition is idle.

        An agent that applies records in batches, and waits for the broker to acknowledge a
        batch's outputs, can leave a partition without a new record for longer than
        ``idle_seconds`` while it is simply behind (its next records are fetched or on their
        way). Seeking back then would only make it read them twice. A dropped tail is still
        found once the stream really goes idle.
        """
        now = self._now()
        for partition in self._last_activity:
            self._last_activity[partition] = now

    async def check_idle_partitions(self) -> None:
        """Seek back partitions whose tail was dropped (no later record reveals the gap)."""
        consumer = self.app.consumer
        if consumer is None or self.app.rebalancing:
            return
        now = self._now()
        idle = []
        for tp in consumer.assignment():
            if tp.topic != self.source_topic:
                continue
            # A partition first seen now is not idle yet: the stream may not have started.
            last = self._last_activity.setdefault(tp.partition, now)
            if now - last >= self.idle_seconds:
                idle.append(tp)
            else:
                self._suspects.pop(tp.partition, None)
        if not idle:
            return
        await self._refresh_log_starts(
            [tp for tp in idle if self.applied_offset(tp.partition) < 0], now
        )
        for tp in idle:
            applied = self.applied_offset(tp.partition)
            if applied >= 0:
                expected = applied + 1
            elif tp.partition in self._log_starts:
                expected = self._log_starts[tp.partition][0]
            else:
                continue  # log start unknown (the broker did not answer): next check
            highwater = highwater_of(consumer, tp)
            # None: not assigned any more, or no fetch answer yet (a fetch that never starts
            # is streams.fetching's)
            if highwater is None or expected >= highwater:
                self._suspects.pop(tp.partition, None)
                continue
            last = self._last_activity.get(tp.partition, now)
            if not self._delivered_past(tp, applied) and now - last < self.stall_seconds:
                self._suspects.pop(tp.partition, None)  # a backlog on its way, not a drop
                continue
            suspect = self._suspects.get(tp.partition)
            if suspect is None or suspect[:2] != (applied, highwater):
                self._suspects[tp.partition] = (applied, highwater, now)
                continue
            if now - suspect[2] < self.idle_seconds:
                continue
            del self._suspects[tp.partition]
            self._restart_fetch(tp, expected, "record_tail_gap_repaired", now, highwater=highwater)

    def _restart_fetch(self, tp: Any, offset: int, event: str, now: float, **context: Any) -> None:
        """Log ``event`` with what the consumer knows of ``tp``, unstick it, seek it."""
        log.warning(
            event,
            topic=self.source_topic,
            partition=tp.partition,
            seek_to=offset,
            fetch=self.fetch_state(tp),
            **context,
        )
        self._last_activity[tp.partition] = now  # at most once per idle spell
        resume_fetching(self.app.consumer, tp)
        self._schedule_seek(tp, offset)

    def idle_for(self, partition: int) -> float:
        """Seconds since the agent last had a record of ``partition`` or was busy."""
        now = self._now()
        return now - self._last_activity.get(partition, now)

    def fetch_state(self, tp: Any) -> dict[str, Any]:
        """What Faust and aiokafka know of one source partition, for logs and ``/health``."""
        return {
            "applied_offset": self.applied_offset(tp.partition),
            **fetch_state(self.app.consumer, tp),
            "idle_s": round(self.idle_for(tp.partition), 1),
        }

    def _delivered_past(self, tp: Any, applied: int) -> bool:
        """Has Faust handed the stream a record past ``applied``? A dropped record is one it
        handed over (its read offset moved past it) and the agent never applied; records not
        handed over yet are a backlog, which seeking back would only make it fetch again
        (under load that was a seek every few seconds, and ~1 record/s). Consumers without a
        read offset are judged by the high watermark alone."""
        read_offsets = getattr(self.app.consumer, "_read_offset", None)
        if read_offsets is None:
            return True
        read = read_offsets.get(tp)
        return read is not None and read > applied

    def partitions_report(self) -> dict[str, dict[str, Any]]:
        """``fetch_state`` of every assigned source partition (``/health``)."""
        consumer = self.app.consumer
        if consumer is None:
            return {}
        return {
            f"{tp.topic}[{tp.partition}]": self.fetch_state(tp)
            for tp in sorted(consumer.assignment())
            if tp.topic == self.source_topic
        }

    async def _refresh_log_starts(self, tps: list[Any], now: float) -> None:
        """One request for every partition whose log start is unknown or old."""
        stale = [
            tp
            for tp in tps
            if tp.partition not in self._log_starts
            or now - self._log_starts[tp.partition][1] >= self._log_start_ttl
        ]
        if not stale:
            return
        try:
            offsets = await self.app.consumer.earliest_offsets(*stale)
        except Exception as exc:  # the broker is slow or away: keep what we knew
            log.warning(
                "log_start_unavailable",
                topic=self.source_topic,
                partitions=[tp.partition for tp in stale],
                error=repr(exc),
            )
            return
        for tp in stale:
            self._log_starts[tp.partition] = (int(offsets.get(tp, 0) or 0), now)

    async def _log_start(self, tp: Any, fresh: bool = False) -> int:
        if fresh:
            self._log_starts.pop(tp.partition, None)
        now = self._now()
        await self._refresh_log_starts([tp], now)
        known = self._log_starts.get(tp.partition)
        return known[0] if known is not None else 0
