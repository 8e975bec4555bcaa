"""Prometheus metrics of one component: the families, and ``GET /metrics`` for its server.

Why one object per component and not prometheus_client's global registry: a test process
runs a gateway, connectors and workers side by side, and each must expose only its own
figures; a :class:`Metrics` owns a :class:`CollectorRegistry`, so nothing is registered at
import time and two instances never clash. Figures a component already counts for its
``/health`` (the connectors' counters) are read at scrape time by :class:`CountersCollector`
instead of being counted twice.

Shared code that cannot be handed the object (the dead-letter header builder used by every
sender) counts through :func:`current`, the one instance :func:`install`-ed by the process.
All names are documented in docs/operations.md ("Metrics").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "lienthong"

# Event -> portal record spans replays and backlogs (minutes to hours); gateway accepts are ms.
PORTAL_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
ACCEPT_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# Every family name a component can export (without the _total/_bucket suffixes), so the
# alert rules test can check that each rule names a metric that exists.
EXPORTED = (
    "lienthong_component_info",
    "lienthong_events_processed_total",
    "lienthong_events_rejected_total",
    "lienthong_dead_letters_total",
    "lienthong_alerts_total",
    "lienthong_portal_sync_items_total",
    "lienthong_gateway_requests_total",
    "lienthong_event_to_portal_record_seconds",
    "lienthong_gateway_accept_seconds",
    "lienthong_consumer_lag",
    "lienthong_broker_up",
    "lienthong_broker_api_versions_seconds",
    "lienthong_connector_events_total",
    "lienthong_connector_open_items",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_start_time_seconds",
    "up",  # Prometheus' own per-target series
)


class Metrics:
    """The metric families of one component, in a registry of its own."""

    def __init__(self, component: str, *, process: bool = True) -> None:
        self.component = component
        self.registry = CollectorRegistry()
        reg = self.registry
        info = Gauge(
            f"{PREFIX}_component_info", "1 per running component", ["component"], registry=reg
        )
        info.labels(component).set(1)
        self.events_processed = Counter(
            f"{PREFIX}_events_processed",
            "Events applied (dossier-events in the worker)",
            ["event_type"],
            registry=reg,
        )
        self.events_rejected = Counter(
            f"{PREFIX}_events_rejected",
            "Events refused by the rules (and dead-lettered), by reason",
            ["event_type", "reason"],
            registry=reg,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Records sent to the dead-letter topic, by consumer and error class",
            ["source", "error_class"],
            registry=reg,
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts", "Deadline alerts emitted, by kind", ["kind"], registry=reg
        )
        self.clock_sweeps = Counter(
            f"{PREFIX}_alert_clock_sweeps",
            "Worker, live clock: sweeps of the partitions' due alerts completed",
            registry=reg,
        )
        self.gateway_requests = Counter(
            f"{PREFIX}_gateway_requests",
            "Gateway /v1 requests answered, by HTTP status and authenticated agency",
            ["status", "agency"],
            registry=reg,
        )
        self.portal_latency = Histogram(
            f"{PREFIX}_event_to_portal_record_seconds",
            "Worker: event record timestamp to its portal-status record queued",
            buckets=PORTAL_LATENCY_BUCKETS,
            registry=reg,
        )
        self.accept_latency = Histogram(
            f"{PREFIX}_gateway_accept_seconds",
            "Gateway: request received to 202 (broker acknowledged)",
            buckets=ACCEPT_LATENCY_BUCKETS,
            registry=reg,
        )
        if process:
            ProcessCollector(registry=reg)  # process_resident_memory_bytes, _cpu_seconds_total

    # -- counting (one line at each call site) ------------------------------------------------
    def event_processed(self, event_type: str) -> None:
        self.events_processed.labels(event_type).inc()

    def event_rejected(self, event_type: str | None, reason: str) -> None:
        self.events_rejected.labels(event_type or "unknown", reason).inc()

    def dead_letter(self, source: str, error_class: str) -> None:
        self.dead_letters.labels(source, error_class).inc()

    def alert(self, kind: str) -> None:
        self.alerts.labels(kind).inc()

    def clock_sweep(self) -> None:
        self.clock_sweeps.inc()

    def gateway_request(self, status: int, agency: str | None, seconds: float) -> None:
        self.gateway_requests.labels(str(status), agency or "none").inc()
        if status == 202:
            self.accept_latency.observe(seconds)

    def portal_record(self, event_timestamp_s: float) -> None:
        """A portal record queued now for an event whose Kafka record has this timestamp."""
        self.portal_latency.observe(max(0.0, time.time() - event_timestamp_s))

    def add(self, collector: Collector) -> None:
        """Register a scrape-time collector (lag, a connector's counters)."""
        self.registry.register(collector)

    # -- serving --------------------------------------------------------------------------------
    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def aiohttp_handler(self, request: Any) -> Any:
        """``GET /metrics`` for an aiohttp app: ``add_get("/metrics", m.aiohttp_handler)``."""
        from aiohttp import web

        response = web.Response(body=self.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


_current: Metrics | None = None


def install(metrics: Metrics) -> Metrics:
    """Make ``metrics`` the process's instance for shared code (see :func:`current`)."""
    global _current
    _current = metrics
    return metrics


def current() -> Metrics | None:
    """The instance installed by this process's component, if any (tests may have none)."""
    return _current


def count_dead_letter(source: str, error_class: str) -> None:
    if _current is not None:
        _current.dead_letter(source, error_class)


# -- scrape-time collectors --------------------------------------------------------------------
LagRows = Iterable[tuple[str, str, int, int]]  # (group, topic, partition, lag)


class LagCollector(Collector):
    """``lienthong_consumer_lag{group,topic,partition}`` from a function read at scrape time."""

    def __init__(self, rows: Callable[[], LagRows]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag",
            "Records not yet committed by the group (high watermark - committed offset)",
            labels=["group", "topic", "partition"],
        )
        try:
            rows = list(self.rows())
        except Exception:  # a consumer mid-rebalance: no rows this scrape, not a 500
            rows = []
        for group, topic, partition, lag in rows:
            family.add_metric([group, topic, str(partition)], max(0, lag))
        yield family


def faust_lag_rows(app: Any, group: str) -> LagRows:
    """Lag per assigned partition of a Faust app's consumer (0 rows before it has joined)."""
    consumer = app.consumer
    committed = consumer._committed_offset  # next offset to read, as Faust commits it
    rows = []
    for tp in sorted(consumer.assignment()):
        high = consumer.highwater(tp)
        if high is None:
            continue
        done = committed.get(tp)
        if done is None:
            if high:
                # Records, but none committed by this process yet (just assigned, e.g. after
                # a restart): the lag is unknown here, not "everything"; the broker probe
                # reports it meanwhile.
                continue
            done = 0  # an empty partition: nothing to lag behind
        rows.append((group, tp.topic, tp.partition, high - done))
    return rows


class CountersCollector(Collector):
    """A connector's ``/health`` counters as Prometheus families, read at scrape time.

    ``events`` maps a counter name to its label value of
    ``lienthong_connector_events_total{component,event}``; ``gauges`` likewise for
    ``lienthong_connector_open_items{component,item}``; ``portal`` maps the portal sync
    outcomes (sent/acknowledged/failed) to counter names.
    """

    def __init__(
        self,
        component: str,
        counters: Callable[[], Mapping[str, Any]],
        *,
        gauges: Iterable[str] = (),
        portal: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.component = component
        self.counters = counters
        self.gauges = tuple(gauges)
        self.portal = portal

    def collect(self) -> Iterator[Metric]:
        values = dict(self.counters())
        events = CounterMetricFamily(
            f"{PREFIX}_connector_events",
            "What a connector did (its /health counters)",
            labels=["component", "event"],
        )
        opened = GaugeMetricFamily(
            f"{PREFIX}_connector_open_items",
            "Items a connector holds open (orders, requests, lag)",
            labels=["component", "item"],
        )
        for name, value in sorted(values.items()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if name in self.gauges:
                opened.add_metric([self.component, name], value)
            else:
                events.add_metric([self.component, name], value)
        yield events
        yield opened
        if self.portal is not None:
            sync = CounterMetricFamily(
                f"{PREFIX}_portal_sync_items",
                "Portal sync: items sent (each attempt), acknowledged, failed (parked/DLQ)",
                labels=["outcome"],
            )
            for outcome, names in self.portal.items():
                sync.add_metric([outcome], sum(int(values.get(n) or 0) for n in names))
            yield sync
