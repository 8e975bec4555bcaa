"""The broker probe's pure parts: lag rows from offsets, its /health body, its gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from lienthong.runtime.broker_probe import BrokerCollector, GroupLag, ProbeSample, group_lags


def test_lag_is_end_minus_committed_and_never_negative() -> None:
    committed = {
        "portal": {("portal-status", 0): 7, ("portal-status", 1): 12},
        "postal": {("postal-orders", 0): 3},
    }
    ends = {("portal-status", 0): 10, ("portal-status", 1): 11, ("postal-orders", 0): 3}
    rows = group_lags(committed, ends)
    assert [(r.group, r.topic, r.partition, r.lag) for r in rows] == [
        ("portal", "portal-status", 0, 3),
        # Tansu's end offset is a lower bound: a committed offset past it is lag 0, not -1.
        ("portal", "portal-status", 1, 0),
        ("postal", "postal-orders", 0, 0),
    ]


def test_partitions_without_an_end_or_a_commit_are_left_out() -> None:
    committed = {"g": {("t", 0): -1, ("t", 1): 4, ("gone", 0): 2}}
    rows = group_lags(committed, {("t", 0): 9, ("t", 1): 6})
    assert rows == (GroupLag("g", "t", 1, 4, 6),)


def test_health_sums_lag_per_group_and_says_degraded_when_groups_fail() -> None:
    lags = (GroupLag("a", "t", 0, 1, 4), GroupLag("a", "t", 1, 0, 2), GroupLag("b", "t", 0, 5, 5))
    ok = ProbeSample(at=1.0, up=True, api_versions_s=0.002, lags=lags)
    assert ok.health()["status"] == "ok"
    assert ok.health()["groups"] == {"a": 5, "b": 0}
    failing = ProbeSample(at=1.0, up=True, api_versions_s=0.002, error="TimeoutError: x")
    assert failing.health()["status"] == "degraded"
    down = ProbeSample(at=1.0, up=False, api_versions_s=None, error="no answer")
    assert down.health()["broker_up"] is False


def test_collector_reports_up_and_round_trip() -> None:
    registry = CollectorRegistry()
    sample = ProbeSample(at=1.0, up=True, api_versions_s=0.25)
    registry.register(BrokerCollector(lambda: sample))
    text = generate_latest(registry).decode()
    assert "lienthong_broker_up 1.0" in text
    assert "lienthong_broker_api_versions_seconds 0.25" in text
    registry = CollectorRegistry()
    registry.register(BrokerCollector(lambda: ProbeSample(at=1.0, up=False, api_versions_s=None)))
    values = [line for line in generate_latest(registry).decode().splitlines() if line[0] != "#"]
    assert values == ["lienthong_broker_up 0.0"]  # no round trip when the broker is down
