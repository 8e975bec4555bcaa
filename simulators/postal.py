"""Fake postal tracking service (Bưu điện): pickup and delivery orders in, tracking events out.

``POST /orders`` with ``{"dossier_id", "kind": "pickup"|"delivery", "address"}`` returns a
tracking code; the service then publishes ``PostalTracking`` events on ``postal-tracking``
(key = dossier id) after realistic (scaled) delays, with a configurable share of failed first
attempts. ``--time-scale`` divides the delays so a demo does not wait a day for a delivery.
Delays and failures come from ``random.Random(seed)``; event times are the wall clock, since
this is a live counterpart.

    python -m lienthong.simulators.postal --port 6081
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from lienthong.logs import configure_logging, get_logger
from lienthong.schemas.models import PostalTracking
from lienthong.simulators.province import CENTER

log = get_logger(__name__)

PICKUP = ("pickup_ordered", "collected", "delivered_to_center")
DELIVERY = ("result_dispatched", "delivered_to_citizen")
# Typical hours between scans (collect the same day, deliver next day).
DELAYS_H = {"collected": 3.0, "delivered_to_center": 20.0, "delivered_to_citizen": 26.0}

Sink = Callable[[PostalTracking], None]


class PostalService:
    def __init__(
        self, sink: Sink, *, time_scale: float = 3600.0, failure_rate: float = 0.05, seed: int = 0
    ) -> None:
        self.sink = sink
        self.time_scale = time_scale
        self.failure_rate = failure_rate
        self.rng = random.Random(seed)
        self.orders: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def emit(self, order: dict[str, Any], kind: str, place: str, note: str | None = None) -> None:
        now = datetime.now(UTC)
        event = PostalTracking.create(
            dossier_id=order["dossier_id"],
            producer_agency=CENTER,
            occurred_at=now,
            tracking_code=order["tracking_code"],
            kind=kind,
            place=place,
            scanned_at=now,
            note=note,
        )
        order["scans"].append(kind)
        self.sink(event)

    async def _run(self, order: dict[str, Any]) -> None:
        kinds = PICKUP if order["kind"] == "pickup" else DELIVERY
        self.emit(order, kinds[0], CENTER if order["kind"] == "delivery" else order["address"])
        for kind in kinds[1:]:
            await asyncio.sleep(DELAYS_H.get(kind, 1.0) * 3600 / self.time_scale)
            if kind == "delivered_to_citizen" and self.rng.random() < self.failure_rate:
                self.emit(order, "failed", order["address"], "người nhận vắng nhà")
                await asyncio.sleep(24 * 3600 / self.time_scale)
            self.emit(order, kind, order["address"] if "citizen" in kind else CENTER)

    def order(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("kind") not in ("pickup", "delivery") or not body.get("dossier_id"):
            raise web.HTTPBadRequest(text="need dossier_id and kind pickup|delivery")
        digits = uuid.uuid5(uuid.NAMESPACE_URL, f"{body['dossier_id']}:{body['kind']}").int
        code = f"EP{digits % 10**9:09d}VN"
        order = {
            "dossier_id": str(body["dossier_id"]),
            "kind": body["kind"],
            "tracking_code": code,
            "address": str(body.get("address") or "Nhà công dân"),
            "scans": [],
        }
        self.orders[code] = order
        task = asyncio.ensure_future(self._run(order))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return order


def make_app(service: PostalService) -> web.Application:
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def post_order(request: web.Request) -> web.Response:
        order = service.order(await request.json())
        return web.json_response({"tracking_code": order["tracking_code"]}, status=201)

    async def get_order(request: web.Request) -> web.Response:
        order = service.orders.get(request.match_info["code"])
        if order is None:
            raise web.HTTPNotFound(text="unknown tracking code")
        return web.json_response(order)

    app.router.add_get("/health", health)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/orders/{code}", get_order)
    return app


def kafka_sink(settings: Any) -> Sink:
    from kafka import KafkaProducer

    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.schemas import value_serializer

    producer = KafkaProducer(
        **kafka_python_config(settings),
        value_serializer=value_serializer,
        key_serializer=str.encode,
        acks="all",
    )
    topic = settings.topic(PostalTracking.TOPIC)

    def send(event: PostalTracking) -> None:
        producer.send(topic, key=event.envelope.dossier_id, value=event)
        producer.flush()

    return send


def main(argv: list[str] | None = None) -> int:
    from lienthong.config import load_settings

    parser = argparse.ArgumentParser(description="fake postal tracking service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6081)
    parser.add_argument("--time-scale", type=float, default=3600.0, help="1 h of delay = 1 s")
    parser.add_argument("--failure-rate", type=float, default=0.05)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("fake-postal", settings.log_level)
    service = PostalService(
        kafka_sink(settings), time_scale=args.time_scale, failure_rate=args.failure_rate
    )
    web.run_app(make_app(service), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
