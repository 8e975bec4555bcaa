"""Stage 1 of the live counts: one object per worker, no Faust, no module-level state.

The tracker tells it what changed (:meth:`LiveCounts.touch` with the instants a decision says
the dossier's counts changed at, :meth:`index` when a partition is rebuilt from the table); the
stats flush asks it for the partials to publish (:meth:`take_partials`). Per source partition
it keeps an index of the tracker records by ``agency|procedure|channel``
(:class:`lienthong.domain.stats.KeyFigures`) and which periods of which keys changed since the
last flush. Before, this was eight module-level dicts of ``streams/stats.py``; as an object a
test builds it and checks the partials against the figures, without a broker.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lienthong.domain import stats as rules
from lienthong.domain.lifecycle import TERMINAL
from lienthong.domain.record import DossierRecord as Record

__all__ = ["LiveCounts"]


class LiveCounts:
    """The figures of the tracker records of the partitions this worker owns (stage 1)."""

    def __init__(self, epoch: Callable[[], float] = time.time) -> None:
        self._epoch = epoch
        self._index: dict[int, dict[str, rules.KeyFigures]] = defaultdict(
            lambda: defaultdict(rules.KeyFigures)
        )
        # record id -> its key, for the records that are not closed (a closed one's key can no
        # longer change: no event applies to it, a redelivery re-indexes it under the same key).
        self._key_of: dict[int, dict[str, str]] = defaultdict(dict)
        self._dirty: dict[tuple[int, str], set[str]] = defaultdict(set)
        self._marked: dict[tuple[int, str], datetime] = {}  # as_of of a key's latest marking
        self._swept: dict[int, str] = {}  # per partition: day label of the last open-key sweep
        self._as_of: dict[int, datetime] = {}
        self._offsets: dict[int, int] = {}
        self._epochs: dict[int, float] = {}
        # per partition: closed records still held (closing after the clock), to fold later
        self._unfolded: dict[int, dict[str, str]] = defaultdict(dict)
        # (partition, key) -> label -> the figures last published: a period whose figures did
        # not change is not sent again (most marked periods of a replayed day: a past day's
        # or the year's figures of a key with open dossiers stay the same).
        self._sent: dict[tuple[int, str], dict[str, tuple[int, ...]]] = defaultdict(dict)
        self.skipped = 0  # marked periods not sent because their figures were unchanged

    def reset(self) -> None:
        """A rebalance: the indexes are rebuilt from the restored table (clock and versions
        stay, so partials published afterwards still outrank the earlier ones)."""
        self._index.clear()
        self._key_of.clear()
        self._dirty.clear()
        self._marked.clear()
        self._swept.clear()
        self._sent.clear()
        self._unfolded.clear()

    def owned_since(self, partition: int) -> None:
        """This process (re)took the partition: its partials outrank any earlier owner's."""
        self._epochs[partition] = self._epoch()

    def offset_seen(self, partition: int, offset: int) -> None:
        if offset > self._offsets.get(partition, -1):
            self._offsets[partition] = offset

    def index(self, partition: int, record: Record, rebuilt_at: datetime | None = None) -> None:
        """Index a record; ``rebuilt_at`` (after a rebalance or restart) also marks every
        period it has figures in for republication: partials published before a crash may not
        reflect records saved just before it, and their offsets may already be committed."""
        key = rules.stats_key(record)
        if key is not None and rebuilt_at is not None:
            if partition not in self._as_of or rebuilt_at > self._as_of[partition]:
                self._as_of[partition] = rebuilt_at
        self._reindex(partition, record, key, self._as_of.get(partition))
        if key is None:
            return
        if rebuilt_at is not None:
            as_of = self._as_of[partition]
            self._dirty[(partition, key)] |= rules.periods_of_record(record, as_of)
            self._marked[(partition, key)] = as_of

    def _reindex(
        self,
        partition: int,
        record: Record,
        key: str | None,
        as_of: datetime | None,
        was_closed: bool = False,
    ) -> str | None:
        """Put the record's latest summary under its key (a closed one is folded, or queued
        to be once the clock reaches its closing); returns the key it left, if any."""
        keys = self._key_of[partition]
        record_id = record.id
        old = keys.get(record_id)
        moved = None
        if old is not None and old != key:
            self._index[partition][old].update(record_id, None)
            del keys[record_id]
            moved = old
        if key is not None:
            final = is_closed(record)
            key_figures = self._index[partition][key]
            key_figures.put(record, final, as_of, was_closed)
            if final:
                keys.pop(record_id, None)
                if record_id in key_figures.members:
                    self._unfolded[partition][record_id] = key
            else:
                keys[record_id] = key
        return moved

    def tracked(self, partition: int) -> int:
        """Records of the partition whose key is remembered (the open ones)."""
        return len(self._key_of[partition])

    def touch(
        self, partition: int, record: Record, at: datetime, now: datetime, was_closed: bool = False
    ) -> None:
        """A record changed at ``at``: re-index it and mark its key's periods to republish.
        ``was_closed``: the version it follows was closed already (see :func:`is_closed`)."""
        key = rules.stats_key(record)
        current = self._as_of.get(partition)
        clock = now if current is None or now > current else current
        moved = self._reindex(partition, record, key, clock, was_closed)
        if key is None and moved is None:
            return
        self._as_of[partition] = clock
        as_of = clock
        changed = rules.periods_changed(at, as_of)
        if key is not None:
            # Every period since the key was last marked: its open dossiers were carried over
            # into them and in progress in them even if nothing happened to the key meanwhile.
            last = self._marked.get((partition, key))
            if last is not None and last < as_of:
                changed |= rules.periods_between(last, as_of)
            if last is None or last < as_of:
                self._marked[(partition, key)] = as_of
            self._dirty[(partition, key)] |= changed
        if moved is not None:
            # The record left a key: that key's figures changed in every period it counted in.
            self._dirty[(partition, moved)] |= rules.periods_of_record(record, as_of)

    def sweep_open_keys(self) -> None:
        """When a partition's clock enters a new day, mark the periods since their last
        marking of every key with open dossiers: those are carried over into the new periods
        and in progress in them although nothing happened to the key (a key with nothing open
        has no figures in a period without events of its own, and a dossier closing is an
        event)."""
        for partition, as_of in list(self._as_of.items()):
            day = rules.labels_of(as_of)[0]
            if self._swept.get(partition) == day:
                continue
            self._swept[partition] = day
            self._forget_sent(partition, as_of)
            for key, key_figures in self._index[partition].items():
                if not key_figures.open:
                    continue
                last = self._marked.get((partition, key))
                if last is None or last < as_of:
                    self._dirty[(partition, key)] |= rules.periods_between(last or as_of, as_of)
                    self._marked[(partition, key)] = as_of

    def _forget_sent(self, partition: int, as_of: datetime) -> None:
        """Drop the remembered figures of periods that ended over a day before ``as_of``, so
        that memory stays bounded; such a period, marked again by a late change, is sent again
        (a repeat is harmless: stage 2 replaces)."""
        horizon = as_of - timedelta(days=1)
        for (p, _key), sent in self._sent.items():
            if p != partition:
                continue
            for label in [lb for lb in sent if rules.period_of_label(lb).end < horizon]:
                del sent[label]

    def fold_closed(self) -> None:
        """Fold the closed records whose closing the partition's clock has now reached."""
        for partition, pending in self._unfolded.items():
            as_of = self._as_of.get(partition)
            if as_of is None:
                continue
            for record_id, key in list(pending.items()):
                key_figures = self._index[partition][key]
                if record_id not in key_figures.members or key_figures.fold(record_id, as_of):
                    del pending[record_id]

    def figures(self, partition: int, key: str, period: rules.Period) -> dict[str, int]:
        """One key's figures of ``period`` as of the partition's clock (what a partial says)."""
        as_of = self._as_of.get(partition) or datetime.now(UTC)
        return self._index[partition][key].figures(period, as_of)

    def held(self, partition: int) -> int:
        """Summaries held for the partition (open dossiers, and closed ones not yet folded)."""
        return sum(len(k) for k in self._index[partition].values())

    def take_dirty(self) -> list[tuple[tuple[int, str], set[str]]]:
        """The keys and periods changed since the last call (then forgotten)."""
        self.fold_closed()
        self.sweep_open_keys()
        batch = list(self._dirty.items())
        self._dirty.clear()
        return batch

    def partials(self, partition: int, key: str, labels: set[str]) -> list[tuple[str, bytes]]:
        """The ``stats-partials`` values (JSON bytes) of one key's periods ``labels`` whose
        figures differ from the ones this object last returned for them.

        Why skipping is safe: stage 2 keeps the latest partial of each source partition, which
        already holds those figures; a new owner (or a restarted worker) starts with nothing
        sent, so it republishes everything under its newer epoch."""
        as_of = self._as_of.get(partition) or datetime.now(UTC)
        key_figures = self._index[partition][key]
        sent = self._sent[(partition, key)]
        shared: dict[datetime, dict[str, int]] = {}
        out = []
        for label in sorted(labels):
            period = rules.period_of_label(label)
            figures = key_figures.figures(period, as_of, shared)
            signature = tuple(figures.values())
            if sent.get(label) == signature:
                self.skipped += 1
                continue
            sent[label] = signature
            value: dict[str, Any] = {
                "partition": partition,
                # (ownership epoch, highest source offset): a partition's new owner (or the
                # restarted worker) outranks partials still in flight from the previous one.
                "version": [self._epochs.get(partition, 0.0), self._offsets.get(partition, -1)],
                "as_of": as_of.isoformat(),
                "figures": figures,
            }
            out.append((label, json.dumps(value).encode()))
        return out


_CLOSED = frozenset(TERMINAL)


def is_closed(record: Record | None) -> bool:
    """Result returned, refused, withdrawn or stopped: no event changes its counts again."""
    return record is not None and record.state.status in _CLOSED
