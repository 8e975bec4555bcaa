"""Fake public postal service (Bưu điện / bưu chính công ích): an HTTP API, nothing on Kafka.

Why a fake with an API rather than a Kafka writer: the real post knows nothing about the bus.
It takes pickup (thu gom hồ sơ) and delivery (chuyển phát kết quả) orders over HTTP, reports
scans by calling a webhook, and lets its customers poll the scan history. The postal connector
(:mod:`lienthong.connectors.postal`) is what turns that into bus events, so this fake must
behave like the real thing, including its failures:

- ``POST /orders`` is idempotent by ``order_id``: a re-sent order returns the same tracking
  code (200 instead of 201) and schedules nothing new;
- ``GET /orders/{code}``, ``GET /orders?order_id=`` (look-up by the customer's reference) and
  ``GET /orders/{code}/events`` (the scan history polled by the connector);
- each scan is POSTed to ``--webhook-url``, signed with HMAC-SHA256 of the body under
  ``--webhook-secret`` in ``X-Postal-Signature: sha256=<hex>``; webhooks are sent once and a
  share ``--webhook-drop-rate`` is silently dropped (lost callbacks are why the connector polls);
- ``--error-rate`` answers that share of order requests with 503; ``--failure-rate`` makes
  that share of deliveries fail once (người nhận vắng nhà) before succeeding, ``--return-rate``
  makes a failed delivery go back to the sender instead;
- ``POST /control`` changes those rates at run time and can ``stall`` new orders (they are
  dispatched but never delivered), so tests can prove polling and the delivery watch.

Delays are typical hours divided by ``--time-scale`` (3600: one hour takes one second); scan
times are the wall clock, since this is a live counterpart.

    python -m lienthong.simulators.postal --port 6081 --time-scale 3600 \
        --webhook-url http://127.0.0.1:6092/webhooks/tracking --webhook-secret s3cret
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from lienthong.logs import configure_logging, get_logger
from lienthong.schemas.models import PostalTracking
from lienthong.simulators.province import CENTER

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Postal-Signature"
# Typical hours before each scan: collected the same day, at the center next day; a result is
# picked up at the center within hours and reaches the citizen the next day.
PICKUP_SCANS = (("collected", 3.0), ("delivered_to_center", 20.0))
DELIVERY_SCANS = (("result_dispatched", 2.0), ("delivered_to_citizen", 26.0))
RETRY_AFTER_FAILURE_H = 24.0
CODE_NAMESPACE = uuid.UUID("6b1d2c0e-3f4a-5b6c-8d7e-706f7374616c")

Observer = Callable[[PostalTracking], None]


def sign(secret: str, body: bytes) -> str:
    """Header value for a webhook body; the connector recomputes it to authenticate the post."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def tracking_code_for(order_id: str) -> str:
    """Stable code per order id (EP + 9 digits + VN, the shape of VNPost's codes)."""
    return f"EP{uuid.uuid5(CODE_NAMESPACE, order_id).int % 10**9:09d}VN"


class PostalService:
    """Orders, their scan histories and the scheduled scans.

    ``observer`` (optional) is called with each scan as a :class:`PostalTracking` event when the
    order carries a dossier reference: an in-process view for tests, never a Kafka writer.
    """

    def __init__(
        self,
        observer: Observer | None = None,
        *,
        time_scale: float = 3600.0,
        failure_rate: float = 0.05,
        return_rate: float = 0.0,
        error_rate: float = 0.0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_drop_rate: float = 0.0,
        token: str | None = None,
        seed: int = 0,
    ) -> None:
        self.observer = observer
        self.time_scale = time_scale
        self.failure_rate = failure_rate
        self.return_rate = return_rate
        self.error_rate = error_rate
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_drop_rate = webhook_drop_rate
        self.token = token
        self.stall = False
        self.rng = random.Random(seed)
        self.orders: dict[str, dict[str, Any]] = {}  # tracking code -> order
        self.by_order_id: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.counters = {
            "orders_created": 0,
            "orders_repeated": 0,
            "orders_refused_503": 0,
            "scans": 0,
            "webhooks_sent": 0,
            "webhooks_dropped": 0,
            "webhooks_failed": 0,
        }
        self._session: ClientSession | None = None

    # --- scans ------------------------------------------------------------------------------

    def hours(self, h: float) -> float:
        return h * 3600.0 / self.time_scale

    async def scan(
        self, order: dict[str, Any], kind: str, place: str, note: str | None = None
    ) -> None:
        now = datetime.now(UTC)
        record = {
            "seq": len(order["events"]) + 1,
            "tracking_code": order["tracking_code"],
            "order_id": order["order_id"],
            "reference": order["reference"],
            "kind": kind,
            "place": place,
            "scanned_at": now.isoformat(),
            "note": note,
        }
        order["events"].append(record)
        order["scans"].append(kind)
        order["status"] = kind
        self.counters["scans"] += 1
        if self.observer is not None and order["reference"]:
            self.observer(
                PostalTracking.create(
                    dossier_id=order["reference"],
                    producer_agency=order["agency"] or CENTER,
                    occurred_at=now,
                    tracking_code=order["tracking_code"],
                    kind=kind,
                    place=place,
                    scanned_at=now,
                    note=note,
                )
            )
        await self.notify(record)

    async def notify(self, record: dict[str, Any]) -> None:
        """One webhook attempt per scan, like a post that does not retry its callbacks."""
        if not self.webhook_url:
            return
        if self.rng.random() < self.webhook_drop_rate:
            self.counters["webhooks_dropped"] += 1
            return
        body = json.dumps(record, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(self.webhook_secret, body)
        try:
            if self._session is None:
                self._session = ClientSession(timeout=ClientTimeout(total=5))
            async with self._session.post(self.webhook_url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise OSError(f"webhook answered {resp.status}")
            self.counters["webhooks_sent"] += 1
        except (TimeoutError, OSError, ClientError) as exc:
            self.counters["webhooks_failed"] += 1
            log.warning("webhook_failed", tracking_code=record["tracking_code"], error=str(exc))

    async def _run(self, order: dict[str, Any]) -> None:
        # Places are post offices, never the citizen's address: postal-tracking keeps a year.
        address = "Bưu cục phát (tại nhà công dân)"
        if order["kind"] == "pickup":
            for kind, delay_h in PICKUP_SCANS:
                await asyncio.sleep(self.hours(delay_h))
                await self.scan(order, kind, address if kind == "collected" else CENTER)
            return
        (dispatched, first_h), (delivered, second_h) = DELIVERY_SCANS
        await asyncio.sleep(self.hours(first_h))
        await self.scan(order, dispatched, CENTER)
        if order["stalled"]:
            return  # bưu gửi thất lạc: never delivered
        await asyncio.sleep(self.hours(second_h))
        if self.rng.random() < self.failure_rate:
            await self.scan(order, "failed", address, "người nhận vắng nhà")
            if self.rng.random() < self.return_rate:
                await asyncio.sleep(self.hours(RETRY_AFTER_FAILURE_H))
                await self.scan(order, "returned", CENTER, "chuyển hoàn: không phát được")
                return
            await asyncio.sleep(self.hours(RETRY_AFTER_FAILURE_H))
        await self.scan(order, delivered, address)

    # --- orders -----------------------------------------------------------------------------

    def order(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The order for ``body`` and whether it is new (idempotent by ``order_id``)."""
        kind = body.get("kind")
        reference = body.get("reference") or body.get("dossier_id")
        order_id = body.get("order_id") or (f"{reference}:{kind}" if reference else None)
        if kind not in ("pickup", "delivery") or not order_id:
            raise web.HTTPBadRequest(text="need order_id (or dossier_id) and kind pickup|delivery")
        existing = self.by_order_id.get(str(order_id))
        if existing is not None:
            self.counters["orders_repeated"] += 1
            return self.orders[existing], False
        code = tracking_code_for(str(order_id))
        order = {
            "order_id": str(order_id),
            "kind": kind,
            "tracking_code": code,
            "reference": str(reference) if reference else None,
            "agency": body.get("agency"),
            "recipient_name": body.get("recipient_name"),
            "address": str(body.get("address") or "Nhà công dân"),
            "created_at": datetime.now(UTC).isoformat(),
            "status": "accepted",
            "stalled": self.stall,
            "scans": [],
            "events": [],
        }
        self.orders[code] = order
        self.by_order_id[order["order_id"]] = code
        self.counters["orders_created"] += 1
        task = asyncio.ensure_future(self._run(order))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return order, True

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


def public_order(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k not in ("events", "stalled")}


CONTROLS = ("failure_rate", "return_rate", "error_rate", "webhook_drop_rate", "stall")


def make_app(service: PostalService) -> web.Application:
    app = web.Application()

    def authorise(request: web.Request) -> None:
        if service.token and request.headers.get("Authorization") != f"Bearer {service.token}":
            raise web.HTTPUnauthorized(text="bad or missing bearer token")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def post_order(request: web.Request) -> web.Response:
        authorise(request)
        if service.rng.random() < service.error_rate:
            service.counters["orders_refused_503"] += 1
            raise web.HTTPServiceUnavailable(text="postal system busy")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        order, created = service.order(body)
        return web.json_response(public_order(order), status=201 if created else 200)

    def find(request: web.Request) -> dict[str, Any]:
        order = service.orders.get(request.match_info["code"])
        if order is None:
            raise web.HTTPNotFound(text="unknown tracking code")
        return order

    async def get_order(request: web.Request) -> web.Response:
        authorise(request)
        return web.json_response(public_order(find(request)))

    async def get_events(request: web.Request) -> web.Response:
        authorise(request)
        order = find(request)
        return web.json_response(
            {"tracking_code": order["tracking_code"], "events": order["events"]}
        )

    async def lookup(request: web.Request) -> web.Response:
        authorise(request)
        code = service.by_order_id.get(request.query.get("order_id", ""))
        if code is None:
            raise web.HTTPNotFound(text="no order with that order_id")
        return web.json_response(public_order(service.orders[code]))

    async def control(request: web.Request) -> web.Response:
        body = await request.json()
        for name in CONTROLS:
            if name in body:
                setattr(service, name, bool(body[name]) if name == "stall" else float(body[name]))
        return web.json_response({name: getattr(service, name) for name in CONTROLS})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({**service.counters, "orders": len(service.orders)})

    async def on_cleanup(_: web.Application) -> None:
        await service.close()

    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/health", health)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/orders", lookup)
    app.router.add_get("/orders/{code}", get_order)
    app.router.add_get("/orders/{code}/events", get_events)
    app.router.add_post("/control", control)
    app.router.add_get("/stats", stats)
    return app


def main(argv: list[str] | None = None) -> int:
    from lienthong.config import load_settings

    parser = argparse.ArgumentParser(description="fake public postal service (HTTP API)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6081)
    parser.add_argument("--time-scale", type=float, default=3600.0, help="1 h of delay = 1 s")
    parser.add_argument("--failure-rate", type=float, default=0.05)
    parser.add_argument("--return-rate", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 503 answers")
    parser.add_argument("--webhook-url", default=None, help="where each scan is POSTed")
    parser.add_argument("--webhook-secret", default=None, help="HMAC key for the signature")
    parser.add_argument("--webhook-drop-rate", type=float, default=0.0)
    parser.add_argument("--token", default=None, help="bearer token required on the API")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("fake-postal", settings.log_level)
    service = PostalService(
        time_scale=args.time_scale,
        failure_rate=args.failure_rate,
        return_rate=args.return_rate,
        error_rate=args.error_rate,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_drop_rate=args.webhook_drop_rate,
        token=args.token,
        seed=args.seed,
    )
    web.run_app(make_app(service), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
