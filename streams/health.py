"""``GET /health`` on every worker: ready only after the first rebalance and table recovery;
``GET /metrics`` for Prometheus.

Why not "process is up": a worker that has not yet joined its group or restored its tables
would answer queries with empty state; `lienthong status` and `up` wait for real readiness.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from lienthong.runtime.metrics import LagCollector, Metrics, faust_lag_rows, install
from lienthong.streams.app import app, settings

_state: dict[str, Any] = {"rebalances": 0}

# This worker's Prometheus figures (agents count through it; see lienthong.runtime.metrics).
metrics = install(Metrics("worker"))
metrics.add(LagCollector(lambda: faust_lag_rows(app, settings.worker.app_id)))


@app.on_rebalance_complete.connect
async def _on_rebalance_complete(sender: Any, **kwargs: Any) -> None:
    _state["rebalances"] += 1


def health_report() -> dict[str, Any]:
    consumer = app.consumer if _state["rebalances"] else None
    assigned = (
        sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment()) if consumer else []
    )
    ready = _state["rebalances"] > 0 and not app.rebalancing
    return {
        "status": "ok" if ready else "starting",
        "app_id": settings.worker.app_id,
        "bootstrap": settings.bootstrap_servers,
        "rebalances": _state["rebalances"],
        "assigned_partitions": assigned,
    }


@app.page("/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        return self.json(health_report())


@app.page("/metrics")
class PrometheusMetrics(View):
    """Prometheus text format: events, rejections, dead letters, alerts, lag, process."""

    async def get(self, request: Request) -> Response:
        return self.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
