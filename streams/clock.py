"""The stream processors' notion of "now": wall clock (live) or event-time watermark (replay).

Why an event-time clock: replaying a simulated year must fire the same deadline alerts, in
the same order, as living through it, in minutes. The watermark is per source partition (the
newest ``occurred_at`` applied there), because a partition's events are all a worker sees.
Producers are expected to publish roughly in time order; a dossier's own events are always
ordered (key = dossier id).
"""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._watermarks: dict[int, datetime] = {}

    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def observe(self, partition: int, occurred_at: datetime) -> None:
        current = self._watermarks.get(partition)
        if current is None or occurred_at > current:
            self._watermarks[partition] = occurred_at

    def now(self, partition: int) -> datetime | None:
        if self.replay:
            return self._watermarks.get(partition)
        return datetime.now(UTC)
