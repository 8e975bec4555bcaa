"""Compare what the bus published with the simulator's ground truth.

The comparison is pure (``compare(truth, actual)``) so it is unit-tested with synthetic
actuals; ``collect_actual`` reads the topics with kafka-python (manual partition assignment,
from the beginning to the end offsets seen at start — no consumer-group join).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lienthong.simulators.truth import COUNT_FIELDS, overdue_label, overdue_lists

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


def stats_totals(
    stats: dict[str, dict[str, int]], period: str, fields: tuple[str, ...] = COUNT_FIELDS
) -> dict[str, int]:
    """Province totals for one period; per-channel keys preferred over ``*`` keys."""
    keys = [k for k in stats if _period_of(k) == period]
    per_channel = [k for k in keys if _channel_of(k) != "*"]
    use = per_channel or keys
    total: Counter[str] = Counter()
    for k in use:
        total.update({f: int(stats[k].get(f, 0)) for f in fields})
    return {f: total.get(f, 0) for f in fields}


def by_post_unknown(truth: dict[str, Any]) -> set[str] | None:
    """The dossiers whose return by post the truth cannot know (``postal: connector``: the
    postal connector and the post deliver them on their own schedule), None if it knows all."""
    postal = truth.get("postal") or {}
    if postal.get("mode", "simulated") == "simulated":
        return None
    return set(postal.get("delivery_orders", ()))


def compare(truth: dict[str, Any], actual: Actual) -> list[Row]:
    """The table's rows (see :func:`compare_report` for the notes that go with them)."""
    return compare_report(truth, actual)[0]


def compare_report(truth: dict[str, Any], actual: Actual) -> tuple[list[Row], list[str]]:
    """Rows (figure, expected, actual) and notes: rows skipped and examples of mismatches."""
    rows: list[Row] = []
    notes: list[str] = []
    expected_stats: dict[str, dict[str, int]] = truth["counts"]
    actual_stats: dict[str, dict[str, int]] = actual.get("stats", {})
    by_post = by_post_unknown(truth)
    fields = COUNT_FIELDS
    if by_post is not None:
        fields = tuple(f for f in COUNT_FIELDS if f != "returned_by_post")
        returned = sum(
            1 for d in by_post if (actual.get("portal", {}).get(d) or {}).get("TrangThaiHoSo") == 10
        )
        notes.append(
            "returned_by_post not checked, and TrangThaiHoSo 10 accepted for the "
            f"{len(by_post)} dossiers given to the post for delivery ({returned} show 10 on "
            "the bus): the truth says postal = connector, the post's delays and failures "
            "decide those returns"
        )
    periods = sorted({_period_of(k) for k in expected_stats})
    for period in periods:
        exp = stats_totals(expected_stats, period, fields)
        act = stats_totals(actual_stats, period, fields)
        for f in fields:
            rows.append(Row(f"{period} {f}", exp[f], act[f]))
    # Per key: every expected key must match field by field; extra non-zero keys are wrong.
    mismatched = []
    for key, exp in expected_stats.items():
        got = actual_stats.get(key, {})
        if any(int(got.get(f, 0)) != exp.get(f, 0) for f in fields):
            mismatched.append(key)
    for key, got in actual_stats.items():
        if key not in expected_stats and _channel_of(key) != "*":
            if _period_of(key) in periods and any(int(got.get(f, 0)) for f in fields):
                mismatched.append(key)
    rows.append(Row("stats keys differing", 0, len(mismatched)))
    mode = (truth.get("meta") or {}).get("mode")
    alerts = truth["alerts"]
    if mode == "live" and "after_window" in alerts:
        alerts = live_expected_alerts(alerts, actual, notes)
        mode = "live-checked"
    got_d = set(actual.get("overdue_dossiers", ()))
    got_s = set(actual.get("overdue_steps", ()))
    rows.append(Row("overdue dossiers (alerts)", len(alerts["overdue_dossiers"]), len(got_d)))
    rows.append(
        Row("overdue dossiers not matching", 0, len(got_d ^ set(alerts["overdue_dossiers"])))
    )
    rows.append(Row("overdue steps (alerts)", len(alerts["overdue_steps"]), len(got_s)))
    rows.append(Row("overdue steps not matching", 0, len(got_s ^ set(alerts["overdue_steps"]))))
    for label, exp_set, got_set in (
        ("overdue", set(alerts["overdue_dossiers"]), got_d),
        ("overdue steps", set(alerts["overdue_steps"]), got_s),
    ):
        _examples(f"{label} expected, not on the bus", exp_set - got_set, {}, notes)
        _examples(f"{label} on the bus, not expected", got_set - exp_set, {}, notes)
    rows.extend(_alert_rows(alerts, actual, notes, mode))
    portal_exp: dict[str, dict[str, Any]] = truth["portal"]
    portal_got: dict[str, dict[str, Any]] = actual.get("portal", {})
    rows.append(Row("portal dossiers", len(portal_exp), len(portal_got)))

    def status_ok(d: str, exp: int) -> bool:
        got = portal_got[d].get("TrangThaiHoSo")
        return got == exp or (by_post is not None and d in by_post and (exp, got) == (9, 10))

    wrong = [
        d
        for d, exp in portal_exp.items()
        if d not in portal_got
        or not status_ok(d, exp["TrangThaiHoSo"])
        or portal_got[d].get("KenhThucHien") != exp["KenhThucHien"]
        or (exp.get("NgayHenTra") and portal_got[d].get("NgayHenTra") != exp["NgayHenTra"])
    ]
    rows.append(Row("portal records with wrong status/channel/due", 0, len(wrong)))
    dl_exp: dict[str, int] = truth["dead_letters"]
    dl_got: dict[str, int] = actual.get("dead_letters", {})
    for cls in sorted(set(dl_exp) | set(dl_got)):
        rows.append(Row(f"dead letters {cls}", dl_exp.get(cls, 0), dl_got.get(cls, 0)))
    return rows, notes


_NEW_KINDS = ("warnings", "apologies", "escalations")

# How long after its fire instant a wall-clock alert may take to be on the topic (the live
# timer's tick, the worker being busy, the broker acknowledging it).
LIVE_MARGIN = timedelta(seconds=15)


def live_expected_alerts(
    alerts: dict[str, Any], actual: Actual, notes: list[str]
) -> dict[str, Any]:
    """A live truth's alerts as of when the bus's alerts were read.

    Why: after the simulator stops, the live workers' wall clock keeps firing the alerts of
    dossiers left open (nothing more is sent). The truth lists those under ``after_window``
    with their fire instants; each one due ``LIVE_MARGIN`` before the reading began must be on
    the bus, one due later than the reading ended must not, and in between either is right.
    Alerts marked ``may`` (due just after a record that cancelled them: a live worker applies
    a record a little after its event time) are right either way.
    """
    started, ended = actual.get("read_from"), actual.get("read_to")
    if started is None or ended is None:
        notes.append(
            "alerts due after the live window not checked: the actual data does not say when "
            "it was read"
        )
        return alerts
    must_by = datetime.fromisoformat(started) - LIVE_MARGIN
    may_by = datetime.fromisoformat(ended) + LIVE_MARGIN
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in alerts.items()}
    required = optional = 0
    overdue_seen = set(actual.get("overdue_dossiers", ())) | set(actual.get("overdue_steps", ()))
    for alert_id, later in alerts["after_window"].items():
        kind, entry = later["kind"], later["entry"]
        if alert_id in out[kind]:
            continue
        fire_at = datetime.fromisoformat(later["fire_at"])
        on_bus = alert_id in (actual.get(kind) or {}) or (
            kind == "overdue" and overdue_label(entry) in overdue_seen
        )
        if not later.get("may") and fire_at <= must_by:
            out[kind][alert_id] = entry
            required += 1
        elif on_bus and (later.get("may") or fire_at <= may_by):
            out[kind][alert_id] = entry
            optional += 1
    out["overdue_dossiers"], out["overdue_steps"] = overdue_lists(out["overdue"].values())
    notes.append(
        f"live: {len(alerts['after_window'])} alerts fall due after the window; {required} were "
        f"due before the bus was read (required), {optional} more were on it (allowed: due "
        "while it was read, or just after a record that cancels them)"
    )
    return out


def _same_instant(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def _examples(label: str, ids: set[str], names: dict[str, Any], notes: list[str]) -> None:
    if not ids:
        return
    shown = []
    for i in sorted(ids)[:5]:
        name = names.get(i)
        if isinstance(name, dict):
            name = f"{name.get('dossier')} {name.get('key') or name.get('handoff_id') or ''}"
        shown.append(f"{name} ({i})" if name else i)
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    notes.append(f"{label}: " + "; ".join(shown) + more)


def _alert_rows(
    alerts: dict[str, Any], actual: Actual, notes: list[str], mode: str | None = None
) -> list[Row]:
    """Warnings, apologies and escalations by alert id (truth alerts version 2)."""
    if mode == "live":
        # A live truth written before ``after_window`` existed cannot say which alerts the
        # wall clock has fired since the window ended.
        notes.append(
            "warnings, apologies and escalations not checked: this live-mode truth predates "
            "the alerts due after its window (after_window); verify them on a replay or "
            "simulate again"
        )
        return []
    if int(alerts.get("version", 1)) < 2 or any(k not in alerts for k in _NEW_KINDS):
        notes.append(
            "warnings, apologies and escalations not checked: the truth file predates them "
            "(alerts version 1); run lienthong simulate again to write a truth that has them"
        )
        return []
    if any(k not in actual for k in _NEW_KINDS):
        notes.append(
            "warnings, apologies and escalations not checked: the actual data has none "
            "(an --actual dump written before they were collected)"
        )
        return []
    rows: list[Row] = []
    rules = alerts.get("rules", {})
    here = actual.get("rules") or {}
    for name in ("warning_lead_hours", "handoff_accept_hours"):
        if name in rules and name in here and float(rules[name]) != float(here[name]):
            notes.append(
                f"the truth assumed streams.{name} = {rules[name]:g}, this environment's "
                f"settings say {here[name]:g}: the workers must run with the truth's value"
            )
    if actual.get("alerts_repeated"):
        notes.append(
            f"{actual['alerts_repeated']} alert records repeat an earlier one's event id "
            "(re-emitted after a worker restart; counted once, consumers drop them by id)"
        )
    parts = rules.get("dossier_partitions")
    if parts is not None and actual.get("dossier_partitions") is not None:
        # The truth's event-time clocks are per partition of dossier-events: it must have
        # assumed the partition count the bus really has.
        rows.append(Row("dossier-events partitions", parts, actual["dossier_partitions"]))
    for kind, label in (
        ("warnings", "warnings (dossier and step)"),
        ("apologies", "apologies"),
        ("escalations", "escalations (handoffs not accepted)"),
    ):
        exp: dict[str, Any] = alerts[kind]
        got: dict[str, Any] = actual[kind]
        rows.append(Row(label, len(exp), len(got)))
        missing, extra = set(exp) - set(got), set(got) - set(exp)
        rows.append(Row(f"{kind} not matching", 0, len(missing) + len(extra)))
        _examples(f"{kind} expected, not on the bus", missing, exp, notes)
        _examples(f"{kind} on the bus, not expected", extra, got, notes)
        both = set(exp) & set(got)
        if kind == "apologies":
            wrong = {
                i
                for i in both
                if exp[i]["responsible"] != got[i].get("responsible")
                or not _same_instant(exp[i]["new_appointment"], got[i].get("new_appointment"))
            }
            rows.append(Row("apologies with wrong agency/new appointment", 0, len(wrong)))
            for i in sorted(wrong)[:5]:
                notes.append(
                    f"apology {exp[i]['dossier']}: expected {exp[i]['responsible']} / "
                    f"{exp[i]['new_appointment']}, bus {got[i].get('responsible')} / "
                    f"{got[i].get('new_appointment')}"
                )
        elif kind == "escalations":
            wrong = {
                i
                for i in both
                if (exp[i]["from"], exp[i]["to"]) != (got[i].get("from"), got[i].get("to"))
            }
            rows.append(Row("escalations with wrong agencies", 0, len(wrong)))
    return rows


def render(rows: list[Row], notes: list[str] | None = None) -> str:
    width = max([len(r.figure) for r in rows] + [6])
    lines = [f"{'figure':<{width}}  {'expected':>10}  {'actual':>10}  ok"]
    for r in rows:
        lines.append(
            f"{r.figure:<{width}}  {r.expected!s:>10}  {r.actual!s:>10}  "
            f"{'ok' if r.ok else 'MISMATCH'}"
        )
    bad = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - bad} of {len(rows)} figures match")
    lines.extend(f"note: {n}" for n in notes or ())
    return "\n".join(lines)


def collect_actual(settings: Any, timeout_s: float = 30.0) -> Actual:
    """Read live-stats, deadline-alerts, portal-status and dead-letters up to their end."""
    from lienthong.connectors.headers import (
        DLQ_ERROR_CLASS,
        DLQ_SOURCE_OFFSET,
        DLQ_SOURCE_PARTITION,
        DLQ_SOURCE_TOPIC,
    )
    from lienthong.schemas import Event, decode_or_reason
    from lienthong.schemas.models import (
        ApologyIssued,
        DeadlineOverdue,
        DeadlineWarning,
        HandoffEscalated,
        LiveStatsSnapshot,
        PortalStatusRecord,
    )

    actual: Actual = {
        "stats": {},
        "overdue_dossiers": set(),
        "overdue_steps": set(),
        "warnings": {},
        "apologies": {},
        "escalations": {},
        "portal": {},
        "dead_letters": {},
        "dossier_partitions": topic_partitions(settings, "dossier-events"),
    }
    for record in read_topic(settings, "live-stats", timeout_s):
        event = decode_or_reason(record.value)
        if isinstance(event, LiveStatsSnapshot):
            actual["stats"][event.key] = {f: getattr(event, f) for f in COUNT_FIELDS}
    alert_records: Counter[str] = Counter()
    actual["read_from"] = datetime.now(UTC).isoformat()
    for record in read_topic(settings, "deadline-alerts", timeout_s):
        event = decode_or_reason(record.value)
        if not isinstance(event, Event):
            continue
        alert_records[str(event.envelope.event_id)] += 1
        dossier = event.envelope.dossier_id
        # A repeated alert (re-emitted after a crash) has the same event id: counted once.
        if isinstance(event, DeadlineOverdue):
            if event.scope.value == "dossier":
                actual["overdue_dossiers"].add(dossier)
            else:
                actual["overdue_steps"].add(f"{dossier}#{event.step}")
        elif isinstance(event, DeadlineWarning):
            actual["warnings"][str(event.envelope.event_id)] = {
                "dossier": dossier,
                "key": f"{event.scope.value} warning"
                + (f" step {event.step}" if event.step else ""),
            }
        elif isinstance(event, ApologyIssued):
            actual["apologies"][str(event.envelope.event_id)] = {
                "dossier": dossier,
                "responsible": event.responsible_agency,
                "new_appointment": event.new_appointment_at.isoformat(),
            }
        elif isinstance(event, HandoffEscalated):
            actual["escalations"][str(event.envelope.event_id)] = {
                "dossier": dossier,
                "step": event.step,
                "handoff_id": event.handoff_id,
                "from": event.from_agency,
                "to": event.to_agency,
            }
    actual["read_to"] = datetime.now(UTC).isoformat()
    actual["alerts_repeated"] = sum(n - 1 for n in alert_records.values())
    actual["rules"] = {
        "warning_lead_hours": settings.streams.warning_lead_hours,
        "handoff_accept_hours": settings.streams.handoff_accept_hours,
    }
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


def topic_partitions(settings: Any, name: str) -> int | None:
    """How many partitions a catalogue topic has on the broker (None if it does not exist)."""
    from kafka import KafkaConsumer

    from lienthong.connectors.kafka import kafka_python_config

    consumer = KafkaConsumer(**kafka_python_config(settings), group_id=None)
    try:
        parts = consumer.partitions_for_topic(settings.topic(name))
        return len(parts) if parts else None
    finally:
        consumer.close()


def read_topic(settings: Any, name: str, timeout_s: float) -> list[Any]:
    """All records of a catalogue topic from offset 0 to the end offsets seen now."""
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.runtime.offsets import high_watermarks

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
        # The end of each partition as the fetch responses report it (ListOffsets is only a
        # lower bound on Tansu, which under-reports it for multi-record batches).
        ends = high_watermarks(consumer, tps, timeout_s)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        consumer.close()
