"""The tracker's pending timers: per source partition, a heap of (fire instant, dossier id).

One object instead of two module-level containers, so a test builds it. Entries are checked
against the dossier's record when they come due (lazy invalidation: a dossier whose alerts
moved or were cancelled just finds nothing due, and an entry is pushed again for its next
alert). A partition's heap is rebuilt from the restored table after every rebalance, so the
timers follow the partitions (:meth:`rebuilt` / :meth:`is_built`, :meth:`forget_all`).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

__all__ = ["PartitionTimers"]


class PartitionTimers:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        self._built: set[int] = set()

    def schedule(self, partition: int, at: datetime, dossier_id: str) -> None:
        heapq.heappush(self._heaps[partition], (at, dossier_id))

    def due(self, partition: int, now: datetime | None) -> Iterator[str]:
        """Dossier ids whose timer has come by ``now``, earliest first, each taken off the
        heap (a dossier may come more than once: the caller looks at its record anyway)."""
        heap = self._heaps[partition]
        while heap and now is not None and heap[0][0] <= now:
            yield heapq.heappop(heap)[1]

    def rebuilding(self, partition: int) -> None:
        """Drop the partition's timers before they are scheduled again from the table."""
        self._heaps[partition] = []

    def rebuilt(self, partition: int) -> None:
        self._built.add(partition)

    def is_built(self, partition: int) -> bool:
        return partition in self._built

    def built(self) -> list[int]:
        return sorted(self._built)

    def forget_all(self) -> None:
        """A rebalance: every partition is rebuilt before its next record is applied."""
        self._built.clear()

    def pending(self, partition: int) -> int:
        return len(self._heaps[partition])
