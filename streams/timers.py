"""The tracker's pending timers: per source partition, a heap of (fire instant, dossier id).

One object instead of two module-level containers, so a test builds it. Entries are checked
against the dossier's record when they come due (lazy invalidation: a dossier whose alerts
moved or were cancelled just finds nothing due, and an entry is pushed again for its next
alert). A partition's heap is rebuilt from the restored table after every rebalance, so the
timers follow the partitions (:meth:`rebuilt` / :meth:`is_built`, :meth:`forget_all`).

Bounded: only a dossier's latest timer counts (``schedule`` again replaces it, :meth:`drop`
forgets it: a closed dossier, or one with nothing pending, has none), and a heap whose stale
entries outnumber the live ones is compacted, so a partition holds about one entry per dossier
with a pending alert, not one per change of every dossier it has seen.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

__all__ = ["PartitionTimers"]


# A heap is compacted when it holds more than twice its live entries plus this many.
COMPACT_SLACK = 1024


class PartitionTimers:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        self._latest: dict[int, dict[str, datetime]] = defaultdict(dict)
        self._built: set[int] = set()

    def schedule(self, partition: int, at: datetime, dossier_id: str) -> None:
        """The dossier's next timer is ``at`` (replacing the one it had)."""
        latest = self._latest[partition]
        if latest.get(dossier_id) == at:
            return
        latest[dossier_id] = at
        heap = self._heaps[partition]
        heapq.heappush(heap, (at, dossier_id))
        if len(heap) > 2 * len(latest) + COMPACT_SLACK:
            self._compact(partition)

    def drop(self, partition: int, dossier_id: str) -> None:
        """The dossier has no pending timer (closed, or nothing left to alert)."""
        self._latest[partition].pop(dossier_id, None)

    def _compact(self, partition: int) -> None:
        latest = self._latest[partition]
        heap = [(at, d) for d, at in latest.items()]
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def due(self, partition: int, now: datetime | None) -> Iterator[str]:
        """Dossier ids whose timer has come by ``now``, earliest first, each taken off the
        heap (the caller looks at the record anyway and schedules its next timer)."""
        heap = self._heaps[partition]
        latest = self._latest[partition]
        while heap and now is not None and heap[0][0] <= now:
            at, dossier_id = heapq.heappop(heap)
            if latest.get(dossier_id) == at:
                del latest[dossier_id]
                yield dossier_id

    def rebuilding(self, partition: int) -> None:
        """Drop the partition's timers before they are scheduled again from the table."""
        self._heaps[partition] = []
        self._latest[partition] = {}

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
        """Dossiers of the partition with a pending timer."""
        return len(self._latest[partition])

    def entries(self, partition: int) -> int:
        """Heap entries, stale ones included (what the partition's timers cost in memory)."""
        return len(self._heaps[partition])
