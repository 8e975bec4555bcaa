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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from lienthong.domain.lifecycle import EventKind
from lienthong.domain.stats import FIGURES, parse_period
from lienthong.domain.tracking import NOTES as _NOTES  # read-only: the tracker's own wording
from lienthong.logs import get_logger

log = get_logger(__name__)

# The counts a live-stats snapshot carries (its channel counts travel as rates).
STATS_FIELDS = tuple(f for f in FIGURES if f not in ("received_online", "received_postal"))
# The order of the figures tuple kept per key.
_ORDER = (*STATS_FIELDS, "received_online", "received_postal")


# TrangThaiHoSo of a dossier whose processing is over: 3 không được tiếp nhận, 7 rút hồ sơ,
# 8 dừng xử lý, 9 đã xử lý xong, 10 đã trả kết quả.
ENDED_PORTAL_CODES = frozenset({3, 7, 8, 9, 10})
# The progress line (NoiDungXuLy) the tracker writes for a step handed back: how a portal
# record says that a step's notices are over.
RETURNED_NOTE = _NOTES[EventKind.HANDOFF_RETURNED]


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


@dataclass(frozen=True)
class Limits:
    """How much the console holds: a province runs for years, and every dossier it ever saw
    would otherwise stay in memory. What a bound drops is counted in ``BusState.dropped``."""

    day_label_days: int = 400  # day figures: this year's chart and the same days a year ago
    period_label_days: int = 3 * 366  # month / quarter / year figures
    # A dossier's end or a step's return is remembered this long on the alerts' clock, for
    # an alert read after it (start-up reads the topics side by side) and for a correction.
    closed_window: timedelta = timedelta(days=2)
    max_closed: int = 200_000
    max_alerts: int = 100_000
    escalation_days: int = 90  # stuck handoffs listed this long after their accept-by
    max_escalations: int = 50_000
    ops_alert_days: int = 30  # the topic's retention
    max_ops_alerts: int = 10_000
    max_dead_letters: int = 5_000  # the newest; older ones: ``lienthong dlq list``


@dataclass
class Closed:
    """What has ended for one dossier: the dossier itself, and steps handed back by an
    agency (latest instant per agency)."""

    at: datetime | None  # the latest of these instants: when the entry may be forgotten
    ended: bool = False
    returned: dict[str, datetime] = field(default_factory=dict)


_SWEEP_EVERY = timedelta(hours=1)  # of the bus's clock, between two sweeps of the state


@lru_cache(maxsize=8192)
def _period_end(label: str) -> tuple[datetime, bool] | None:
    """(end, is a day) of a period label, None if it is not one; cached: every snapshot asks."""
    try:
        period = parse_period(label)
    except (ValueError, IndexError):
        return None
    return period.end, period.kind == "day"


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


@dataclass
class BusState:
    """In-memory copy of the console's topics; ``version`` grows with every change.

    Bounded (see :class:`Limits`): figures of periods long past, ended dossiers' alerts and
    handoffs, step notices of returned steps, warnings past their due, old operational alerts
    and the oldest dead letters are dropped, each counted in ``dropped``.
    """

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
    limits: Limits = field(default_factory=Limits, repr=False)
    dropped: Counter[str] = field(default_factory=Counter)  # what a bound took out, by kind
    dead_letters_dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Per dossier: what ended, oldest first (insertion order is the forgetting order).
    closed: dict[str, Closed] = field(default_factory=dict, repr=False)
    # The latest alert instant per deadline-alerts partition: the slowest is the alerts' clock.
    alert_clocks: dict[int, datetime] = field(default_factory=dict, repr=False)
    _keys_of: dict[str, set[str]] = field(default_factory=dict, repr=False)  # dossier → keys
    _pruned_at: datetime | None = field(default=None, repr=False)
    _latest: datetime | None = field(default=None, repr=False)  # the newest clock reading
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
            if self.as_of is None or event.as_of > self.as_of:
                self.as_of = event.as_of
                if self._latest is None or event.as_of > self._latest:
                    self._latest = event.as_of
            if self._expired(label, self.as_of):
                self.dropped["stats_snapshots"] += 1  # a period no page shows any more
                return
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
            self.version += 1
            self._maybe_prune()

    def _expired(self, label: str, now: datetime | None) -> bool:
        """Whether a period ended longer ago than its retention (labels are well formed: the
        workers wrote them; anything else is kept)."""
        if now is None:
            return False
        ends = _period_end(label)
        if ends is None:
            return False
        end, is_day = ends
        keep = self.limits.day_label_days if is_day else self.limits.period_label_days
        return end + timedelta(days=keep) < now

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

    def put_alert(self, event: Any, partition: int = 0) -> None:
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
            self._tick(partition, alert.occurred_at)
            closed = self.closed.get(dossier)
            if alert.scope == "step" and closed is not None:
                returned = closed.returned.get(alert.agency)
                if returned is not None and returned >= alert.occurred_at:
                    return  # the step was handed back before this notice was read
            old = self.alerts.get(key)
            # An overdue notice outranks a warning of the same dossier/step, whatever the order.
            if old is None or old.kind == alert.kind or alert.kind == "overdue":
                self.alerts.pop(key, None)  # re-inserted last: the cap drops the oldest first
                self.alerts[key] = alert
                self._keys_of.setdefault(dossier, set()).add(key)
                self.version += 1
                self._cap(self.alerts, self.limits.max_alerts, "alerts")
            self._maybe_prune()

    def put_escalation(self, event: Any, partition: int = 0) -> None:
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
            occurred = getattr(event.envelope, "occurred_at", None)
            if occurred is not None:
                self._tick(partition, occurred)
            if self._escalation_expired(escalation):
                self.dropped["escalations"] += 1
                return
            self.escalations.pop(escalation.handoff_id, None)
            self.escalations[escalation.handoff_id] = escalation
            self._keys_of.setdefault(escalation.dossier_id, set()).add(f"h:{escalation.handoff_id}")
            self.version += 1
            self._cap(self.escalations, self.limits.max_escalations, "escalations")

    def put_ops_alert(self, alert: dict[str, Any]) -> None:
        """A ``monitoring-alerts`` record (JSON: alert_type, alert_id, dossier_id, reason …)."""
        alert_id = str(alert.get("alert_id") or alert.get("alert_type") or "?")
        with self.lock:
            if self._ops_expired(alert):
                self.dropped["ops_alerts"] += 1
                return
            self.ops_alerts.pop(alert_id, None)
            self.ops_alerts[alert_id] = alert
            self.version += 1
            self._cap(self.ops_alerts, self.limits.max_ops_alerts, "ops_alerts")

    def _escalation_expired(self, escalation: Escalation) -> bool:
        if self.as_of is None:
            return False
        return escalation.accept_due_at + timedelta(days=self.limits.escalation_days) < self.as_of

    def _ops_expired(self, alert: dict[str, Any]) -> bool:
        try:
            raised = datetime.fromisoformat(str(alert.get("raised_at")))
        except ValueError:
            return False  # no instant: kept until the cap takes it
        if self.as_of is None or raised.tzinfo is None:
            return False
        return raised + timedelta(days=self.limits.ops_alert_days) < self.as_of

    def put_portal_status(
        self,
        dossier_id: str,
        code: int,
        *,
        agency: str | None = None,
        note: str = "",
        at: datetime | None = None,
    ) -> None:
        """A portal status record: the dossier's end (or a correction reopening it), and —
        from the record's own progress line — a step handed back by ``agency``, which takes
        that agency's step notices of the dossier off the overdue list (the tracker
        publishes no cancellation on ``deadline-alerts``)."""
        returned = note.startswith(RETURNED_NOTE)
        with self.lock:
            before = dossier_id in self.ended
            closed = self.closed.get(dossier_id)
            if code in ENDED_PORTAL_CODES or returned or closed is not None:
                closed = self.closed.pop(dossier_id, None) or Closed(at=at)
                self.closed[dossier_id] = closed  # last: forgotten after the older ones
                closed.at = _later(closed.at, at)
                closed.ended = code in ENDED_PORTAL_CODES
            if code in ENDED_PORTAL_CODES:
                self.ended.add(dossier_id)
            else:
                self.ended.discard(dossier_id)
            changed = before != (dossier_id in self.ended)
            if agency and at is not None and closed is not None and returned:
                closed.returned[agency] = _later(closed.returned.get(agency), at) or at
                changed |= self._close_step(dossier_id, agency, at)
            if changed:
                self.version += 1
            self._cap(self.closed, self.limits.max_closed, "closed")
            self._maybe_prune()

    def _close_step(self, dossier: str, agency: str, at: datetime) -> bool:
        """Drop the dossier's step notices of ``agency`` raised before ``at``."""
        gone = [
            k
            for k in self._keys_of.get(dossier, ())
            if (a := self.alerts.get(k)) is not None
            and a.scope == "step"
            and a.agency == agency
            and a.occurred_at <= at
        ]
        for k in gone:
            del self.alerts[k]
            self._unindex(dossier, k)
        return bool(gone)

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self.lock:
            self.dead_letters[(letter.partition, letter.offset)] = letter
            self.version += 1
            self.dlq_version += 1
            while len(self.dead_letters) > self.limits.max_dead_letters:
                address = next(iter(self.dead_letters))
                old = self.dead_letters.pop(address)
                self.redrives.pop(address, None)
                d = {n: v.decode("utf-8", "replace") for n, v in old.headers}
                source = d.get("lienthong.dlq.source.topic", "?")
                self.dead_letters_dropped[(source, d.get("lienthong.dlq.error.class", "?"))] += 1
                self.dropped["dead_letters"] += 1

    def note_redrive(self, address: tuple[int, int], by: str, at: str, to: str) -> None:
        with self.lock:
            self.redrives[address] = {"by": by, "at": at, "to": to}
            self.version += 1
            self.dlq_version += 1
            self._cap(self.redrives, 2 * self.limits.max_dead_letters, "redrives")

    # -- bounds ------------------------------------------------------------------------

    def _tick(self, partition: int, instant: datetime) -> None:
        clock = self.alert_clocks.get(partition)
        if clock is None or instant > clock:
            self.alert_clocks[partition] = instant
            if self._latest is None or instant > self._latest:
                self._latest = instant

    def _cap(self, table: dict[Any, Any], limit: int, name: str) -> None:
        """Drop the oldest entries (insertion order) beyond ``limit``, counting them."""
        while len(table) > limit:
            key = next(iter(table))
            entry = table.pop(key)
            self.dropped[name] += 1
            if name == "closed":
                self.ended.discard(key)
            elif isinstance(entry, Alert | Escalation):
                self._unindex(entry.dossier_id, key if isinstance(entry, Alert) else f"h:{key}")

    def _maybe_prune(self) -> None:
        """At most once per hour of the bus's clock (a sweep costs the entries held)."""
        latest = self._latest
        if latest is None:
            return
        if self._pruned_at is not None and latest - self._pruned_at < _SWEEP_EVERY:
            return
        self._pruned_at = latest
        self.prune()

    def prune(self) -> None:
        """Drop what no page can show any more (caller holds the lock)."""
        now = self.as_of
        for label in [lb for lb in self.stats_by_label if self._expired(lb, now)]:
            del self.stats_by_label[label]
            self.agency_sums.pop(label, None)
            self.dropped["stats_labels"] += 1
        if now is not None:
            # A warning whose due passed without an overdue notice: done in time.
            done = [k for k, a in self.alerts.items() if a.kind == "warning" and a.due_at < now]
            for key in done:
                self._forget_key(key)
                self.dropped["warnings_past_due"] += 1
        for handoff in [i for i, e in self.escalations.items() if self._escalation_expired(e)]:
            self._forget_key(f"h:{handoff}")
            self.dropped["escalations"] += 1
        for alert_id in [i for i, a in self.ops_alerts.items() if self._ops_expired(a)]:
            del self.ops_alerts[alert_id]
            self.dropped["ops_alerts"] += 1
        # Ended dossiers: forgotten (with their alerts and handoffs) once the slowest
        # partition of deadline-alerts is past the end by the window.
        if self.alert_clocks:
            horizon = min(self.alert_clocks.values()) - self.limits.closed_window
            while self.closed:
                dossier, closed = next(iter(self.closed.items()))
                if closed.at is None or closed.at > horizon:
                    break
                del self.closed[dossier]
                if closed.ended:
                    self.ended.discard(dossier)
                    for key in list(self._keys_of.get(dossier, ())):
                        if not key.startswith("h:"):  # stuck handoffs: kept by age
                            self._forget_key(key)
                    self.dropped["ended_dossiers"] += 1

    def _forget_key(self, key: str) -> None:
        if key.startswith("h:"):
            escalation = self.escalations.pop(key[2:], None)
            dossier = escalation.dossier_id if escalation else None
        else:
            alert = self.alerts.pop(key, None)
            dossier = alert.dossier_id if alert else None
        if dossier is not None:
            self._unindex(dossier, key)

    def _unindex(self, dossier: str, key: str) -> None:
        keys = self._keys_of.get(dossier)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_of[dossier]

    def sizes(self) -> dict[str, int]:
        """How many entries each table holds (the bus-health page and the bounds' tests)."""
        with self.lock:
            return {
                "stats_labels": len(self.stats_by_label),
                "stats_keys": sum(len(k) for k in self.stats_by_label.values()),
                "alerts": len(self.alerts),
                "escalations": len(self.escalations),
                "ops_alerts": len(self.ops_alerts),
                "ended": len(self.ended),
                "closed": len(self.closed),
                "dossier_index": len(self._keys_of),
                "dead_letters": len(self.dead_letters),
                "redrives": len(self.redrives),
            }

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
                dropped=Counter(self.dropped),
                dead_letters_dropped=Counter(self.dead_letters_dropped),
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
                last = event.QuaTrinhXuLy[-1] if event.QuaTrinhXuLy else None
                self.state.put_portal_status(
                    str(event.envelope.dossier_id),
                    event.TrangThaiHoSo,
                    agency=event.DonViXuLy,
                    note=last.NoiDungXuLy if last is not None else "",
                    at=event.envelope.occurred_at,
                )
        elif topic == self.settings.topic("live-stats"):
            if event.EVENT_TYPE == "live_stats_snapshot":
                self.state.put_stats(event)
        elif event.EVENT_TYPE == "handoff_escalated":
            self.state.put_escalation(event, record.partition)
        else:
            self.state.put_alert(event, record.partition)


def read_key(settings: Any, name: str, key: str, timeout_s: float = 30.0) -> list[Any]:
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
        while True:
            if time.monotonic() > deadline:
                # A part of the key's records is no answer: the caller says so, not "none".
                raise TimeoutError(
                    f"{topic}/{tp.partition}: end not reached in {timeout_s:.0f} s "
                    f"(at offset {consumer.position(tp)}, {len(found)} records of {key!r} so far)"
                )
            batch = consumer.poll(timeout_ms=300, max_records=5000)
            for records in batch.values():
                found.extend(r for r in records if r.key == raw)
            # ListOffsets can be a lower bound (Tansu, see lienthong.runtime.offsets): the end
            # is the high watermark a fetch response reports, once one has.
            high = consumer.highwater(tp)
            if high is not None and consumer.position(tp) >= max(end, high):
                break
        return found
    finally:
        consumer.close()
