"""Turn the simulation into records on the bus: replay (simulated clock) or paced (a past window
sent at a fixed rate). Real-time live mode is ``simulators/live.py``; it shares the delivery
times and the truth folding defined here.

Both modes merge all dossiers into one stream ordered by event time, so the deadline
processors see time move forward (event time), while each dossier's records keep their
delivery order (key = dossier id, one partition, ``max_in_flight=1`` so retries cannot reorder).
Dossiers are generated in arrival order and merged through a heap, so memory holds only the
dossiers still open, not the whole period.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lienthong.schemas.models import VN_TZ, Event
from lienthong.simulators.faults import Delivery, FaultConfig, inject
from lienthong.simulators.province import ProvinceSimulator, SimConfig
from lienthong.simulators.truth import DossierTruth, TruthBuilder, fold_dossier

GATE_CLASSES = frozenset(
    {
        "NotFramed",
        "UnknownSchemaId",
        "AvroDecodeError",
        "UnknownAgency",
        "FutureEvent",
        "ValidationFailed",
    }
)

Encoder = Callable[[Event], bytes]


@dataclass(order=True)
class Record:
    """A record ready to produce: catalogue topic, key, value bytes, event time for pacing."""

    at: datetime
    seq: int
    topic: str = field(compare=False)
    key: str = field(compare=False)
    value: bytes = field(compare=False)
    fault: str | None = field(compare=False, default=None)


@dataclass
class Plan:
    """Iterates records in event-time order while filling the truth builder."""

    config: SimConfig
    faults: FaultConfig
    encoder: Encoder
    period_kinds: tuple[str, ...] = ("month",)
    truth: TruthBuilder = field(init=False)
    fault_counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.truth = TruthBuilder(self.config.period, self.period_kinds)
        self.sim = ProvinceSimulator(self.config)

    def records(self) -> Iterator[Record]:
        heap: list[Record] = []
        seq = 0
        for index, dossier in enumerate(self.sim.dossiers()):
            injected = inject(dossier, self.faults, self.config.seed)
            if injected.fault:
                self.fault_counts[injected.fault] += 1
            add_folded(
                self.truth, fold_delivered(dossier.dossier_id, injected.deliveries, injected)
            )
            times = delivery_times(injected.deliveries)
            for d, at in zip(injected.deliveries, times, strict=True):
                value = d.raw if d.raw is not None else self.encoder(d.event)  # type: ignore[arg-type]
                seq += 1
                heapq.heappush(heap, Record(at, seq, d.topic, d.key, value, d.fault))
            # Everything before this dossier's arrival day, less the postal pick-up lead time
            # (≤ 2 days), is final: later dossiers arrive on the same day or later.
            day = self.sim.day_of(index)
            horizon = datetime.combine(day - timedelta(days=3), datetime.min.time(), VN_TZ)
            while heap and heap[0].at < horizon:
                yield heapq.heappop(heap)
        while heap:
            yield heapq.heappop(heap)

    def truth_json(self) -> dict[str, Any]:
        cfg = self.config
        meta = {
            "seed": cfg.seed,
            "period": cfg.period.key,
            "dossiers": cfg.dossier_count(),
            "faults": {k: v for k, v in self.faults.rates.items() if v},
            "faults_injected": dict(self.fault_counts),
            "period_kinds": list(self.period_kinds),
        }
        return self.truth.to_json(meta)


def delivery_times(deliveries: list[Delivery]) -> list[datetime]:
    """When each record may be sent: its event time, never before the previous record's.

    Raw bytes and the deliberately future-dated copy have no usable time of their own and
    travel right after the record before them, which keeps each dossier's delivery order.
    """
    times: list[datetime] = []
    last_at: datetime | None = None
    for d in deliveries:
        at = d.event.envelope.occurred_at if d.event is not None else last_at
        if at is None or (last_at is not None and at < last_at) or d.fault == "future":
            at = last_at or at
        if at is None:  # raw bytes first: take the first event's time
            at = next(x.event.envelope.occurred_at for x in deliveries if x.event is not None)
        times.append(at)
        last_at = at
    return times


@dataclass
class Folded:
    """One dossier's share of the ground truth, kept compact until the truth is written."""

    truth: DossierTruth
    records: int
    gate_dead_letters: Counter[str]
    absorbed: dict[str, int]
    flagged: dict[str, int]


def fold_delivered(dossier_id: str, deliveries: list[Delivery], injected: Any) -> Folded:
    """Fold what was delivered for one dossier: lifecycle events the gate lets through, with
    the rules (``fold_dossier``); gate rejections counted by expected class."""
    life = [
        d.event
        for d in deliveries
        if d.topic == "dossier-events" and d.event is not None and d.expect not in GATE_CLASSES
    ]
    gate: Counter[str] = Counter(d.expect for d in deliveries if d.expect in GATE_CLASSES)
    return Folded(
        fold_dossier(dossier_id, life),  # type: ignore[arg-type]
        len(deliveries),
        gate,
        dict(injected.absorbed),
        dict(injected.flagged),
    )


def add_folded(truth: TruthBuilder, folded: Folded) -> None:
    truth.add(folded.truth)
    truth.events += folded.records
    truth.dead_letters.update(folded.gate_dead_letters)
    truth.absorbed.update(folded.absorbed)
    truth.flagged.update(folded.flagged)


def produce(
    records: Iterator[Record],
    send: Callable[[Record], None],
    *,
    rate: float | None = None,
    wall_clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every record; with ``rate`` (records/s) pace them (live mode). Returns the count."""
    n = 0
    started = wall_clock()
    for record in records:
        if rate:
            ahead = started + n / rate - wall_clock()
            if ahead > 0:
                sleep(ahead)
        send(record)
        n += 1
    return n
