"""Stage 1 of the live counts as one object (lienthong.streams.counts), fed by decisions.

The scripted month goes through the decision driver of tests/unit/domain/test_decide.py; every
change it reports (the instants ``counts_at`` of each decision, the first alert of each clock
round) is given to :class:`LiveCounts`, which is flushed after every event; the latest partial
of each key, period and source partition, summed as stage 2 sums them, must be the month's
exact counts. No broker, no Faust app.
"""

from __future__ import annotations

import json
from typing import Any

from lienthong.domain import stats as rules
from lienthong.domain.procedures import load_procedures
from lienthong.streams.counts import LiveCounts, is_closed
from tests.integration.test_streams_scenarios import EXPECTED_MARCH, march_script
from tests.unit.domain.test_decide import PARTITIONS, Partition, facts, partition_of

MARCH = "month:2025-03"


def test_partials_flushed_after_every_event_sum_to_the_scripted_months_counts():
    counts = LiveCounts(epoch=lambda: 1.0)
    parts = [Partition(load_procedures()) for _ in range(PARTITIONS)]
    latest: dict[tuple[str, int], dict] = {}  # (key|period, source partition) -> partial
    for offset, (event, pinned) in enumerate(march_script().ordered()):
        p = partition_of(event.envelope.dossier_id or "", pinned)
        part = parts[p]
        seen = len(part.changes)
        part.apply(facts(event))
        counts.offset_seen(p, offset)
        for record, at, now in part.changes[seen:]:
            counts.touch(p, record, at, now)
        for (partition, key), labels in counts.take_dirty():
            for label, value in counts.partials(partition, key, labels):
                partial = json.loads(value)
                assert partial["partition"] == partition and partial["version"][1] <= offset
                latest[(f"{key}|{label}", partition)] = partial
    totals = dict.fromkeys(rules.FIGURES, 0)
    for (full_key, _), partial in latest.items():
        if full_key.endswith(f"|{MARCH}"):
            totals = rules.add(totals, partial["figures"])
    assert totals | rules.rates(totals) == EXPECTED_MARCH


def test_a_rebuilt_partition_republishes_every_period_of_its_records():
    parts = [Partition(load_procedures()) for _ in range(PARTITIONS)]
    for event, pinned in march_script().ordered():
        parts[partition_of(event.envelope.dossier_id or "", pinned)].apply(facts(event))
    counts = LiveCounts(epoch=lambda: 2.0)
    for p, part in enumerate(parts):
        counts.owned_since(p)
        for record in part.records.values():
            assert part.watermark is not None
            counts.index(p, record, rebuilt_at=part.watermark)
    totals = dict.fromkeys(rules.FIGURES, 0)
    for (partition, key), labels in counts.take_dirty():
        for label, value in counts.partials(partition, key, labels):
            partial = json.loads(value)
            assert partial["version"][0] == 2.0
            if label == MARCH:
                totals = rules.add(totals, partial["figures"])
    assert totals | rules.rates(totals) == EXPECTED_MARCH
    assert counts.take_dirty() == []  # flushed: nothing left until something changes


def test_closed_dossiers_leave_the_key_map_and_still_count():
    counts = LiveCounts(epoch=lambda: 1.0)
    parts = [Partition(load_procedures()) for _ in range(PARTITIONS)]
    last = {}
    previous: dict[str, Any] = {}  # the version each record's next change follows
    for event, pinned in march_script().ordered():
        p = partition_of(event.envelope.dossier_id or "", pinned)
        seen = len(parts[p].changes)
        parts[p].apply(facts(event))
        for record, at, now in parts[p].changes[seen:]:
            counts.touch(p, record, at, now, is_closed(previous.get(record.id)))
            previous[record.id] = record
            last[p] = now
    closed = {"returned", "refused", "withdrawn", "stopped"}
    closed_records = 0
    for p, part in enumerate(parts):
        still_open = [r for r in part.records.values() if r.state.status not in closed]
        closed_records += len(part.records) - len(still_open)
        assert counts.tracked(p) == len(still_open)
        # Every record touched again (as a redelivery does): nothing moves, nothing is kept.
        for record in part.records.values():
            counts.touch(p, record, last[p], last[p], is_closed(record))
        assert counts.tracked(p) == len(still_open)
    assert closed_records > 0
    # The figures of every key, read from the index after the closed records left the map.
    totals = dict.fromkeys(rules.FIGURES, 0)
    for p, part in enumerate(parts):
        keys = {rules.stats_key(r) for r in part.records.values()} - {None}
        for key in sorted(keys):  # type: ignore[type-var]
            for _label, value in counts.partials(p, key, {MARCH}):
                totals = rules.add(totals, json.loads(value)["figures"])
    assert totals | rules.rates(totals) == EXPECTED_MARCH
