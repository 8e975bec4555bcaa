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

Modules: :mod:`.policy` (pure rules and state), :mod:`.client` (the post's HTTP API) and this
one (Kafka side, webhook server, poller, built on :mod:`lienthong.connectors.skeleton`).

    python -m lienthong.connectors.postal            # settings: [connectors.postal]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lienthong.config import PostalConnectorSettings, Settings
from lienthong.connectors.postal.client import PostalClient
from lienthong.connectors.postal.policy import (
    ALERT_PREFIX,
    ALERTING,
    CONSUMER_NAME,
    SIGNATURE_HEADER,
    Order,
    OrderRejected,
    PostalState,
    Scan,
    UnexpectedEvent,
    _utc_iso,
    alert_value,
    overdue_alert_id,
    parse_scan,
    result_event_id,
    scan_alert_id,
    verify_signature,
)
from lienthong.connectors.skeleton import (
    ConsumeLoop,
    DeadLetters,
    KafkaThread,
    Stopped,
    guard,
    health_app,
    open_consumer,
    per_record,
    read_topics,
    run_until_signal,
    start_site,
)
from lienthong.logs import configure_logging, get_logger
from lienthong.runtime.metrics import CountersCollector, Metrics, install
from lienthong.schemas.models import Event, PostalOrderRequested, PostalTracking, ResultReturned

log = get_logger(__name__)

STATE_TOPICS = ("postal-orders", "postal-tracking", "monitoring-alerts")


def rebuild_state(settings: Settings) -> PostalState:
    """State after a restart, from every record of the three topics (see PostalState.rebuild)."""
    from lienthong.schemas import decode_or_reason

    cfg = settings.connectors.postal
    state = PostalState(due_hours=cfg.delivery_due_hours)
    records = read_topics(settings, STATE_TOPICS)

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
        self.kafka = KafkaThread("postal-kafka")
        self.dead_letters = DeadLetters(lambda: self.producer, CONSUMER_NAME, clock)
        self.metrics = Metrics("postal-connector")
        self.metrics.add(
            CountersCollector("postal-connector", self.health, gauges=("open_orders",))
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._session: Any = None
        self.client: PostalClient | None = None
        self._runner: Any = None
        self.failed: str | None = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from lienthong.connectors.sdk.producer import BusProducer

            self._producer = BusProducer(self.settings)
        return self._producer

    async def _publish(self, event: Event) -> None:
        from lienthong.connectors.sdk.producer import wait_acked

        await wait_acked(self.producer.send(event))

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        from aiohttp import ClientSession, ClientTimeout

        self.state = await self.kafka.call(rebuild_state, self.settings)
        _ = self.producer  # connect before serving
        self._session = ClientSession(timeout=ClientTimeout(total=self.cfg.timeout_s))
        self.client = PostalClient(
            self._session,
            self.url,
            token=self.cfg.token.get_secret_value() if self.cfg.token else None,
            base_delay_s=self.cfg.base_delay_s,
            max_delay_s=self.cfg.max_delay_s,
            stopping=self.stopping,
        )
        self._runner = await start_site(self.make_app(), self.cfg.host, self.cfg.port)
        self._tasks = [
            asyncio.ensure_future(guard(self.consume_orders(), self._failed)),
            asyncio.ensure_future(guard(self.poll_loop(), self._failed)),
        ]
        log.info("postal_connector_started", port=self.cfg.port, postal_url=self.url)

    def _failed(self, error: str) -> None:
        """A dead order loop must not hide behind a healthy /health: stop the process."""
        self.failed = error
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
            await self.kafka.call(self._producer.flush)
        self.kafka.shutdown()
        log.info("postal_connector_stopped", **self.counters)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", **self.counters, "open_orders": len(self.state.open_orders())}

    # --- orders -----------------------------------------------------------------------------

    async def consume_orders(self) -> None:
        """``postal-orders`` → the post; offsets committed after the batch's orders were placed
        (or dead-lettered). The topic may not exist yet: wait for it, say so in the log."""
        consumer = await self.kafka.call(
            open_consumer,
            self.settings,
            self.cfg.group_id,
            [PostalOrderRequested.TOPIC],
            wait_s=None,
            stopping=self.stopping.is_set,
        )
        try:
            loop = ConsumeLoop(
                self.kafka,
                consumer,
                per_record(self.handle_order, self.dead_letter),
                max_records=50,
            )
            await loop.run(self.stopping)
        except Stopped:
            pass  # an order still retrying at stop: not committed, placed again after restart
        finally:
            await self.kafka.call(consumer.close)

    async def dead_letter(self, record: Any, error: BaseException) -> None:
        await self.dead_letters.send(record, error)
        self.counters["dead_letters"] += 1

    async def handle_order(self, outcome: Event, record: Any) -> None:
        """One valid ``postal-orders`` event: placed at the post, or dead-lettered."""
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
        """POST the order until the post answers (see :meth:`PostalClient.place`)."""
        assert self.client is not None, "start() first"

        def retried(attempt: int, problem: str, delay: float) -> None:
            self.counters["order_retries"] += 1
            log.warning(
                "order_retry",
                dossier_id=event.envelope.dossier_id,
                order_id=event.order_id,
                problem=problem,
                retry_in_s=delay,
            )

        return await self.client.place(event, on_retry=retried)

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

    async def poll_once(self) -> None:
        import aiohttp

        assert self.client is not None, "start() first"

        for order in self.state.open_orders():
            if self.stopping.is_set():
                return
            try:
                if order.tracking_code is None:
                    found = await self.client.find_order(order.order_id)
                    if found is None:
                        continue  # not placed yet (the order consumer will place it)
                    async with self.lock:
                        self.state.bind(order, str(found["tracking_code"]))
                history = await self.client.history(order.tracking_code)
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

        app = health_app(self.health, self.metrics, client_max_size=64 * 1024)
        app.router.add_post("/webhooks/tracking", webhook)
        return app


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a loop fails (exit 1, for the supervisor)."""
    connector = PostalConnector(settings)
    install(connector.metrics)
    await run_until_signal(connector.start, connector.stop, connector.stopping)
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
