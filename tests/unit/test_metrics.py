"""The metrics module and the shipped Prometheus files (deploy/prometheus).

The rules must only name metrics the bus exports: a renamed metric would otherwise leave an
alert that silently never fires.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lienthong.config import load_settings
from lienthong.runtime.metrics import (
    EXPORTED,
    CountersCollector,
    LagCollector,
    Metrics,
    faust_lag_rows,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
_SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def unknown_metrics(expr: str) -> set[str]:
    """Names in a PromQL expression that are neither exported by the bus nor ``up``."""
    names = set(re.findall(r"\b(lienthong_[a-z_]+|process_[a-z_]+)\b", expr))
    unknown = set()
    for name in names:
        base = name
        for suffix in _SUFFIXES:
            if base.endswith(suffix) and base[: -len(suffix)] in EXPORTED:
                base = base[: -len(suffix)]
                break
        if base not in EXPORTED and not base.startswith("process_"):
            unknown.add(name)
    return unknown


def _families(metrics: Metrics) -> dict[str, object]:
    text = metrics.render().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_counts_reach_the_text_format_with_their_labels() -> None:
    m = Metrics("worker", process=False)
    m.event_processed("dossier_received")
    m.event_processed("dossier_received")
    m.event_rejected(None, "unknown_dossier")
    m.dead_letter("tracker", "SchemaError")
    m.alert("overdue")
    m.gateway_request(202, "000.00.01.H10", 0.02)
    m.gateway_request(401, None, 0.001)
    text = m.render().decode()
    assert 'lienthong_events_processed_total{event_type="dossier_received"} 2.0' in text
    assert 'lienthong_events_rejected_total{event_type="unknown",reason="unknown_dossier"}' in text
    assert 'lienthong_dead_letters_total{error_class="SchemaError",source="tracker"} 1.0' in text
    assert 'lienthong_alerts_total{kind="overdue"} 1.0' in text
    assert 'lienthong_gateway_requests_total{agency="none",status="401"} 1.0' in text
    # Only the 202 is an "accept": the refused request is not in the latency histogram.
    assert "lienthong_gateway_accept_seconds_count 1.0" in text
    assert 'lienthong_component_info{component="worker"} 1.0' in text


def test_each_component_has_its_own_registry() -> None:
    a, b = Metrics("gateway", process=False), Metrics("worker", process=False)
    a.alert("warning")
    assert "lienthong_alerts_total{" in a.render().decode()
    assert "lienthong_alerts_total{" not in b.render().decode()


def test_scrape_time_collectors() -> None:
    m = Metrics("portal-connector", process=False)
    m.add(LagCollector(lambda: [("lienthong", "dossier-events", 3, 42)]))
    figures = {"sent": 5, "acknowledged": 4, "parked": 1, "open_orders": 7, "healthy": True}
    m.add(
        CountersCollector(
            "portal-connector",
            lambda: figures,
            gauges=("open_orders",),
            portal={"sent": ("sent",), "acknowledged": ("acknowledged",), "failed": ("parked",)},
        )
    )
    text = m.render().decode()
    assert (
        'lienthong_consumer_lag{group="lienthong",partition="3",topic="dossier-events"} 42.0'
        in text
    )
    assert (
        'lienthong_connector_open_items{component="portal-connector",item="open_orders"} 7.0'
        in (text)
    )
    assert 'lienthong_portal_sync_items_total{outcome="failed"} 1.0' in text
    assert 'event="healthy"' not in text  # booleans are not counters


def test_process_collector_reports_memory() -> None:
    families = _families(Metrics("worker"))
    rss = families["process_resident_memory_bytes"]
    assert rss.samples[0].value > 0  # type: ignore[attr-defined]


def test_the_rule_checker_catches_an_unknown_metric() -> None:
    assert unknown_metrics("rate(lienthong_dead_letters_total[5m])") == set()
    assert unknown_metrics("lienthong_event_to_portal_record_seconds_bucket") == set()
    assert unknown_metrics("rate(lienthong_deadletters_total[5m])") == {
        "lienthong_deadletters_total"
    }


RULES = yaml.safe_load((DEPLOY / "rules.yml").read_text(encoding="utf-8"))["groups"]


@pytest.mark.parametrize(
    "rule", [r for g in RULES for r in g["rules"]], ids=lambda r: r.get("alert", "?")
)
def test_every_alert_rule_is_complete_and_names_exported_metrics(rule: dict) -> None:
    assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"]["severity"] in {"page", "warn"}
    assert rule["annotations"]["summary"]
    assert unknown_metrics(rule["expr"]) == set(), rule["expr"]
    assert rule["expr"].count("(") == rule["expr"].count(")")


def test_rules_cover_what_operations_asks_for() -> None:
    exprs = " ".join(r["expr"] for g in RULES for r in g["rules"])
    for needle in ("up{", 'kind="overdue"', "lienthong_consumer_lag", "lienthong_dead_letters"):
        assert needle in exprs


def test_scrape_targets_are_the_default_ports() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["rules.yml"]
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    s = load_settings(environ={})
    c = s.connectors
    assert targets == {
        "lienthong-worker": f"127.0.0.1:{s.worker.web_port}",
        "lienthong-gateway": f"127.0.0.1:{c.gateway.port}",
        "lienthong-portal": f"127.0.0.1:{c.portal.health_port}",
        "lienthong-postal": f"127.0.0.1:{c.postal.port}",
        "lienthong-central": f"127.0.0.1:{c.central.port}",
        "lienthong-broker-probe": f"127.0.0.1:{s.probe.port}",
    }
    assert all(job["metrics_path"] == "/metrics" for job in config["scrape_configs"])


def test_worker_lag_leaves_out_partitions_it_has_not_committed_yet() -> None:
    """A just-assigned partition (after a restart) is not "lagging by everything"."""
    from types import SimpleNamespace

    from faust.types import TP

    done, fresh, empty = (TP("dossier-events", p) for p in (0, 1, 2))
    high = {done: 50, fresh: 9000, empty: 0}

    class Consumer:
        _committed_offset = {done: 40}

        def assignment(self) -> set[TP]:
            return set(high)

        def highwater(self, tp: TP) -> int:
            return high[tp]

    rows = faust_lag_rows(SimpleNamespace(consumer=Consumer()), "lienthong")
    assert rows == [("lienthong", "dossier-events", 0, 10), ("lienthong", "dossier-events", 2, 0)]
