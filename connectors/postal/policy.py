"""Pure rules of the postal connector: ids, signatures, status verdicts, scans, order state.

No Kafka and no HTTP here, so every decision is unit-tested with plain values. Why the ids are
derived (uuid5) rather than random: one scan seen by webhook, by poll and again after a restart
must be one ``PostalTracking`` event, and one delivery one ``ResultReturned``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lienthong.schemas.models import PostalKind, PostalOrderRequested, PostalTracking

NAMESPACE = uuid.UUID("0c5a3e1d-7b2f-5a64-9e18-706f7374616c")
SIGNATURE_HEADER = "X-Postal-Signature"
CONSUMER_NAME = "connectors.postal"
ALERT_PREFIX = "postal:"

PICKUP_FAMILY = frozenset({"pickup_ordered", "collected", "delivered_to_center"})
DELIVERY_FAMILY = frozenset({"result_dispatched", "delivered_to_citizen"})
CLOSING = {
    "pickup": frozenset({"delivered_to_center", "returned"}),
    "delivery": frozenset({"delivered_to_citizen", "returned"}),
}
ALERTING = frozenset({"failed", "returned"})


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def scan_event_id(tracking_code: str, kind: str, scanned_at: datetime) -> uuid.UUID:
    """Same scan, same id, whether it came by webhook, by poll, or after a restart."""
    return uuid.uuid5(NAMESPACE, f"{tracking_code}|{kind}|{_utc_iso(scanned_at)}")


def result_event_id(tracking_code: str) -> uuid.UUID:
    """One ResultReturned per delivery order, however often its delivery scan is seen."""
    return uuid.uuid5(NAMESPACE, f"{tracking_code}|result_returned")


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of ``sha256=<hex HMAC of the body>``."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip())


def classify_status(status: int) -> str:
    """``ok``, ``reject`` (the order itself is bad: dead letter) or ``retry`` (our side/theirs).

    401/403 are a credentials problem of the connector, 408/429 are the post asking us to slow
    down: neither is the order's fault, so they are retried rather than dead-lettered.
    """
    if status in (200, 201):
        return "ok"
    if 400 <= status < 500 and status not in (401, 403, 408, 429):
        return "reject"
    return "retry"


@dataclass(frozen=True)
class Scan:
    """One scan as the post reports it (webhook body or an item of the scan history)."""

    tracking_code: str
    kind: str
    place: str
    scanned_at: datetime
    note: str | None = None

    @property
    def event_id(self) -> uuid.UUID:
        return scan_event_id(self.tracking_code, self.kind, self.scanned_at)


def parse_scan(data: Any) -> Scan:
    """A :class:`Scan` from the post's JSON; ``ValueError`` names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("scan must be a JSON object")
    code = data.get("tracking_code")
    if not isinstance(code, str) or not code.strip():
        raise ValueError("tracking_code missing")
    kind = data.get("kind")
    if kind not in {k.value for k in PostalKind}:
        raise ValueError(f"unknown scan kind {kind!r}")
    place = data.get("place")
    if not isinstance(place, str) or not place.strip():
        raise ValueError("place missing")
    raw_time = data.get("scanned_at")
    if not isinstance(raw_time, str):
        raise ValueError("scanned_at missing")
    try:
        scanned_at = datetime.fromisoformat(raw_time)
    except ValueError:
        raise ValueError(f"scanned_at {raw_time!r} is not ISO 8601") from None
    if scanned_at.tzinfo is None or scanned_at.utcoffset() is None:
        raise ValueError(f"scanned_at {raw_time!r} has no timezone")
    note = data.get("note")
    return Scan(
        code.strip(), kind, place.strip(), scanned_at, note if isinstance(note, str) else None
    )


@dataclass
class Order:
    """What the connector remembers of one order (no personal data: that stays on the topic)."""

    order_id: str
    dossier_id: str
    kind: str
    agency: str
    ordered_at: datetime
    due_at: datetime | None
    tracking_code: str | None = None
    closed: bool = False
    delivered: bool = False


def due_at_for(event: PostalOrderRequested, due_hours: float) -> datetime | None:
    """Deliveries are watched; pickups are the citizen's business and are not."""
    if event.kind.value != "delivery":
        return None
    if event.deliver_by is not None:
        return event.deliver_by
    return event.envelope.occurred_at + timedelta(hours=due_hours)


def overdue_alert_id(order_id: str) -> str:
    return f"{ALERT_PREFIX}{order_id}:overdue"


def scan_alert_id(scan: Scan) -> str:
    return f"{ALERT_PREFIX}{scan.tracking_code}:{scan.kind}:{scan.event_id}"


@dataclass
class PostalState:
    """Orders by id and tracking code, scans published, alerts raised."""

    due_hours: float = 72.0
    orders: dict[str, Order] = field(default_factory=dict)
    by_code: dict[str, str] = field(default_factory=dict)
    seen: set[uuid.UUID] = field(default_factory=set)
    alerts: set[str] = field(default_factory=set)

    def add_order(self, event: PostalOrderRequested) -> Order:
        existing = self.orders.get(event.order_id)
        if existing is not None:
            return existing
        assert event.envelope.dossier_id is not None
        order = Order(
            order_id=event.order_id,
            dossier_id=event.envelope.dossier_id,
            kind=event.kind.value,
            agency=event.requesting_agency,
            ordered_at=event.envelope.occurred_at,
            due_at=due_at_for(event, self.due_hours),
        )
        self.orders[order.order_id] = order
        return order

    def bind(self, order: Order, tracking_code: str) -> None:
        order.tracking_code = tracking_code
        self.by_code[tracking_code] = order.order_id

    def order_for_code(self, tracking_code: str) -> Order | None:
        order_id = self.by_code.get(tracking_code)
        return self.orders.get(order_id) if order_id else None

    def apply_scan(self, order: Order, kind: str) -> None:
        if kind in CLOSING[order.kind]:
            order.closed = True
        if kind == "delivered_to_citizen":
            order.delivered = True

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.closed]

    def overdue(self, now: datetime) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.kind == "delivery"
            and not o.closed
            and o.due_at is not None
            and o.due_at <= now
            and overdue_alert_id(o.order_id) not in self.alerts
        ]

    def rebuild(
        self,
        orders: Iterable[PostalOrderRequested],
        tracking: Iterable[PostalTracking],
        alert_ids: Iterable[str],
    ) -> None:
        """Restore state from the topics after a restart.

        ``postal-tracking`` says which codes exist per dossier but not which order each code
        belongs to; a code is bound when exactly one order of the dossier matches its scan
        family. Anything ambiguous stays unbound and is resolved by asking the post
        (``GET /orders?order_id=``) on the next poll.
        """
        for event in orders:
            self.add_order(event)
        kinds_by_code: dict[str, set[str]] = {}
        dossier_by_code: dict[str, str] = {}
        for event in tracking:
            self.seen.add(event.envelope.event_id)
            kinds_by_code.setdefault(event.tracking_code, set()).add(event.kind.value)
            if event.envelope.dossier_id:
                dossier_by_code[event.tracking_code] = event.envelope.dossier_id
        for code, kinds in kinds_by_code.items():
            family = (
                "pickup"
                if kinds & PICKUP_FAMILY
                else "delivery"
                if kinds & DELIVERY_FAMILY
                else None
            )
            candidates = [
                o
                for o in self.orders.values()
                if o.dossier_id == dossier_by_code.get(code)
                and o.kind == family
                and o.tracking_code is None
            ]
            if len(candidates) != 1:
                continue
            self.bind(candidates[0], code)
            for kind in kinds:
                self.apply_scan(candidates[0], kind)
        self.alerts.update(a for a in alert_ids if a.startswith(ALERT_PREFIX))


def alert_value(
    *,
    alert_type: str,
    alert_id: str,
    order: Order,
    reason: str,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Same shape as the dead-letter and document alerts of :mod:`lienthong.streams`."""
    return {
        "alert_type": alert_type,
        "alert_id": alert_id,
        "raised_at": _utc_iso(now),
        "dossier_id": order.dossier_id,
        "agency": order.agency,
        "order_id": order.order_id,
        "tracking_code": order.tracking_code,
        "reason": reason,
        "detail": detail,
    }


def order_body(event: PostalOrderRequested) -> dict[str, Any]:
    """The post's order JSON; the dossier id travels as the customer reference."""
    return {
        "order_id": event.order_id,
        "kind": event.kind.value,
        "reference": event.envelope.dossier_id,
        "agency": event.requesting_agency,
        "recipient_name": event.recipient_name,
        "address": event.address,
        "phone": event.phone,
        "deliver_by": _utc_iso(event.deliver_by) if event.deliver_by else None,
    }


class OrderRejected(Exception):
    """The post refused the order itself (4xx): retrying the same order cannot help."""


class UnexpectedEvent(Exception):
    """A valid bus event that is not an order (wrong producer on postal-orders)."""

    error_class = "UnexpectedEventType"

    def __init__(self, event_type: str) -> None:
        super().__init__(f"postal-orders carries {event_type}, expected postal_order_requested")
        self.reason = str(self)
