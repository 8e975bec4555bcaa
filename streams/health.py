"""``GET /health`` on every worker: ready only after the first rebalance and table recovery;
``GET /metrics`` for Prometheus.

Why not "process is up": a worker that has not yet joined its group or restored its tables
would answer queries with empty state; `lienthong status` and `up` wait for real readiness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from lienthong.runtime.metrics import LagCollector, Metrics, faust_lag_rows
from lienthong.streams.app import StreamsApp
from lienthong.streams.fetching import FetchWatch
from lienthong.streams.gaps import GapGuard


class HealthStage:
    """Readiness (rebalances seen) and this worker's Prometheus figures (agents count through
    :attr:`metrics`; see lienthong.runtime.metrics)."""

    def __init__(self, streams: StreamsApp) -> None:
        self.app = streams.app
        self.settings = streams.settings
        self.rebalances = 0
        self.metrics = Metrics("worker")
        app_id = self.settings.worker.app_id
        self.metrics.add(LagCollector(lambda: faust_lag_rows(self.app, app_id)))
        # agent name -> its gap guard's partitions_report: what the consumer knows of each
        # source partition, so a partition that is not fetched can be seen from outside.
        self.partition_reports: dict[str, Callable[[], dict[str, Any]]] = {}
        # source topic -> its agent's gap guard, whose idle time the fetch watch asks.
        self.guards: dict[str, GapGuard] = {}
        self.fetch_watch = FetchWatch(self.app, self._idle_for)

    def _idle_for(self, tp: Any) -> float | None:
        guard = self.guards.get(tp.topic)
        return guard.idle_for(tp.partition) if guard is not None else None

    def health_report(self) -> dict[str, Any]:
        consumer = self.app.consumer if self.rebalances else None
        assigned = (
            sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment()) if consumer else []
        )
        ready = self.rebalances > 0 and not self.app.rebalancing
        return {
            "status": "ok" if ready else "starting",
            "app_id": self.settings.worker.app_id,
            "bootstrap": self.settings.bootstrap_servers,
            "rebalances": self.rebalances,
            "assigned_partitions": assigned,
            "source_partitions": (
                {
                    **{name: report() for name, report in self.partition_reports.items()},
                    "all": self.fetch_watch.report(),
                }
                if consumer
                else {}
            ),
        }

    def register(self) -> None:
        """The rebalance counter and the ``/health`` and ``/metrics`` pages, on this app."""
        app, stage = self.app, self

        @app.on_rebalance_complete.connect
        async def _on_rebalance_complete(sender: Any, **kwargs: Any) -> None:
            stage.rebalances += 1

        @app.timer(interval=5.0, name="lienthong.streams.health.watch_fetches")
        async def watch_fetches() -> None:
            if stage.rebalances:
                await stage.fetch_watch.check()

        @app.page("/health")
        class Health(View):
            async def get(self, request: Request) -> Response:
                return self.json(stage.health_report())

        @app.page("/metrics")
        class PrometheusMetrics(View):
            """Prometheus text format: events, rejections, dead letters, alerts, lag, process."""

            async def get(self, request: Request) -> Response:
                body = stage.metrics.render()
                return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
