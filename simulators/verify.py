"""Compare what the bus published with the simulator's ground truth.

The comparison is pure (``compare(truth, actual)``) so it is unit-tested with synthetic
actuals; ``collect_actual`` reads the topics with kafka-python (manual partition assignment,
from the beginning to the end offsets seen at start — no consumer-group join).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lienthong.simulators.truth import COUNT_FIELDS

Actual = dict[str, Any]


@dataclass(frozen=True)
class Row:
    figure: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def _channel_of(key: str) -> str:
    return key.split("|")[2]


def _period_of(key: str) -> str:
    return key.split("|")[3]


def stats_totals(stats: dict[str, dict[str, int]], period: str) -> dict[str, int]:
    """Province totals for one period; per-channel keys preferred over ``*`` keys."""
    keys = [k for k in stats if _period_of(k) == period]
    per_channel = [k for k in keys if _channel_of(k) != "*"]
    use = per_channel or keys
    total: Counter[str] = Counter()
    for k in use:
        total.update({f: int(stats[k].get(f, 0)) for f in COUNT_FIELDS})
    return {f: total.get(f, 0) for f in COUNT_FIELDS}


def compare(truth: dict[str, Any], actual: Actual) -> list[Row]:
    rows: list[Row] = []
    expected_stats: dict[str, dict[str, int]] = truth["counts"]
    actual_stats: dict[str, dict[str, int]] = actual.get("stats", {})
    periods = sorted({_period_of(k) for k in expected_stats})
    for period in periods:
        exp = stats_totals(expected_stats, period)
        act = stats_totals(actual_stats, period)
        for f in COUNT_FIELDS:
            rows.append(Row(f"{period} {f}", exp[f], act[f]))
    # Per key: every expected key must match field by field; extra non-zero keys are wrong.
    mismatched = []
    for key, exp in expected_stats.items():
        got = actual_stats.get(key, {})
        if any(int(got.get(f, 0)) != exp.get(f, 0) for f in COUNT_FIELDS):
            mismatched.append(key)
    for key, got in actual_stats.items():
        if key not in expected_stats and _channel_of(key) != "*":
            if _period_of(key) in periods and any(int(got.get(f, 0)) for f in COUNT_FIELDS):
                mismatched.append(key)
    rows.append(Row("stats keys differing", 0, len(mismatched)))
    alerts = truth["alerts"]
    got_d = set(actual.get("overdue_dossiers", ()))
    got_s = set(actual.get("overdue_steps", ()))
    rows.append(Row("overdue dossiers (alerts)", len(alerts["overdue_dossiers"]), len(got_d)))
    rows.append(
        Row("overdue dossiers not matching", 0, len(got_d ^ set(alerts["overdue_dossiers"])))
    )
    rows.append(Row("overdue steps (alerts)", len(alerts["overdue_steps"]), len(got_s)))
    portal_exp: dict[str, dict[str, Any]] = truth["portal"]
    portal_got: dict[str, dict[str, Any]] = actual.get("portal", {})
    rows.append(Row("portal dossiers", len(portal_exp), len(portal_got)))
    wrong = [
        d
        for d, exp in portal_exp.items()
        if d not in portal_got
        or any(portal_got[d].get(f) != exp[f] for f in ("TrangThaiHoSo", "KenhThucHien"))
        or (exp.get("NgayHenTra") and portal_got[d].get("NgayHenTra") != exp["NgayHenTra"])
    ]
    rows.append(Row("portal records with wrong status/channel/due", 0, len(wrong)))
    dl_exp: dict[str, int] = truth["dead_letters"]
    dl_got: dict[str, int] = actual.get("dead_letters", {})
    for cls in sorted(set(dl_exp) | set(dl_got)):
        rows.append(Row(f"dead letters {cls}", dl_exp.get(cls, 0), dl_got.get(cls, 0)))
    return rows


def render(rows: list[Row]) -> str:
    width = max([len(r.figure) for r in rows] + [6])
    lines = [f"{'figure':<{width}}  {'expected':>10}  {'actual':>10}  ok"]
    for r in rows:
        lines.append(
            f"{r.figure:<{width}}  {r.expected!s:>10}  {r.actual!s:>10}  "
            f"{'ok' if r.ok else 'MISMATCH'}"
        )
    bad = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - bad} of {len(rows)} figures match")
    return "\n".join(lines)


def collect_actual(settings: Any, timeout_s: float = 30.0) -> Actual:
    """Read live-stats, deadline-alerts, portal-status and dead-letters up to their end."""
    from lienthong.connectors.headers import (
        DLQ_ERROR_CLASS,
        DLQ_SOURCE_OFFSET,
        DLQ_SOURCE_PARTITION,
        DLQ_SOURCE_TOPIC,
    )
    from lienthong.schemas import decode_or_reason
    from lienthong.schemas.models import DeadlineOverdue, LiveStatsSnapshot, PortalStatusRecord

    actual: Actual = {
        "stats": {},
        "overdue_dossiers": set(),
        "overdue_steps": set(),
        "portal": {},
        "dead_letters": {},
    }
    for record in read_topic(settings, "live-stats", timeout_s):
        event = decode_or_reason(record.value)
        if isinstance(event, LiveStatsSnapshot):
            actual["stats"][event.key] = {f: getattr(event, f) for f in COUNT_FIELDS}
    for record in read_topic(settings, "deadline-alerts", timeout_s):
        event = decode_or_reason(record.value)
        if isinstance(event, DeadlineOverdue):
            if event.scope.value == "dossier":
                actual["overdue_dossiers"].add(event.envelope.dossier_id)
            else:
                actual["overdue_steps"].add(f"{event.envelope.dossier_id}#{event.step}")
    for record in read_topic(settings, "portal-status", timeout_s):
        event = decode_or_reason(record.value)
        if isinstance(event, PortalStatusRecord):
            actual["portal"][event.MaHoSo] = {
                "TrangThaiHoSo": event.TrangThaiHoSo,
                "KenhThucHien": event.KenhThucHien,
                "NgayHenTra": event.NgayHenTra,
            }
    seen: dict[tuple[bytes, ...], str] = {}
    for record in read_topic(settings, "dead-letters", timeout_s):
        h = dict(record.headers or [])
        source = (
            h.get(DLQ_SOURCE_TOPIC, b""),
            h.get(DLQ_SOURCE_PARTITION, b""),
            h.get(DLQ_SOURCE_OFFSET, b""),
        )
        seen[source] = h.get(DLQ_ERROR_CLASS, b"?").decode()
    actual["dead_letters"] = dict(Counter(seen.values()))
    return actual


def read_topic(settings: Any, name: str, timeout_s: float) -> list[Any]:
    """All records of a catalogue topic from offset 0 to the end offsets seen now."""
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.connectors.kafka import kafka_python_config

    topic = settings.topic(name)
    consumer = KafkaConsumer(
        **kafka_python_config(settings),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        # End offsets are a lower bound only (Tansu reports the last batch's base offset + 1),
        # so read past them until the topic stays quiet for one idle poll.
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        positions = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batch:
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
                continue
            for tp, records in batch.items():
                out.extend(records)
                positions[tp] = records[-1].offset + 1
        return out
    finally:
        consumer.close()
