"""The broker probe: is the broker up, and how far behind is every consumer group.

Why a process of its own: the worker can report the lag of the partitions it holds, but the
connectors' groups (portal, postal, central) and a worker that has died report nothing. The
probe asks the broker itself, as ``kafka-consumer-groups --describe`` would, so a group that
stopped consuming shows its lag growing instead of disappearing from the dashboard.

On the embedded Tansu the end offset is a lower bound when producers batch (it answers the
last batch's base offset + 1), so lag there is a lower bound too; on Kafka it is exact.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lienthong.config import Settings
from lienthong.runtime.metrics import PREFIX, LagCollector, LagRows, Metrics, install
from lienthong.runtime.probe import kafka_api_versions_ok

log = structlog.get_logger("lienthong.broker_probe")


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class ProbeSample:
    """One look at the broker; ``error`` says why the group part is missing, if it is."""

    at: float
    up: bool
    api_versions_s: float | None
    lags: tuple[GroupLag, ...] = ()
    error: str | None = None

    def health(self) -> dict[str, Any]:
        groups = sorted({row.group for row in self.lags})
        return {
            "status": "ok" if self.up and self.error is None else "degraded",
            "broker_up": self.up,
            "api_versions_s": self.api_versions_s,
            "groups": {g: sum(r.lag for r in self.lags if r.group == g) for g in groups},
            "error": self.error,
            "sampled_at": self.at,
        }


def group_lags(
    committed: dict[str, dict[tuple[str, int], int]], ends: dict[tuple[str, int], int]
) -> tuple[GroupLag, ...]:
    """Lag rows from committed offsets per group and the topics' end offsets."""
    rows = []
    for group in sorted(committed):
        for (topic, partition), offset in sorted(committed[group].items()):
            end = ends.get((topic, partition))
            if end is not None and offset >= 0:
                rows.append(GroupLag(group, topic, partition, offset, end))
    return tuple(rows)


class BrokerProbe:
    """Samples the broker at most once per ``min_interval_s``, however often it is scraped."""

    def __init__(self, settings: Settings, *, min_interval_s: float = 5.0) -> None:
        self.settings = settings
        self.min_interval_s = min_interval_s
        self._admin: Any = None
        self._consumer: Any = None
        self._last: ProbeSample | None = None
        # /health and /metrics may be served at once; kafka-python clients are not thread-safe.
        self._lock = threading.Lock()

    def _clients(self) -> tuple[Any, Any]:
        if self._admin is None:
            from kafka import KafkaConsumer
            from kafka.admin import KafkaAdminClient

            from lienthong.connectors.kafka import kafka_python_config

            config = kafka_python_config(self.settings)
            self._admin = KafkaAdminClient(**config)
            self._consumer = KafkaConsumer(**config, enable_auto_commit=False)
        return self._admin, self._consumer

    def _committed(self, admin: Any) -> dict[str, dict[tuple[str, int], int]]:
        groups = [listed["group_id"] for listed in admin.list_groups()]
        if not groups:
            return {}
        return {
            group: {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
            for group, offsets in admin.list_group_offsets(groups).items()
        }

    def sample(self) -> ProbeSample:
        with self._lock:
            if self._last is None or time.monotonic() - self._last.at >= self.min_interval_s:
                self._last = self._sample()
            return self._last

    def _sample(self) -> ProbeSample:
        host, _, port = self.settings.bootstrap_servers.split(",")[0].rpartition(":")
        started = time.monotonic()
        up = kafka_api_versions_ok(host, int(port), timeout=2.0)
        latency = time.monotonic() - started if up else None
        lags: tuple[GroupLag, ...] = ()
        error = None if up else "broker does not answer ApiVersions"
        if up:
            try:
                from kafka import TopicPartition

                from lienthong.runtime.offsets import high_watermarks

                admin, consumer = self._clients()
                committed = self._committed(admin)
                # Offsets a group once committed on a topic deleted since have no end to ask for.
                existing = consumer.topics()
                tps = {tp for offsets in committed.values() for tp in offsets if tp[0] in existing}
                # Fetched high watermarks: ListOffsets under-reports batched topics on Tansu.
                ends = high_watermarks(consumer, [TopicPartition(t, p) for t, p in tps])
                by_tp = {(tp.topic, tp.partition): n for tp, n in ends.items()}
                lags = group_lags(committed, by_tp)
            except Exception as exc:  # the broker answers but the admin calls fail: say so
                error = f"{type(exc).__name__}: {exc}"
                log.warning("probe_groups_failed", error=error)
                self.close()
        return ProbeSample(time.monotonic(), up, latency, lags, error)

    def last(self) -> ProbeSample:
        """The latest sample without asking the broker (the scrape handler refreshed it)."""
        return self._last or ProbeSample(time.monotonic(), False, None, error="not sampled yet")

    def lag_rows(self) -> LagRows:
        sample = self.last()
        return [(r.group, r.topic, r.partition, r.lag) for r in sample.lags]

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a client whose broker went away
                    pass
        self._admin = self._consumer = None


class BrokerCollector(Collector):
    """``lienthong_broker_up`` and the ApiVersions round trip, from the last sample."""

    def __init__(self, sample: Callable[[], ProbeSample]) -> None:
        self.sample = sample

    def collect(self) -> Iterator[Metric]:
        sample = self.sample()
        up = GaugeMetricFamily(f"{PREFIX}_broker_up", "1 when the broker answers ApiVersions")
        up.add_metric([], 1.0 if sample.up else 0.0)
        yield up
        rtt = GaugeMetricFamily(
            f"{PREFIX}_broker_api_versions_seconds", "ApiVersions round trip at the last sample"
        )
        if sample.api_versions_s is not None:
            rtt.add_metric([], sample.api_versions_s)
        yield rtt


def probe_metrics(probe: BrokerProbe) -> Metrics:
    metrics = Metrics("broker-probe")
    metrics.add(BrokerCollector(probe.last))
    metrics.add(LagCollector(probe.lag_rows))
    return metrics


def create_app(probe: BrokerProbe, metrics: Metrics) -> web.Application:

    async def refresh() -> ProbeSample:
        return await asyncio.get_running_loop().run_in_executor(None, probe.sample)

    async def health(_: web.Request) -> web.Response:
        sample = await refresh()
        return web.json_response(sample.health(), status=200 if sample.up else 503)

    async def scrape(request: web.Request) -> web.StreamResponse:
        await refresh()
        return await metrics.aiohttp_handler(request)

    async def closing(_: web.Application) -> None:
        probe.close()

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", scrape)
    app.on_cleanup.append(closing)
    return app


def main(argv: list[str] | None = None) -> int:
    """``lienthong run broker-probe [--host H] [--port P]``."""
    from lienthong.runtime.serving import host_port_command, serve_until_signal

    parsed = host_port_command(
        argv,
        component="broker-probe",
        description="Serve broker liveness and every consumer group's lag as Prometheus metrics.",
        section="probe",
        defaults=lambda s: (s.probe.host, s.probe.port),
    )
    if parsed is None:
        return 2
    settings, host, port = parsed
    probe = BrokerProbe(settings, min_interval_s=settings.probe.min_interval_s)
    log.info("broker_probe_starting", host=host, port=port, bootstrap=settings.bootstrap_servers)
    metrics = install(probe_metrics(probe))
    asyncio.run(serve_until_signal(create_app(probe, metrics), host, port))
    log.info("broker_probe_stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
