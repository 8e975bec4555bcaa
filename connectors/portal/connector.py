"""The portal connector's loop: Kafka in, portal HTTP out, offsets committed after the ack.

Reads ``portal-status`` and ``live-stats`` with manually assigned partitions (no group join,
which some brokers make slow) and the group id only as the store of committed offsets. Each
poll is resolved completely — every record acknowledged by the portal, parked on
``portal-parked`` (with an alert on ``monitoring-alerts``) or dead-lettered — before the offsets
are committed: at-least-once, and the portal's idempotency keys absorb the re-posts a crash
causes. A bad record never blocks its partition.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from lienthong.connectors.deadletter import DeadLetterPublisher, dead_letter_headers
from lienthong.connectors.portal.client import (
    Counters,
    Item,
    Parked,
    PortalAuthError,
    PortalClient,
    Stopped,
)
from lienthong.connectors.skeleton import (
    ConsumeLoop,
    KafkaThread,
    Polled,
    health_app,
    open_consumer,
    start_site,
    stop_on_signals,
)
from lienthong.logs import get_logger
from lienthong.runtime.metrics import CountersCollector, Metrics, install
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import Event, LiveStatsSnapshot, PortalStatusRecord

log = get_logger(__name__)

CONSUMER_NAME = "portal-connector"
PARKED_TOPIC = "portal-parked"
ALERTS_TOPIC = "monitoring-alerts"
RECORDS_PATH = "/records"
STATS_PATH = "/stats"

# Extra headers on a parked record, next to the lienthong.dlq.* ones (same meaning there).
PARKED_STATUS = "lienthong.portal.http_status"
PARKED_ATTEMPTS = "lienthong.portal.attempts"
PARKED_KEY = "lienthong.portal.idempotency_key"


class Reason(Exception):
    """Why a record left the feed (read by :func:`dead_letter_headers`: class + reason)."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def idempotency_key(event: Event) -> str:
    """The record's deterministic key: its envelope event id (uuid5 for portal records)."""
    return str(event.envelope.event_id)


def record_payload(event: PortalStatusRecord) -> dict[str, Any]:
    """The portal's JSON for one status record (its own field names, no envelope)."""
    data = event.model_dump(mode="json", exclude={"envelope"})
    data["idempotency_key"] = idempotency_key(event)
    return data


def stats_payload(event: LiveStatsSnapshot) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude={"envelope"})
    data["key"] = event.key
    data["idempotency_key"] = idempotency_key(event)
    return data


def to_item(event: Event, source: Any = None) -> Item | None:
    if isinstance(event, PortalStatusRecord):
        return Item(RECORDS_PATH, idempotency_key(event), record_payload(event), source)
    if isinstance(event, LiveStatsSnapshot):
        return Item(STATS_PATH, idempotency_key(event), stats_payload(event), source)
    return None


def parked_headers(parked: Parked, now: datetime) -> list[tuple[str, bytes]]:
    """Original headers + the dead-letter headers (source, class, reason) + portal details."""
    record = parked.item.source
    error = Reason(parked.error_class, parked.reason)
    return [
        *dead_letter_headers(
            record.headers,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            error=error,
            consumer=CONSUMER_NAME,
            failed_at=now,
        ),
        (PARKED_STATUS, str(parked.status or "").encode()),
        (PARKED_ATTEMPTS, str(parked.attempts).encode()),
        (PARKED_KEY, parked.item.key.encode()),
    ]


def parked_alert(parked: Parked, now: datetime) -> dict[str, Any]:
    """Alert on monitoring-alerts, shaped like the dead-letter monitor's alerts."""
    record = parked.item.source
    key = record.key.decode("utf-8", "replace") if record.key else None
    return {
        "alert_type": "portal_parked",
        "alert_id": f"portal-parked:{record.topic}:{record.partition}:{record.offset}",
        "raised_at": now.isoformat(),
        "dossier_id": key if parked.item.path == RECORDS_PATH else None,
        "source_topic": record.topic,
        "source_partition": str(record.partition),
        "source_offset": str(record.offset),
        "error_class": parked.error_class,
        "reason": parked.reason,
        "consumer": CONSUMER_NAME,
        "idempotency_key": parked.item.key,
        "http_status": parked.status,
        "attempts": parked.attempts,
    }


class _RawSender:
    """DeadLetterPublisher's producer interface on top of the bus producer (topic = catalogue
    name; the bus producer adds the prefix)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    def send(self, topic: str, *, key: Any, value: Any, headers: Any) -> Any:
        return self.producer.send_raw(topic, key, value, headers=headers or ())

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout)


class PortalConnector:
    """One connector instance; :meth:`run` until stopped."""

    def __init__(
        self,
        settings: Any,
        portal_url: str,
        group_id: str | None = None,
        *,
        token: str | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.connectors.portal
        self.portal_url = portal_url
        self.group_id = group_id or default_group(settings)
        if token is None and self.config.token is not None:
            token = self.config.token.get_secret_value()
        self.token = token
        self.counters = Counters()
        self.metrics = Metrics("portal-connector")
        self.metrics.add(
            CountersCollector("portal-connector", self.counters.as_dict, **PORTAL_FIGURES)
        )
        self.stop = asyncio.Event()
        self._consumer: Any = None
        self._producer: Any = None
        self.kafka = KafkaThread("portal-kafka")

    # --- Kafka (blocking calls, run in a worker thread) ----------------------------------------

    def _open(self) -> None:
        from lienthong.connectors.sdk import BusProducer

        self._producer = BusProducer(self.settings)
        self._consumer = open_consumer(
            self.settings,
            self.group_id,
            [PortalStatusRecord.TOPIC, LiveStatsSnapshot.TOPIC],
        )
        self.dead_letters = DeadLetterPublisher(
            _RawSender(self._producer), "dead-letters", CONSUMER_NAME
        )

    def _set_lag(self, lag: int | None) -> None:
        self.counters.lag = lag

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._producer is not None:
            self._producer.flush(10)
            self._producer.close(10)

    def _park(self, parked: Sequence[Parked], futures: list[Any]) -> None:
        now = datetime.now(UTC)
        for p in parked:
            record = p.item.source
            futures.append(
                self._producer.send_raw(
                    PARKED_TOPIC, record.key, record.value, headers=parked_headers(p, now)
                )
            )
            alert = parked_alert(p, now)
            futures.append(
                self._producer.send_raw(
                    ALERTS_TOPIC,
                    alert["alert_id"].encode(),
                    json.dumps(alert, ensure_ascii=False).encode(),
                )
            )
            log.error(
                "portal_parked",
                dossier_id=alert["dossier_id"],
                event_id=p.item.key,
                error_class=p.error_class,
                reason=p.reason,
                source_topic=record.topic,
                source_offset=record.offset,
            )

    def _settle(self, futures: list[Any]) -> None:
        """Wait until parked records, alerts and dead letters are durable (the loop commits
        the batch after this)."""
        for future in futures:
            future.get(timeout=30)
        self.dead_letters.flush(30)

    # --- the loop -------------------------------------------------------------------------------

    async def handle(self, client: PortalClient, polled: Polled) -> int:
        """Resolve one poll completely (its commit follows); items the portal acknowledged."""
        futures: list[Any] = []
        pending: dict[str, list[Item]] = {RECORDS_PATH: [], STATS_PATH: []}
        for record, outcome in polled:
            if isinstance(outcome, DecodeError):
                self.dead_letters.publish(record, outcome)
                self.counters.dead_lettered += 1
                continue
            item = to_item(outcome, record)
            if item is None:
                self.dead_letters.publish(
                    record,
                    Reason(
                        "UnexpectedEventType",
                        f"{outcome.EVENT_TYPE} does not belong on {record.topic}",
                    ),
                )
                self.counters.dead_lettered += 1
                continue
            pending[item.path].append(item)
        delivered = 0
        for path, items in pending.items():
            size = self.config.batch_size
            for start in range(0, len(items), size):
                result = await client.deliver(path, items[start : start + size])
                delivered += len(result.delivered)
                if result.parked:
                    self.counters.parked += len(result.parked)
                    self._park(result.parked, futures)
        await self.kafka.call(self._settle, futures)
        if delivered:
            log.info("portal_forwarded", items=delivered)
        return delivered

    async def run(self, stop_after_idle_polls: int | None = None) -> int:
        """Forward until :attr:`stop` is set (or after that many empty polls); items posted."""
        await self.kafka.call(self._open)
        sent = 0
        try:
            async with aiohttp.ClientSession() as session:
                client = PortalClient(
                    session,
                    self.portal_url,
                    token=self.token,
                    rate_per_s=self.config.rate_per_s,
                    timeout_s=self.config.timeout_s,
                    max_attempts=self.config.max_attempts,
                    base_delay_s=self.config.base_delay_s,
                    max_delay_s=self.config.max_delay_s,
                    counters=self.counters,
                    stop=self.stop,
                )

                async def handle(polled: Polled) -> None:
                    nonlocal sent
                    sent += await self.handle(client, polled)

                loop = ConsumeLoop(
                    self.kafka,
                    self._consumer,
                    handle,
                    max_records=self.config.batch_size,
                    on_lag=self._set_lag,
                )
                await loop.run(self.stop, stop_after_idle_polls=stop_after_idle_polls)
        except Stopped:
            log.info("portal_connector_stopping", uncommitted="re-read on restart")
        finally:
            await self.kafka.call(self._close)
            self.kafka.shutdown()
        return sent

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "portal": self.portal_url, **self.counters.as_dict()}

    def health_app(self) -> web.Application:
        return health_app(self.health, self.metrics)


# Which /health counters are gauges and which make up the portal sync outcomes.
PORTAL_FIGURES: dict[str, Any] = {
    "gauges": ("lag",),
    "portal": {
        "sent": ("items_sent",),
        "acknowledged": ("posted",),
        "failed": ("parked", "dead_lettered"),
    },
}


def default_group(settings: Any) -> str:
    """Offsets group; the topic prefix keeps isolated deployments (and tests) apart."""
    return f"{settings.topic_prefix}lienthong-portal-connector"


def run(
    settings: Any,
    portal_url: str,
    group_id: str | None = None,
    *,
    stop_after_idle_polls: int | None = None,
) -> int:
    """Forward portal-status and live-stats to ``portal_url`` (blocking); returns items
    posted. ``stop_after_idle_polls`` ends after that many empty polls (tests, one-shot runs)."""
    connector = PortalConnector(settings, portal_url, group_id)
    return asyncio.run(connector.run(stop_after_idle_polls))


async def serve(connector: PortalConnector, host: str, port: int) -> int:
    """Run with ``GET /health`` until SIGTERM/SIGINT."""
    stop_on_signals(connector.stop)
    runner = await start_site(connector.health_app(), host, port)
    log.info("portal_connector_started", portal=connector.portal_url, health_port=port)
    try:
        await connector.run()
    except PortalAuthError as exc:
        log.error("portal_auth_failed", error=str(exc))
        return 1
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from lienthong.config import load_settings
    from lienthong.logs import configure_logging

    parser = argparse.ArgumentParser(description="forward portal-status/live-stats to the portal")
    parser.add_argument("--portal-url", help="override connectors.portal.url")
    parser.add_argument("--group", help="offsets group id (default: <prefix>lienthong-portal-…)")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("portal-connector", settings.log_level)
    url = args.portal_url or settings.connectors.portal.url
    if not url:
        parser.error("no portal URL: set connectors.portal.url or pass --portal-url")
    connector = PortalConnector(settings, url, args.group)
    install(connector.metrics)
    config = settings.connectors.portal
    return asyncio.run(serve(connector, config.host, config.health_port))
