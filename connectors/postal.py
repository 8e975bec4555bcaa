"""Postal connector: orders to the public postal service, its scans back onto the bus.

Why a connector and not the post writing to Kafka: the post (Bưu điện / bưu chính công ích) is
an outside company with an HTTP API; it knows tracking codes, not dossiers. This process

1. consumes ``postal-orders`` and places each order at ``POST {url}/orders`` (idempotent by
   ``order_id`` at the post), retrying 5xx and network errors with capped exponential back-off;
   offsets are committed only after the post accepted the order. A record that is not a valid
   ``PostalOrderRequested``, or an order the post refuses (4xx), goes to ``dead-letters``;
2. ingests scans two ways: the post's webhook (``POST /webhooks/tracking``, HMAC-signed) and
   polling ``GET {url}/orders/{code}/events`` for every open order, because webhooks get lost.
   A scan's event id is uuid5(tracking code, kind, scan time), so one scan seen both ways is one
   ``PostalTracking`` event (the connector also drops repeats it has already published);
3. on ``delivered_to_citizen`` for a delivery order publishes ``ResultReturned(method="post")``
   on ``dossier-events`` (deterministic event id) so the tracker closes the dossier
   (TrangThaiHoSo 10, đã trả kết quả);
4. watches deliveries: an order not delivered by ``deliver_by`` (or ``delivery_due_hours`` after
   the order) raises one ``monitoring-alerts`` alert; ``failed`` and ``returned`` scans too.

Only scans the post reports are published, plus ``pickup_ordered`` once the post accepted a
pickup order (that is a fact: the post has the order). A delivery order placed is not yet a
dispatched result, so it publishes nothing until the post scans ``result_dispatched``.

State (orders, tracking codes, scans seen, alerts raised) lives in memory and is rebuilt at
start by reading ``postal-orders``, ``postal-tracking`` and ``monitoring-alerts``. A scan's side
effects (ResultReturned, alerts) are published *before* its ``PostalTracking`` event, so a crash
in between repeats them with the same ids instead of losing them.

    python -m lienthong.connectors.postal            # settings: [connectors.postal]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lienthong.config import PostalConnectorSettings, Settings
from lienthong.connectors.backoff import doubling_delay
from lienthong.logs import configure_logging, get_logger
from lienthong.runtime.metrics import CountersCollector, Metrics, install
from lienthong.schemas.models import (
    Event,
    PostalKind,
    PostalOrderRequested,
    PostalTracking,
    ResultReturned,
)

log = get_logger(__name__)

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


# --- pure parts -----------------------------------------------------------------------------


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


# --- Kafka side -----------------------------------------------------------------------------


def read_topics(settings: Settings, names: Iterable[str], idle_timeout_s: float = 30.0) -> dict:
    """Every record of the given catalogue topics up to their end offsets at call time."""
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.connectors.kafka import kafka_python_config

    consumer = KafkaConsumer(**kafka_python_config(settings), enable_auto_commit=False)
    out: dict[str, list[Any]] = {name: [] for name in names}
    try:
        tps: dict[TopicPartition, str] = {}
        for name in out:
            topic = settings.topic(name)
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                tps[TopicPartition(topic, p)] = name
        if not tps:
            return out
        consumer.assign(list(tps))
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(list(tps))
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + idle_timeout_s
        while remaining and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                out[tps[tp]].extend(records)
                deadline = time.monotonic() + idle_timeout_s
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        if remaining:
            raise RuntimeError(f"could not read {sorted(map(str, remaining))} to the end")
    finally:
        consumer.close()
    return out


def rebuild_state(settings: Settings) -> PostalState:
    from lienthong.schemas import decode_or_reason

    cfg = settings.connectors.postal
    state = PostalState(due_hours=cfg.delivery_due_hours)
    records = read_topics(settings, ("postal-orders", "postal-tracking", "monitoring-alerts"))

    def decoded(name: str, cls: type[Event]) -> list[Any]:
        events = (decode_or_reason(r.value) for r in records[name])
        return [e for e in events if isinstance(e, cls)]

    alert_ids = []
    for r in records["monitoring-alerts"]:
        key = r.key.decode("utf-8", "replace") if r.key else ""
        if key.startswith(ALERT_PREFIX):
            alert_ids.append(key)
    state.rebuild(
        decoded("postal-orders", PostalOrderRequested),
        decoded("postal-tracking", PostalTracking),
        alert_ids,
    )
    log.info(
        "state_rebuilt",
        orders=len(state.orders),
        open_orders=len(state.open_orders()),
        scans_seen=len(state.seen),
        alerts=len(state.alerts),
    )
    return state


# --- the connector process ------------------------------------------------------------------


class PostalConnector:
    """Order consumer, webhook server, poller and delivery watch in one asyncio loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        producer: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not settings.connectors.postal.url:
            raise ValueError("connectors.postal.url is not set")
        self.settings = settings
        self.cfg: PostalConnectorSettings = settings.connectors.postal
        self.url = self.cfg.url.rstrip("/")  # type: ignore[union-attr]
        self.clock = clock
        self._producer = producer
        self.state = PostalState(due_hours=self.cfg.delivery_due_hours)
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.counters = {
            "orders_placed": 0,
            "orders_rejected": 0,
            "order_retries": 0,
            "scans_webhook": 0,
            "scans_poll": 0,
            "scans_duplicate": 0,
            "webhooks_refused": 0,
            "webhooks_unknown_code": 0,
            "deliveries": 0,
            "alerts": 0,
            "dead_letters": 0,
            "poll_errors": 0,
        }
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="postal-kafka")
        self.metrics = Metrics("postal-connector")
        self.metrics.add(
            CountersCollector("postal-connector", self.health, gauges=("open_orders",))
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._session: Any = None
        self._runner: Any = None
        self.failed: str | None = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from lienthong.connectors.sdk.producer import BusProducer

            self._producer = BusProducer(self.settings)
        return self._producer

    def _headers(self) -> dict[str, str]:
        token = self.cfg.token.get_secret_value() if self.cfg.token else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _kafka(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """kafka-python is blocking and not thread-safe: one dedicated thread does it all."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def _publish(self, event: Event) -> None:
        from lienthong.connectors.sdk.producer import wait_acked

        await wait_acked(self.producer.send(event))

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, web

        self.state = await asyncio.get_running_loop().run_in_executor(
            None, rebuild_state, self.settings
        )
        _ = self.producer  # connect before serving
        self._session = ClientSession(timeout=ClientTimeout(total=self.cfg.timeout_s))
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.host, self.cfg.port).start()
        self._tasks = [
            asyncio.ensure_future(self._guard(self.consume_orders())),
            asyncio.ensure_future(self._guard(self.poll_loop())),
        ]
        log.info("postal_connector_started", port=self.cfg.port, postal_url=self.url)

    async def _guard(self, work: Any) -> None:
        """A dead order loop must not hide behind a healthy /health: stop the process."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            log.error("postal_connector_failed", error=self.failed)
            self.stopping.set()

    async def stop(self) -> None:
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self._producer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._producer.flush)
        self._executor.shutdown(wait=True)
        log.info("postal_connector_stopped", **self.counters)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", **self.counters, "open_orders": len(self.state.open_orders())}

    # --- orders -----------------------------------------------------------------------------

    async def consume_orders(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from lienthong.connectors.kafka import kafka_python_config

        consumer = await self._kafka(
            KafkaConsumer,
            **kafka_python_config(self.settings),
            group_id=self.cfg.group_id,
            enable_auto_commit=False,
            max_poll_records=50,
        )
        try:
            topic = self.settings.topic(PostalOrderRequested.TOPIC)
            parts = await self._kafka(consumer.partitions_for_topic, topic)
            while not parts and not self.stopping.is_set():
                log.error("topic_missing", topic=topic, effect="no orders placed until it exists")
                await asyncio.sleep(5.0)
                parts = await self._kafka(consumer.partitions_for_topic, topic)
            tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
            await self._kafka(consumer.assign, tps)
            for tp in tps:
                committed = await self._kafka(consumer.committed, tp)
                if committed is None:
                    await self._kafka(consumer.seek_to_beginning, tp)
                else:
                    await self._kafka(consumer.seek, tp, committed)
            while not self.stopping.is_set():
                batch = await self._kafka(consumer.poll, timeout_ms=500)
                records = [r for rs in batch.values() for r in rs]
                for record in records:
                    await self.handle_order_record(record)
                if records:
                    await self._kafka(consumer.commit)
        finally:
            await self._kafka(consumer.close)

    async def dead_letter(self, record: Any, error: BaseException) -> None:
        from lienthong.connectors.deadletter import rejected_record_headers
        from lienthong.connectors.sdk.producer import wait_acked

        headers = rejected_record_headers(record, error, CONSUMER_NAME, self.clock)
        await wait_acked(
            self.producer.send_raw("dead-letters", record.key, record.value, headers=headers)
        )
        self.counters["dead_letters"] += 1

    async def handle_order_record(self, record: Any) -> None:
        from lienthong.schemas import decode_or_reason
        from lienthong.schemas.errors import DecodeError

        outcome = decode_or_reason(record.value)
        if isinstance(outcome, DecodeError):
            await self.dead_letter(record, outcome)
            return
        if not isinstance(outcome, PostalOrderRequested):
            await self.dead_letter(record, UnexpectedEvent(outcome.EVENT_TYPE))
            return
        event = outcome
        bound = log.bind(dossier_id=event.envelope.dossier_id, agency=event.requesting_agency)
        try:
            placed = await self.place(event)
        except OrderRejected as exc:
            self.counters["orders_rejected"] += 1
            await self.dead_letter(record, exc)
            return
        code = str(placed["tracking_code"])
        async with self.lock:
            order = self.state.add_order(event)
            self.state.bind(order, code)
        self.counters["orders_placed"] += 1
        bound.info("order_placed", order_id=event.order_id, kind=order.kind, tracking_code=code)
        if order.kind == "pickup":
            created = placed.get("created_at")
            try:
                at = datetime.fromisoformat(created) if created else event.envelope.occurred_at
            except ValueError:
                at = event.envelope.occurred_at
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            place = "Bưu điện: đã nhận yêu cầu thu gom"
            await self.ingest(Scan(code, "pickup_ordered", place, at), via=None)

    async def place(self, event: PostalOrderRequested) -> dict[str, Any]:
        """POST the order until the post answers; 4xx (but auth/throttling) is final."""
        import aiohttp

        attempt = 0
        body = order_body(event)
        while True:
            problem: str
            try:
                async with self._session.post(
                    f"{self.url}/orders", json=body, headers=self._headers()
                ) as resp:
                    text = await resp.text()
                    verdict = classify_status(resp.status)
                    if verdict == "ok":
                        return json.loads(text)
                    if verdict == "reject":
                        raise OrderRejected(
                            f"postal service refused order {event.order_id}: "
                            f"{resp.status} {' '.join(text.split())[:200]}"
                        )
                    problem = f"status {resp.status}"
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            self.counters["order_retries"] += 1
            attempt += 1
            delay = doubling_delay(attempt, self.cfg.base_delay_s, self.cfg.max_delay_s)
            log.warning(
                "order_retry",
                dossier_id=event.envelope.dossier_id,
                order_id=event.order_id,
                problem=problem,
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)

    # --- scans ------------------------------------------------------------------------------

    async def ingest(self, scan: Scan, via: str | None) -> str:
        """Publish a scan once: ``published``, ``duplicate`` or ``unknown`` (code not ours)."""
        async with self.lock:
            order = self.state.order_for_code(scan.tracking_code)
            if order is None:
                return "unknown"
            event_id = scan.event_id
            if event_id in self.state.seen:
                self.state.apply_scan(order, scan.kind)
                self.counters["scans_duplicate"] += 1
                return "duplicate"
            bound = log.bind(dossier_id=order.dossier_id, agency=order.agency, event_id=event_id)
            if scan.kind == "delivered_to_citizen" and order.kind == "delivery":
                await self._publish(
                    ResultReturned.create(
                        event_id=result_event_id(scan.tracking_code),
                        dossier_id=order.dossier_id,
                        producer_agency=order.agency,
                        occurred_at=scan.scanned_at,
                        agency=order.agency,
                        method="post",
                        postal_tracking_code=scan.tracking_code,
                    )
                )
                self.counters["deliveries"] += 1
                bound.info("result_returned_by_post", tracking_code=scan.tracking_code)
            if scan.kind in ALERTING:
                alert_id = scan_alert_id(scan)
                await self._alert(
                    alert_id,
                    f"postal_{scan.kind}",
                    order,
                    f"post reported {scan.kind}: {scan.note or 'no reason given'}",
                    {"place": scan.place, "scanned_at": _utc_iso(scan.scanned_at)},
                )
            await self._publish(
                PostalTracking.create(
                    event_id=event_id,
                    dossier_id=order.dossier_id,
                    producer_agency=order.agency,
                    occurred_at=scan.scanned_at,
                    tracking_code=scan.tracking_code,
                    kind=scan.kind,
                    place=scan.place,
                    scanned_at=scan.scanned_at,
                    note=scan.note,
                )
            )
            self.state.seen.add(event_id)
            self.state.apply_scan(order, scan.kind)
            if via is not None:
                self.counters[f"scans_{via}"] += 1
            bound.info("scan_published", tracking_code=scan.tracking_code, kind=scan.kind, via=via)
            return "published"

    async def _alert(
        self, alert_id: str, alert_type: str, order: Order, reason: str, detail: dict[str, Any]
    ) -> None:
        from lienthong.connectors.sdk.producer import wait_acked

        if alert_id in self.state.alerts:
            return
        value = alert_value(
            alert_type=alert_type,
            alert_id=alert_id,
            order=order,
            reason=reason,
            detail=detail,
            now=self.clock(),
        )
        payload = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        await wait_acked(self.producer.send_raw("monitoring-alerts", alert_id, payload))
        self.state.alerts.add(alert_id)
        self.counters["alerts"] += 1
        log.warning("postal_alert", dossier_id=order.dossier_id, alert_type=alert_type)

    async def check_overdue(self) -> int:
        raised = 0
        async with self.lock:
            for order in self.state.overdue(self.clock()):
                assert order.due_at is not None
                await self._alert(
                    overdue_alert_id(order.order_id),
                    "postal_delivery_overdue",
                    order,
                    "result not delivered to the citizen by its due time",
                    {"due_at": _utc_iso(order.due_at), "ordered_at": _utc_iso(order.ordered_at)},
                )
                raised += 1
        return raised

    async def _get_json(self, path: str, **params: str) -> Any | None:
        """GET from the post; None on 404."""
        async with self._session.get(
            f"{self.url}{path}", params=params or None, headers=self._headers()
        ) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            return await resp.json()

    async def poll_once(self) -> None:
        import aiohttp

        for order in self.state.open_orders():
            if self.stopping.is_set():
                return
            try:
                if order.tracking_code is None:
                    found = await self._get_json("/orders", order_id=order.order_id)
                    if found is None:
                        continue  # not placed yet (the order consumer will place it)
                    async with self.lock:
                        self.state.bind(order, str(found["tracking_code"]))
                history = await self._get_json(f"/orders/{order.tracking_code}/events")
            except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as exc:
                self.counters["poll_errors"] += 1
                log.warning("poll_failed", dossier_id=order.dossier_id, error=str(exc))
                continue
            for item in (history or {}).get("events", []):
                try:
                    scan = parse_scan(item)
                except ValueError as exc:
                    log.warning("bad_scan_from_post", dossier_id=order.dossier_id, error=str(exc))
                    continue
                await self.ingest(scan, via="poll")

    async def poll_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.poll_once()
                await self.check_overdue()
            except Exception as exc:  # the loop must outlive a broker hiccup
                self.counters["poll_errors"] += 1
                log.error("poll_round_failed", error=str(exc))
            try:
                await asyncio.wait_for(self.stopping.wait(), self.cfg.poll_interval_s)
            except TimeoutError:
                pass

    # --- HTTP -------------------------------------------------------------------------------

    def make_app(self) -> Any:
        from aiohttp import web

        async def health(_: web.Request) -> web.Response:
            return web.json_response(self.health())

        async def webhook(request: web.Request) -> web.Response:
            body = await request.read()
            secret = self.cfg.webhook_secret
            if secret is None:
                self.counters["webhooks_refused"] += 1
                return web.json_response({"error": "webhooks not configured"}, status=403)
            if not verify_signature(
                secret.get_secret_value(), body, request.headers.get(SIGNATURE_HEADER)
            ):
                self.counters["webhooks_refused"] += 1
                return web.json_response({"error": "bad signature"}, status=401)
            try:
                scan = parse_scan(json.loads(body))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            result = await self.ingest(scan, via="webhook")
            if result == "unknown":
                # Possibly a scan racing the order's own response; the poller will catch it.
                self.counters["webhooks_unknown_code"] += 1
                return web.json_response({"error": "unknown tracking code"}, status=404)
            return web.json_response({"result": result})

        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/health", health)
        app.router.add_get("/metrics", self.metrics.aiohttp_handler)
        app.router.add_post("/webhooks/tracking", webhook)
        return app


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a loop fails (exit 1, for the supervisor)."""
    connector = PostalConnector(settings)
    install(connector.metrics)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, connector.stopping.set)
    await connector.start()
    try:
        await connector.stopping.wait()
    finally:
        await connector.stop()
    return 1 if connector.failed else 0


def main(argv: list[str] | None = None) -> int:
    from lienthong.config import ConfigError, load_settings

    parser = argparse.ArgumentParser(description="postal service connector (orders, tracking)")
    parser.add_argument("--url", default=None, help="postal API base URL (overrides the setting)")
    parser.add_argument("--port", type=int, default=None, help="webhook + health port")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc)
        return 2
    updates: dict[str, Any] = {}
    if args.url:
        updates["url"] = args.url
    if args.port:
        updates["port"] = args.port
    if updates:
        postal = settings.connectors.postal.model_copy(update=updates)
        connectors = settings.connectors.model_copy(update={"postal": postal})
        settings = settings.model_copy(update={"connectors": connectors})
    configure_logging("postal-connector", settings.log_level)
    if not settings.connectors.postal.url:
        print("connectors.postal.url is not set (LIENTHONG_CONNECTORS__POSTAL__URL or --url)")
        return 2
    return asyncio.run(serve(settings))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
