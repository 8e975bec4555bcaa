"""Closed dossiers are folded out of stage 1 (issue 14 item 3): same figures, bounded memory.

A seeded generated month is applied event by event as the worker does; :class:`LiveCounts`
folds every dossier closed for good into per-period counters and drops its summary. At
checkpoints every period from the day to the year is compared with the reference
:func:`figures` over the records, the held summaries are checked to be the open dossiers
only, and a rebuild from the records (what a restart or rebalance does) gives the same
figures.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from lienthong.domain.alerts import AlertRules, due_alerts
from lienthong.domain.procedures import load_procedures
from lienthong.domain.stats import KINDS, Period, figures, period_of, stats_key
from lienthong.domain.tracking import Applied, track_in
from lienthong.streams.counts import LiveCounts, is_closed
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_replay import generate_month


def _periods(start: datetime, end: datetime) -> list[Period]:
    periods: dict[str, Period] = {}
    t = start
    while t <= end:
        for kind in KINDS:
            p = period_of(kind, t)
            periods[p.label] = p
        t += timedelta(days=1)
    return list(periods.values())


def _replay(dossiers: int, seed: int) -> tuple[list[tuple[Any, datetime]], dict[str, Any]]:
    """(record, instant) of every applied event, in order; and the final records."""
    events = generate_month(dossiers, seed=seed).ordered()
    catalogue = load_procedures()
    rules = AlertRules()
    records: dict[str, Any] = {}
    changes = []
    for n, (event, _) in enumerate(events):
        facts = facts_of(event)
        assert facts is not None
        record = records.get(facts.dossier_id)
        if record is not None:
            fired = due_alerts(record, facts.at, rules)
            record = record.with_alerts([a.key for a in fired])
        result = track_in(catalogue, record, facts, partition=0, offset=n)
        if not isinstance(result, Applied):
            continue
        records[facts.dossier_id] = result.record
        changes.append((result.record, facts.at))
    return changes, records


def _compare(counts: LiveCounts, records: dict[str, Any], periods: list[Period]) -> int:
    per_key: dict[str, list[Any]] = defaultdict(list)
    for record in records.values():
        key = stats_key(record)
        if key:
            per_key[key].append(record)
    as_of = counts._as_of[0]
    compared = 0
    for key, rs in per_key.items():
        for period in periods:
            assert counts.figures(0, key, period) == figures(rs, period, as_of), (key, period)
            compared += 1
    return compared


def _per_dossier_entries(counts: LiveCounts) -> int:
    """Entries of every per-dossier container of stage 1 (not the per-period counters)."""
    total = sum(len(keys) for keys in counts._key_of.values())
    for per_key in counts._index.values():
        for key_figures in per_key.values():
            total += sum(
                len(value)
                for name, value in vars(key_figures).items()
                if name not in ("counts", "folded_counts") and hasattr(value, "__len__")
            )
    return total


def _is_open(record: Any) -> bool:
    return record.state.status not in {"refused", "withdrawn", "stopped", "returned"}


def test_folded_figures_equal_the_reference_and_only_open_dossiers_stay_held() -> None:
    changes, _ = _replay(300, seed=11)
    first, last = changes[0][1], changes[-1][1]
    periods = _periods(first - timedelta(days=40), last + timedelta(days=2))
    counts = LiveCounts(epoch=lambda: 1.0)
    records: dict[str, Any] = {}
    compared = folded_seen = 0
    for n, (record, at) in enumerate(changes):
        counts.touch(0, record, at, at, is_closed(records.get(record.id)))
        # a redelivery (or a second instant) follows this very version: counts once
        counts.touch(0, record, at, at, is_closed(record))
        records[record.id] = record
        if n % 200 == 0 or n == len(changes) - 1:
            counts.take_dirty()
            compared += _compare(counts, records, periods)
            open_ids = {r.id for r in records.values() if _is_open(r) and stats_key(r)}
            assert counts.held(0) <= len(open_ids) + 0
            folded_seen = max(folded_seen, len(records) - counts.held(0))
    assert compared > 2000 and folded_seen > 100
    # Nothing per closed dossier is left once it is folded (an earlier version kept a hash of
    # every folded id, ~60 bytes per dossier ever closed, for the life of the process).
    open_now = len({r.id for r in records.values() if _is_open(r) and stats_key(r)})
    unfolded = sum(len(pending) for pending in counts._unfolded.values())
    assert _per_dossier_entries(counts) <= 5 * (open_now + unfolded)

    # A restart/rebalance: a fresh index from the stored records gives the same figures.
    rebuilt = LiveCounts(epoch=lambda: 2.0)
    for record in records.values():
        rebuilt.index(0, record, rebuilt_at=counts._as_of[0])
    rebuilt.take_dirty()
    _compare(rebuilt, records, periods)
    assert rebuilt.held(0) == counts.held(0)


def test_only_periods_whose_figures_changed_are_sent_again_and_a_rebuild_resends_all() -> None:
    changes, records = _replay(40, seed=3)
    counts = LiveCounts(epoch=lambda: 1.0)
    for record, at in changes:
        counts.touch(0, record, at, at)
    first = [
        (key, label, any(json.loads(value)["figures"].values()))
        for (p, key), labels in counts.take_dirty()
        for label, value in counts.partials(p, key, labels)
    ]
    assert first
    record, at = changes[-1]
    counts.touch(0, record, at, at)  # a redelivery: marks its key's periods, changes nothing
    marked = counts.take_dirty()
    assert marked and all(counts.partials(p, key, labels) == [] for (p, key), labels in marked)
    assert counts.skipped > 0

    counts.reset()  # a rebalance: nothing counts as sent any more
    for r in records.values():
        counts.index(0, r, rebuilt_at=at)
    again = {
        (key, label)
        for (p, key), labels in counts.take_dirty()
        for label, _ in counts.partials(p, key, labels)
    }
    # every period with figures (one marked by an event that counts nothing may be all zeros)
    assert {(key, label) for key, label, some in first if some} <= again
