"""Fault injection: turn a dossier's clean event list into what a broken world delivers.

Each fault is chosen per dossier with its own probability from a dedicated ``Random`` (so
turning a fault on never changes the clean data of other dossiers) and at most one fault hits a
dossier, which keeps the expected effect of each one unambiguous:

=================  ==========================================  ===============================
fault              what is delivered                           expected at the bus
=================  ==========================================  ===============================
duplicates         one event delivered twice (same event_id)   absorbed (de-duplication)
out_of_order       handoff_accepted before its handoff_sent    1 dead letter IllegalTransition
malformed          an extra record of garbage / cut Avro       1 dead letter NotFramed /
                                                               AvroDecodeError
invalid_transition an extra result_returned right after        1 dead letter IllegalTransition
                   receipt (fresh event_id)
unknown_agency     an extra event from agency 999.99.99.H10    1 dead letter UnknownAgency
future             an extra event dated 2099                   1 dead letter FutureEvent
bad_signature      document_signed over another hash           flagged (documents), no DLQ
=================  ==========================================  ===============================
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lienthong.schemas.models import (
    VN_TZ,
    DocumentSigned,
    Event,
    HandoffAccepted,
    HandoffSent,
    ResultReturned,
)
from lienthong.simulators.province import CENTER, GeneratedDossier, dossier_uuid

FAULTS = (
    "duplicates",
    "out_of_order",
    "malformed",
    "invalid_transition",
    "unknown_agency",
    "future",
    "bad_signature",
)
UNKNOWN_AGENCY = "999.99.99.H10"  # well-formed, not in the registry
FUTURE = datetime(2099, 1, 1, 8, 0, tzinfo=VN_TZ)


@dataclass
class FaultConfig:
    """Probability per dossier of each fault (0 disables it)."""

    rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def all_on(cls, rate: float = 0.01) -> FaultConfig:
        return cls(dict.fromkeys(FAULTS, rate))

    @property
    def active(self) -> bool:
        return any(v > 0 for v in self.rates.values())


@dataclass(frozen=True)
class Delivery:
    """One record to produce: an event (encoded at send time) or raw bytes."""

    topic: str  # catalogue name (prefix applied by the producer)
    key: str
    event: Event | None = None
    raw: bytes | None = None
    fault: str | None = None
    expect: str | None = None  # dead-letter error class the bus must report, if any


@dataclass
class InjectedDossier:
    deliveries: list[Delivery]
    fault: str | None
    expected_dead_letters: dict[str, int]
    absorbed: dict[str, int]
    flagged: dict[str, int]


def _copy(event: Event, **envelope: Any) -> Event:
    data = event.model_dump()
    data["envelope"] = {**data["envelope"], **envelope}
    return type(event).model_validate(data)


def inject(dossier: GeneratedDossier, faults: FaultConfig, seed: int) -> InjectedDossier:
    clean = [Delivery(e.TOPIC, dossier.dossier_id, event=e) for e in dossier.events]
    result = InjectedDossier(clean, None, {}, {}, {})
    if not faults.active:
        return result
    rng = random.Random(f"faults:{seed}:{dossier.dossier_id}")
    roll = rng.random()
    chosen = None
    acc = 0.0
    for name in FAULTS:
        acc += faults.rates.get(name, 0.0)
        if roll < acc:
            chosen = name
            break
    if chosen is None:
        return result
    out = list(clean)
    life = [i for i, d in enumerate(out) if d.topic == "dossier-events"]
    if not life:
        return result
    key = dossier.dossier_id
    first = out[life[0]].event
    assert first is not None

    def extra(event: Event, expect: str) -> Delivery:
        return Delivery("dossier-events", key, event=event, fault=chosen, expect=expect)

    if chosen == "duplicates":
        i = rng.choice(life)
        out.insert(i + 1, Delivery(out[i].topic, key, event=out[i].event, fault=chosen))
        result.absorbed["duplicates"] = 1
    elif chosen == "out_of_order":
        pairs = [
            i
            for i in life[:-1]
            if isinstance(out[i].event, HandoffSent)
            and isinstance(out[i + 1].event, HandoffAccepted)
        ]
        if not pairs:
            return result
        i = rng.choice(pairs)
        out[i], out[i + 1] = (
            Delivery(
                out[i + 1].topic,
                key,
                event=out[i + 1].event,
                fault=chosen,
                expect="IllegalTransition",
            ),
            out[i],
        )
        result.expected_dead_letters["IllegalTransition"] = 1
    elif chosen == "malformed":
        eid = dossier_uuid(seed, key, "malformed")
        if rng.random() < 0.5:
            raw = b"{not avro: " + eid.hex.encode() + b"}"
            expect = "NotFramed"
        else:
            raw = b"\x00" + b"\x00\x00\x00\x00" + eid.bytes  # framed, schema id 0: unknown
            expect = "UnknownSchemaId"
        out.insert(
            life[0] + 1, Delivery("dossier-events", key, raw=raw, fault=chosen, expect=expect)
        )
        result.expected_dead_letters[expect] = 1
    elif chosen == "invalid_transition":
        bogus = ResultReturned.create(
            dossier_id=key,
            producer_agency=CENTER,
            occurred_at=first.envelope.occurred_at,
            recorded_at=first.envelope.occurred_at,
            event_id=dossier_uuid(seed, key, "invalid"),
            agency=CENTER,
            method="counter",
        )
        out.insert(life[0] + 1, extra(bogus, "IllegalTransition"))
        result.expected_dead_letters["IllegalTransition"] = 1
    elif chosen == "unknown_agency":
        bogus = _copy(
            first, event_id=dossier_uuid(seed, key, "unknown"), producer_agency=UNKNOWN_AGENCY
        )
        out.insert(life[0] + 1, extra(bogus, "UnknownAgency"))
        result.expected_dead_letters["UnknownAgency"] = 1
    elif chosen == "future":
        bogus = _copy(
            first,
            event_id=dossier_uuid(seed, key, "future"),
            occurred_at=FUTURE,
            recorded_at=FUTURE,
        )
        out.insert(life[0] + 1, extra(bogus, "FutureEvent"))
        result.expected_dead_letters["FutureEvent"] = 1
    elif chosen == "bad_signature":
        signed = [i for i, d in enumerate(out) if isinstance(d.event, DocumentSigned)]
        if not signed:
            return result
        i = signed[0]
        wrong = hashlib.sha256(f"tampered:{key}".encode()).hexdigest()
        data = out[i].event.model_dump()  # type: ignore[union-attr]
        data["content_sha256"] = wrong
        out[i] = Delivery("documents", key, event=DocumentSigned.model_validate(data), fault=chosen)
        result.flagged["bad_signature"] = 1
    result.deliveries = out
    result.fault = chosen
    return result
