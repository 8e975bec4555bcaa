"""What the console knows: the bus's topics read into memory by one background thread.

Why read topics instead of asking the workers: ``live-stats`` (compacted, latest snapshot per
key), ``deadline-alerts`` and ``dead-letters`` are the bus's published views for monitoring
consoles; reading them with manual assignment (no consumer group) never moves anyone's
offsets and works with any number of workers. The thread only appends to :class:`BusState`;
pages read a consistent copy under its lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lienthong.domain.stats import FIGURES
from lienthong.logs import get_logger

log = get_logger(__name__)

# The counts a live-stats snapshot carries (its channel counts travel as rates).
STATS_FIELDS = tuple(f for f in FIGURES if f not in ("received_online", "received_postal"))
# The order of the figures tuple kept per key.
_ORDER = (*STATS_FIELDS, "received_online", "received_postal")


# TrangThaiHoSo of a dossier whose processing is over: 3 không được tiếp nhận, 7 rút hồ sơ,
# 8 dừng xử lý, 9 đã xử lý xong, 10 đã trả kết quả.
ENDED_PORTAL_CODES = frozenset({3, 7, 8, 9, 10})


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, untouched (the redrive sends exactly this)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Alert:
    """The latest deadline alert of one dossier (or one of its steps)."""

    dossier_id: str
    kind: str  # overdue | warning
    scope: str  # dossier | step
    agency: str
    step: int | None
    due_at: datetime
    minutes: int  # working minutes over (overdue) or left (warning)
    occurred_at: datetime


@dataclass(frozen=True)
class Escalation:
    """A handoff not accepted within its window (chuyển hồ sơ chưa được tiếp nhận)."""

    dossier_id: str
    handoff_id: str
    step: int
    from_agency: str
    to_agency: str
    sent_at: datetime
    accept_due_at: datetime


@dataclass
class BusState:
    """In-memory copy of the console's topics; ``version`` grows with every change."""

    # Period label → {agency|procedure|channel|label: figures}: a page reads one period (and
    # its days), never the whole province-year of keys.
    stats_by_label: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    agency_sums: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    dead_letters: dict[tuple[int, int], DeadLetter] = field(default_factory=dict)
    redrives: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)
    escalations: dict[str, Escalation] = field(default_factory=dict)  # by handoff id
    ops_alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by alert id
    # Dossiers whose processing has ended (portal status refused, withdrawn, stopped,
    # finished, returned): no longer on the overdue list; their lateness is in the figures.
    ended: set[str] = field(default_factory=set)
    version: int = 0
    dlq_version: int = 0  # dead letters and redrives only: that page is not redrawn per count
    as_of: datetime | None = None  # the latest figures' as_of: the bus's clock
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put_stats(self, event: Any) -> None:
        """A ``LiveStatsSnapshot``: counts, and the channel counts its rates stand for."""
        received = event.received
        figures = (
            *(int(getattr(event, f)) for f in STATS_FIELDS),
            round((event.online_rate or 0) * received),
            round((event.postal_rate or 0) * received),
        )
        agency, _, rest = event.key.partition("|")
        label = rest.rsplit("|", 1)[1]
        with self.lock:
            # Only a tuple per key (memory: a province-year has hundreds of thousands of
            # keys), kept to take a replaced snapshot out of the per-agency sums, which are
            # what pages read: a page costs the agencies, not the agency × procedure × channel
            # keys.
            keys = self.stats_by_label.setdefault(label, {})
            old = keys.get(event.key)
            keys[event.key] = figures
            acc = self.agency_sums.setdefault(label, {}).setdefault(
                agency, dict.fromkeys(FIGURES, 0)
            )
            for i, name in enumerate(_ORDER):
                acc[name] += figures[i] - (old[i] if old else 0)
            if self.as_of is None or event.as_of > self.as_of:
                self.as_of = event.as_of
            self.version += 1

    def sums_of(self, labels: Iterable[str]) -> dict[str, dict[str, dict[str, int]]]:
        """label → agency → summed figures, for these labels (a copy)."""
        with self.lock:
            return {
                label: {a: dict(f) for a, f in self.agency_sums.get(label, {}).items()}
                for label in labels
            }

    def stats_of(self, labels: Iterable[str]) -> dict[str, dict[str, int]]:
        """The snapshots of these period labels by full key (a copy, as dicts)."""
        out: dict[str, dict[str, int]] = {}
        with self.lock:
            for label in labels:
                for key, figures in self.stats_by_label.get(label, {}).items():
                    out[key] = dict(zip(_ORDER, figures, strict=True))
        return out

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Every snapshot by full key (a copy; tests and small tools)."""
        with self.lock:
            labels = list(self.stats_by_label)
        return self.stats_of(labels)

    def put_alert(self, event: Any) -> None:
        kind = {"deadline_overdue": "overdue", "deadline_warning": "warning"}.get(event.EVENT_TYPE)
        if kind is None:
            return
        dossier = str(event.envelope.dossier_id)
        minutes = (
            event.overdue_working_minutes if kind == "overdue" else event.remaining_working_minutes
        )
        alert = Alert(
            dossier_id=dossier,
            kind=kind,
            scope=event.scope.value,
            agency=event.responsible_agency,
            step=event.step,
            due_at=event.due_at,
            minutes=minutes,
            occurred_at=event.envelope.occurred_at,
        )
        key = f"{dossier}#{event.step or ''}"
        with self.lock:
            old = self.alerts.get(key)
            # An overdue notice outranks a warning of the same dossier/step, whatever the order.
            if old is None or old.kind == alert.kind or alert.kind == "overdue":
                self.alerts[key] = alert
                self.version += 1

    def put_escalation(self, event: Any) -> None:
        escalation = Escalation(
            str(event.envelope.dossier_id),
            event.handoff_id,
            event.step,
            event.from_agency,
            event.to_agency,
            event.sent_at,
            event.accept_due_at,
        )
        with self.lock:
            self.escalations[escalation.handoff_id] = escalation
            self.version += 1

    def put_ops_alert(self, alert: dict[str, Any]) -> None:
        """A ``monitoring-alerts`` record (JSON: alert_type, alert_id, dossier_id, reason …)."""
        alert_id = str(alert.get("alert_id") or alert.get("alert_type") or "?")
        with self.lock:
            self.ops_alerts[alert_id] = alert
            self.version += 1

    def put_portal_status(self, dossier_id: str, code: int) -> None:
        with self.lock:
            before = dossier_id in self.ended
            if code in ENDED_PORTAL_CODES:
                self.ended.add(dossier_id)
            else:
                self.ended.discard(dossier_id)
            if before != (dossier_id in self.ended):
                self.version += 1

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self.lock:
            self.dead_letters[(letter.partition, letter.offset)] = letter
            self.version += 1
            self.dlq_version += 1

    def note_redrive(self, address: tuple[int, int], by: str, at: str, to: str) -> None:
        with self.lock:
            self.redrives[address] = {"by": by, "at": at, "to": to}
            self.version += 1
            self.dlq_version += 1

    def snapshot(self) -> BusState:
        """A copy for one page render (the reader thread keeps writing the original); the
        figures are not copied, see :meth:`stats_of`."""
        with self.lock:
            return BusState(
                alerts=dict(self.alerts),
                dead_letters=dict(self.dead_letters),
                redrives=dict(self.redrives),
                escalations=dict(self.escalations),
                ops_alerts=dict(self.ops_alerts),
                ended=set(self.ended),
                version=self.version,
                dlq_version=self.dlq_version,
                as_of=self.as_of,
            )  # figures are not copied: read them per period with stats_of / sums_of


class TopicReader:
    """Background thread: tail the console's topics into a :class:`BusState`."""

    TOPICS = ("live-stats", "deadline-alerts", "dead-letters", "monitoring-alerts", "portal-status")

    def __init__(self, settings: Any, state: BusState) -> None:
        self.settings = settings
        self.state = state
        self.stop = threading.Event()
        self.ready = threading.Event()  # set once every topic was read to its end once
        self.thread = threading.Thread(target=self._run, name="console-reader", daemon=True)

    def start(self) -> TopicReader:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._tail()
            except Exception as exc:  # broker away: say so and try again
                log.warning("console_reader_error", error=f"{type(exc).__name__}: {exc}")
                self.stop.wait(2.0)

    def _tail(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from lienthong.connectors.kafka import kafka_python_config

        # A short broker-side wait: a new snapshot should reach the page well within 2 s.
        consumer = KafkaConsumer(
            **kafka_python_config(self.settings),
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
        )
        try:
            assigned: set[Any] = set()
            last_check = 0.0
            while not self.stop.is_set():
                if time.monotonic() - last_check > 5.0 or not assigned:
                    # Topics (and partitions) may appear after the console started.
                    wanted = set()
                    for name in self.TOPICS:
                        topic = self.settings.topic(name)
                        for p in consumer.partitions_for_topic(topic) or ():
                            wanted.add(TopicPartition(topic, p))
                    if wanted - assigned:
                        new = wanted - assigned
                        consumer.assign(sorted(wanted, key=lambda tp: (tp.topic, tp.partition)))
                        consumer.seek_to_beginning(*new)
                        assigned = wanted
                    last_check = time.monotonic()
                    if not assigned:
                        self.stop.wait(1.0)
                        continue
                batch = consumer.poll(timeout_ms=500, max_records=5000)
                if not batch and assigned:
                    self.ready.set()
                for tp, records in batch.items():
                    for record in records:
                        self._apply(tp.topic, record)
        finally:
            consumer.close()

    def _apply(self, topic: str, record: Any) -> None:
        from lienthong.schemas import Event, decode_or_reason

        if topic == self.settings.topic("dead-letters"):
            headers = tuple((name, bytes(value or b"")) for name, value in record.headers or ())
            letter = DeadLetter(
                record.partition, record.offset, record.key, record.value, headers, record.timestamp
            )
            self.state.put_dead_letter(letter)
            return
        if topic == self.settings.topic("monitoring-alerts"):
            try:
                alert = json.loads(record.value or b"")
            except ValueError:
                return
            if isinstance(alert, dict):
                self.state.put_ops_alert(alert)
            return
        event = decode_or_reason(record.value)
        if not isinstance(event, Event):
            return
        if topic == self.settings.topic("portal-status"):
            if event.EVENT_TYPE == "portal_status_record":
                self.state.put_portal_status(str(event.envelope.dossier_id), event.TrangThaiHoSo)
        elif topic == self.settings.topic("live-stats"):
            if event.EVENT_TYPE == "live_stats_snapshot":
                self.state.put_stats(event)
        elif event.EVENT_TYPE == "handoff_escalated":
            self.state.put_escalation(event)
        else:
            self.state.put_alert(event)


def read_key(settings: Any, name: str, key: str, timeout_s: float = 5.0) -> list[Any]:
    """Every record of one key in a catalogue topic, oldest first (a dossier's page).

    Reads only the key's partition (murmur2, the partitioner every producer of the bus uses),
    from its start to the end seen now; manual assignment, no consumer group.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.partitioner.default import murmur2

    from lienthong.connectors.kafka import kafka_python_config

    topic = settings.topic(name)
    raw = key.encode("utf-8")
    consumer = KafkaConsumer(
        **kafka_python_config(settings),
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=100,
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return []
        tp = TopicPartition(topic, partitions[(murmur2(raw) & 0x7FFFFFFF) % len(partitions)])
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300, max_records=5000)
            for records in batch.values():
                found.extend(r for r in records if r.key == raw)
            # End offsets can be a lower bound (Tansu): stop at the first empty poll past them.
            if not batch and consumer.position(tp) >= end:
                break
        return found
    finally:
        consumer.close()
