"""The incremental live counts (KeyFigures) equal the reference figures() at every step.

The records come from the seeded month generator of the replay test (supplements, handoffs,
late steps, refusals, withdrawals, dossiers open at month end), applied event by event in time
order with the alerts fired as the worker does; after every applied event the changed record
is re-indexed, and at checkpoints every period from the day to the year (including periods
already over, whose in-progress figures are taken at their end) is compared.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from lienthong.domain.alerts import AlertRules, due_alerts
from lienthong.domain.procedures import load_procedures
from lienthong.domain.stats import (
    FIGURES,
    KINDS,
    KeyFigures,
    figures,
    labels_of,
    period_of,
    periods_between,
    periods_changed,
    periods_of_record,
    stats_key,
    summarise,
)
from lienthong.domain.tracking import Applied, track_in
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_replay import generate_month


def _periods(start: datetime, end: datetime) -> list[Any]:
    periods = {}
    t = start
    while t <= end:
        for kind in KINDS:
            p = period_of(kind, t)
            periods[p.label] = p
        t += timedelta(days=1)
    return list(periods.values())


def test_key_figures_equal_figures_over_the_records_after_every_change() -> None:
    script = generate_month(120, seed=5)
    events = script.ordered()
    catalogue = load_procedures()
    rules = AlertRules()
    records: dict[str, Any] = {}
    keys: dict[str, str] = {}
    index: dict[str, KeyFigures] = defaultdict(KeyFigures)
    first = events[0][0].envelope.occurred_at
    last = events[-1][0].envelope.occurred_at
    periods = _periods(first - timedelta(days=40), last + timedelta(days=2))

    def reindex(record: Any) -> None:
        key = stats_key(record)
        old = keys.get(record.id)
        if old is not None and old != key:
            index[old].update(record.id, None)
        if key is not None:
            index[key].put(record)
            keys[record.id] = key
            assert index[key].members[record.id] == summarise(record)

    def check(as_of: datetime) -> int:
        per_key: dict[str, list] = defaultdict(list)
        for record in records.values():
            key = stats_key(record)
            if key:
                per_key[key].append(record)
        assert set(per_key) == {k for k, kf in index.items() if len(kf)}
        compared = 0
        for key, rs in per_key.items():
            cache: dict[datetime, dict[str, int]] = {}
            for period in periods:
                expected = figures(rs, period, as_of)
                assert index[key].figures(period, as_of, cache) == expected, (key, period)
                assert index[key].figures(period, as_of) == expected, (key, period)
                compared += 1
        return compared

    compared = 0
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
        reindex(result.record)
        if n % 150 == 0:
            compared += check(facts.at)
    compared += check(last + timedelta(days=1))
    assert compared > 1000


def test_labels_of_and_periods_changed_match_period_of() -> None:
    for instant in (
        datetime.fromisoformat("2025-12-31T16:59:59+00:00"),  # 23:59:59 in Hà Nội
        datetime.fromisoformat("2025-12-31T17:00:00+00:00"),  # next year there
        datetime.fromisoformat("2025-03-31T23:30:00+07:00"),
    ):
        assert labels_of(instant) == tuple(period_of(k, instant).label for k in KINDS)
    at = datetime.fromisoformat("2025-03-31T23:30:00+07:00")
    as_of = datetime.fromisoformat("2025-04-01T08:00:00+07:00")
    assert periods_changed(at, as_of) == {period_of(k, t).label for k in KINDS for t in (at, as_of)}


def test_periods_between_and_of_record_cover_the_months_a_dossier_was_open_in() -> None:
    start = datetime.fromisoformat("2025-02-27T10:00:00+07:00")
    end = datetime.fromisoformat("2025-04-02T09:00:00+07:00")
    labels = periods_between(start, end)
    assert {"month:2025-02", "month:2025-03", "month:2025-04", "quarter:2025-Q1"} <= labels
    assert {"quarter:2025-Q2", "year:2025", "day:2025-03-15", "day:2025-04-02"} <= labels
    assert "day:2025-02-26" not in labels and "day:2025-04-03" not in labels
    assert len([lab for lab in labels if lab.startswith("day:")]) == 35
    # A dossier received in February and still open in April has figures in March (carried
    # over, in progress) although nothing happened to it then.
    script = generate_month(40, seed=2)
    catalogue = load_procedures()
    for n, (event, _) in enumerate(script.ordered()):
        facts = facts_of(event)
        if facts is None or facts.kind.value != "dossier_received":
            continue
        result = track_in(catalogue, None, facts, partition=0, offset=n)
        assert isinstance(result, Applied)
        received = facts.at
        later = received + timedelta(days=70)
        marked = periods_of_record(result.record, later)
        assert periods_between(received, later) <= marked
        for period in _periods(received, later):
            if figures([result.record], period, later) != dict.fromkeys(FIGURES, 0):
                assert period.label in marked, period.label
        break
