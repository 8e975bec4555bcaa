"""Scan ingest and the delivery watch with a recording producer (no broker, no HTTP)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from lienthong.config import load_settings
from lienthong.connectors.postal import PostalConnector, Scan
from lienthong.schemas.models import PostalTracking, ResultReturned

from .test_postal_state import AT, CENTER, order


class Acked:
    """A kafka-python future that is already acknowledged."""

    def add_callback(self, fn: Any) -> Acked:
        fn(None)
        return self

    def add_errback(self, fn: Any) -> Acked:
        return self


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.raw: list[tuple[str, Any, bytes]] = []

    def send(self, event: Any) -> Acked:
        self.events.append(event)
        return Acked()

    def send_raw(self, topic: str, key: Any, value: bytes, headers: Any = ()) -> Acked:
        self.raw.append((topic, key, value))
        return Acked()


def connector(now: Any = AT) -> tuple[PostalConnector, Recorder]:
    settings = load_settings(
        environ={
            "LIENTHONG_CONNECTORS__POSTAL__URL": "http://post.invalid",
            "LIENTHONG_CONNECTORS__POSTAL__DELIVERY_DUE_HOURS": "24",
        }
    )
    recorder = Recorder()
    return PostalConnector(settings, producer=recorder, clock=lambda: now), recorder


def test_delivery_scan_returns_the_result_once_and_failures_alert_once() -> None:
    async def scenario() -> tuple[PostalConnector, Recorder, list[str]]:
        c, rec = connector()
        o = c.state.add_order(order("O-1", dossier="HS-1"))
        c.state.bind(o, "EP1VN")
        failed = Scan("EP1VN", "failed", "Bưu cục", AT + timedelta(hours=1), "vắng nhà")
        delivered = Scan("EP1VN", "delivered_to_citizen", "Bưu cục", AT + timedelta(hours=30))
        results = [
            await c.ingest(failed, via="webhook"),
            await c.ingest(failed, via="poll"),
            await c.ingest(delivered, via="poll"),
            await c.ingest(delivered, via="webhook"),
            await c.ingest(Scan("EP9VN", "collected", "x", AT), via="webhook"),
        ]
        return c, rec, results

    c, rec, results = asyncio.run(scenario())
    assert results == ["published", "duplicate", "published", "duplicate", "unknown"]
    kinds = [(type(e).__name__, getattr(e, "kind", None)) for e in rec.events]
    assert [k for k, _ in kinds] == ["PostalTracking", "ResultReturned", "PostalTracking"]
    returned = rec.events[1]
    assert isinstance(returned, ResultReturned)
    assert returned.method.value == "post" and returned.postal_tracking_code == "EP1VN"
    assert returned.agency == CENTER and returned.envelope.dossier_id == "HS-1"
    assert all(isinstance(e, PostalTracking) for e in (rec.events[0], rec.events[2]))
    assert [(t, json.loads(v)["alert_type"]) for t, _, v in rec.raw] == [
        ("monitoring-alerts", "postal_failed")
    ]
    assert c.counters["deliveries"] == 1 and c.counters["scans_duplicate"] == 2
    assert c.state.open_orders() == []


def test_overdue_delivery_alerts_once_and_a_delivered_one_never() -> None:
    async def scenario() -> tuple[Recorder, int, int]:
        c, rec = connector(now=AT + timedelta(hours=25))
        c.state.add_order(order("O-late", dossier="HS-1"))
        done = c.state.add_order(order("O-done", dossier="HS-2"))
        c.state.bind(done, "EP2VN")
        await c.ingest(Scan("EP2VN", "delivered_to_citizen", "p", AT), via="poll")
        return rec, await c.check_overdue(), await c.check_overdue()

    rec, first, second = asyncio.run(scenario())
    assert (first, second) == (1, 0)
    alerts = [json.loads(v) for t, _, v in rec.raw if t == "monitoring-alerts"]
    assert [(a["alert_type"], a["order_id"], a["dossier_id"]) for a in alerts] == [
        ("postal_delivery_overdue", "O-late", "HS-1")
    ]
    assert [k for t, k, _ in rec.raw] == ["postal:O-late:overdue"]
