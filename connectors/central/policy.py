"""Pure rules of the central adapter: correlation ids, status folding, no_answer, events.

No Kafka and no HTTP here. Why deterministic ids: a repeated handoff is the same request at
the central system, and a repeated answer the same event downstream, so retries and restarts
are safe.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from lienthong.schemas.models import (
    Event,
    HandoffAccepted,
    HandoffReturned,
    HandoffSent,
    StepOutcome,
)

STATE_TOPIC = "central-requests"
ALERTS_TOPIC = "monitoring-alerts"
DOSSIER_EVENTS = "dossier-events"
CENTRAL_NS = uuid.UUID("6c3f3f1e-8a0b-5b7e-9c55-63656e747261")

# Request status, in the only order it may advance (a late or repeated answer never moves back).
PENDING = "pending"  # known, not yet delivered
SENT = "sent"  # delivered (the central system answered POST /requests)
ACKNOWLEDGED = "acknowledged"
ANSWERED = "answered"
_RANK = {PENDING: 0, SENT: 1, ACKNOWLEDGED: 2, ANSWERED: 3}
_REMOTE_RANK = {"received": 1, "acknowledged": 2, "answered": 3}


def correlation_id(dossier_id: str, handoff_id: str, to_agency: str) -> str:
    """Deterministic: the same handoff always maps to the same request at the central system."""
    return str(uuid.uuid5(CENTRAL_NS, f"{dossier_id}|{handoff_id}|{to_agency}"))


def event_id_for(cid: str, kind: str) -> uuid.UUID:
    return uuid.uuid5(CENTRAL_NS, f"{cid}|{kind}")


@dataclass(frozen=True)
class CentralRequest:
    """One request to a central system; the value kept on ``central-requests``."""

    correlation_id: str
    dossier_id: str
    handoff_id: str
    central_agency: str
    from_agency: str
    step: int
    step_due_at: str
    handoff_event_id: str
    trace_id: str
    created_at: float  # wall clock (epoch s) the adapter first saw the handoff
    status: str = PENDING
    attempts: int = 0
    sent_at: float | None = None
    outcome: str | None = None  # completed | rejected | supplement_needed | no_answer
    note: str | None = None
    acknowledged_at: str | None = None
    answered_at: str | None = None
    accepted_published: bool = False
    returned_published: bool = False
    no_answer: bool = False
    no_answer_reason: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CentralRequest:
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def done(self) -> bool:
        """Nothing left to do: answered and both events on the bus."""
        return self.status == ANSWERED and self.returned_published

    def payload(self, callback_url: str | None) -> dict[str, Any]:
        """Body of ``POST /requests``: the step the central agency has to perform."""
        body: dict[str, Any] = {
            "correlation_id": self.correlation_id,
            "dossier_id": self.dossier_id,
            "handoff_id": self.handoff_id,
            "step": self.step,
            "from_agency": self.from_agency,
            "to_agency": self.central_agency,
            "step_due_at": self.step_due_at,
        }
        if callback_url:
            body["callback_url"] = callback_url
        return body


def request_for(
    event: Event, endpoints: dict[str, str], known: dict[str, CentralRequest], now: float
) -> CentralRequest | None:
    """A new request for a HandoffSent to a configured central agency; None if not ours or
    already known (a re-read handoff after a restart must not create a second request)."""
    if not isinstance(event, HandoffSent) or event.to_agency not in endpoints:
        return None
    dossier = event.envelope.dossier_id or ""
    cid = correlation_id(dossier, event.handoff_id, event.to_agency)
    if cid in known:
        return None
    return CentralRequest(
        correlation_id=cid,
        dossier_id=dossier,
        handoff_id=event.handoff_id,
        central_agency=event.to_agency,
        from_agency=event.from_agency,
        step=event.step,
        step_due_at=event.step_due_at.isoformat(),
        handoff_event_id=str(event.envelope.event_id),
        trace_id=event.envelope.trace_id,
        created_at=now,
    )


def apply_remote(req: CentralRequest, remote: dict[str, Any]) -> tuple[CentralRequest, list[str]]:
    """Fold the central system's view of the request into ours.

    Returns the new state and the events now due, in order (``accepted``, ``returned``). The
    status only advances; an answer implies the acknowledgement (some systems skip it). An
    answer with an unknown outcome raises ValueError (the caller reports it; nothing invented).
    """
    status = str(remote.get("status", ""))
    rank = _REMOTE_RANK.get(status)
    if rank is None:
        raise ValueError(f"status: {status!r} is not received|acknowledged|answered")
    changes: dict[str, Any] = {}
    if rank >= 2 and _RANK[req.status] < 2:
        changes["status"] = ACKNOWLEDGED
        changes["acknowledged_at"] = remote.get("acknowledged_at") or remote.get("answered_at")
    if rank == 3 and req.status != ANSWERED:
        outcome = remote.get("outcome")
        if outcome not in {o.value for o in StepOutcome}:
            raise ValueError(f"outcome: {outcome!r} is not one of {[o.value for o in StepOutcome]}")
        changes.update(
            status=ANSWERED,
            outcome=outcome,
            note=remote.get("note"),
            answered_at=remote.get("answered_at"),
        )
    if rank >= 1 and req.status == PENDING and "status" not in changes:
        changes["status"] = SENT
    new = replace(req, **changes) if changes else req
    due: list[str] = []
    if _RANK[new.status] >= 2 and not new.accepted_published:
        due.append("accepted")
    if new.status == ANSWERED and not new.returned_published:
        due.append("returned")
    return new, due


def answer_overdue(req: CentralRequest, now: float, answer_timeout_s: float) -> bool:
    """No result within the window (counted from the first delivery, or from first sight if
    never delivered), and not yet declared."""
    if req.no_answer or req.status == ANSWERED:
        return False
    start = req.sent_at if req.sent_at is not None else req.created_at
    return now - start >= answer_timeout_s


def mark_no_answer(req: CentralRequest, reason: str) -> CentralRequest:
    return replace(req, no_answer=True, no_answer_reason=reason, outcome=req.outcome or "no_answer")


def no_answer_alert(req: CentralRequest, now: datetime) -> dict[str, Any]:
    """Alert record on monitoring-alerts (same shape family as streams.monitor's)."""
    return {
        "alert_type": "central_no_answer",
        "alert_id": f"{STATE_TOPIC}:{req.correlation_id}:no_answer",
        "raised_at": now.isoformat(),
        "dossier_id": req.dossier_id,
        "handoff_id": req.handoff_id,
        "step": req.step,
        "central_agency": req.central_agency,
        "from_agency": req.from_agency,
        "correlation_id": req.correlation_id,
        "attempts": req.attempts,
        "reason": req.no_answer_reason,
        "consumer": "connectors.central",
    }


def build_event(req: CentralRequest, kind: str, now: datetime) -> Event:
    """HandoffAccepted / HandoffReturned produced on the central agency's behalf."""

    def at(value: str | None) -> datetime:
        if value:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        return now

    common: dict[str, Any] = {
        "event_id": event_id_for(req.correlation_id, kind),
        "dossier_id": req.dossier_id,
        "producer_agency": req.central_agency,
        "trace_id": req.trace_id,
        "causation_id": uuid.UUID(req.handoff_event_id),
        "handoff_id": req.handoff_id,
        "from_agency": req.from_agency,
        "to_agency": req.central_agency,
        "step": req.step,
    }
    if kind == "accepted":
        return HandoffAccepted.create(occurred_at=at(req.acknowledged_at), **common)
    return HandoffReturned.create(
        occurred_at=at(req.answered_at), outcome=req.outcome, note=req.note, **common
    )


def counters(states: dict[str, CentralRequest]) -> dict[str, int]:
    """Health figures, derived from the persisted state so they survive a restart."""
    values = list(states.values())
    return {
        "requests": len(values),
        "sent": sum(r.sent_at is not None for r in values),
        "acknowledged": sum(_RANK[r.status] >= 2 for r in values),
        "answered": sum(r.status == ANSWERED for r in values),
        "no_answer": sum(r.no_answer for r in values),
        "pending": sum(r.status != ANSWERED for r in values),
    }
