"""The stream processors' notion of "now": wall clock (live) or event-time watermark (replay).

Why an event-time clock: replaying a simulated year must fire the same deadline alerts, in
the same order, as living through it, in minutes. The watermark is per source partition (the
newest ``occurred_at`` applied there), because a partition's events are all a worker sees.
Producers are expected to publish roughly in time order; a dossier's own events are always
ordered (key = dossier id).

Live mode uses the wall clock only for a partition the worker has caught up with. While it
works through a backlog (a restart after downtime, a department system uploading a day of
events, the simulator's warm-up) "now" is that partition's watermark instead: the records
still queued behind may finish the dossier, return the step or pause the clock, and an alert
judged on the wall clock before they are applied would be one the deadline rules cancel (a
warning for a dossier that was finished in time). Once the last record the consumer knows of
is applied, the partition is back on the wall clock, so idle partitions (nights, weekends)
keep firing alerts when they fall due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def backlog_after(offset: int, highwater: int | None) -> int:
    """Records of a partition after ``offset`` that the consumer already knows exist.

    ``highwater`` is the partition's high watermark as the last fetch response reported it
    (the offset the next produced record will get); unknown counts as caught up, which is the
    plain wall-clock behaviour."""
    if highwater is None:
        return 0
    return max(0, highwater - offset - 1)


class Clock:
    def __init__(self, mode: str, wall: Callable[[], datetime] = _utc_now) -> None:
        self.mode = mode
        self._wall = wall
        self._watermarks: dict[int, datetime] = {}
        self._behind: dict[int, bool] = {}

    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def consumed(self, partition: int, backlog: int) -> None:
        """Note how many records wait behind the one just taken from ``partition``; called
        for every record, including those that are dead-lettered or repeated, so the last
        record of a backlog always puts the partition back on the wall clock."""
        self._behind[partition] = backlog > 0

    def observe(self, partition: int, occurred_at: datetime) -> None:
        current = self._watermarks.get(partition)
        if current is None or occurred_at > current:
            self._watermarks[partition] = occurred_at

    def behind(self, partition: int) -> bool:
        return self._behind.get(partition, False)

    def now(self, partition: int) -> datetime | None:
        watermark = self._watermarks.get(partition)
        if self.replay:
            return watermark
        wall = self._wall()
        if watermark is not None and watermark < wall and self._behind.get(partition, False):
            return watermark
        return wall
