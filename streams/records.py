"""A small bounded cache of decoded tracker records (no Faust).

Why: with the RocksDB store every read of a dossier's record is a database get plus JSON and
state decoding; a dossier's events come close together (a receipt, its handoffs, the result),
and the clock ticks the dossiers whose timers just came, so the records read are mostly
those written a moment ago. The cache keeps the newest ``limit`` of them, least recently used
out first, so it stays the same size whatever the number of dossiers the store holds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["HotRecords"]


class HotRecords:
    def __init__(self, limit: int = 4096) -> None:
        if limit < 1:
            raise ValueError(f"HotRecords: limit must be at least 1, got {limit}")
        self.limit = limit
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.limit:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        """A rebalance: another worker may have changed the records of a partition since."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
