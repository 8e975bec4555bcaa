"""The broker probe process against the real broker: liveness, and a group's lag as it moves.

A consumer group commits part of a topic; the probe (``lienthong run broker-probe``, a real
subprocess) must report exactly the remaining records as that group's lag, follow the group
when it commits the rest, and say "down" (503, ``lienthong_broker_up 0``) for a dead broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lienthong.runtime import probe
from tests.support.metrics import scrape, total
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

RECORDS = 5


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def start_probe(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """Start ``lienthong run broker-probe`` with ``env``; returns its base URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        port = probe.free_port()
        log = (tmp_path / f"probe-{port}.log").open("ab")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "lienthong", "run", "broker-probe", "--port", str(port)],
                env={**os.environ, **env, "LIENTHONG_PROBE__MIN_INTERVAL_S": "0"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: health(url), 60, f"probe listening on {port}")
        return url

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=20) == 0, "the probe must stop cleanly on SIGTERM"


def test_probe_reports_a_groups_lag_and_follows_its_commits(
    bus_env: dict[str, str], kafka_bootstrap: str, unique_topic, start_probe
) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata

    topic = unique_topic("probe-lag")
    group = f"{topic}-group"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for n in range(RECORDS):
        producer.send(topic, f"r{n}".encode()).get(timeout=30)  # one record per batch
    producer.close()
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(2, "", -1)})

        url = start_probe(bus_env)
        status, body = wait_for(
            lambda: (lambda h: h if group in h[1]["groups"] else None)(health(url)),
            60,
            "the group in the probe's /health",
        )
        assert status == 200 and body["status"] == "ok" and body["broker_up"] is True
        assert body["groups"][group] == RECORDS - 2
        ctype, samples = scrape(url)
        assert ctype.startswith("text/plain")
        lag = {"group": group, "topic": topic, "partition": "0"}
        assert total(samples, "lienthong_consumer_lag", **lag) == RECORDS - 2
        assert total(samples, "lienthong_broker_up") == 1
        assert total(samples, "lienthong_broker_api_versions_seconds") > 0
        assert total(samples, "process_resident_memory_bytes") > 0

        consumer.commit({tp: OffsetAndMetadata(RECORDS, "", -1)})
        wait_for(
            lambda: total(scrape(url)[1], "lienthong_consumer_lag", **lag) == 0 or None,
            60,
            "lag back to 0 after the group committed the rest",
        )
    finally:
        consumer.close()


def test_probe_says_down_for_a_broker_that_does_not_answer(
    bus_env: dict[str, str], start_probe
) -> None:
    dead = f"127.0.0.1:{probe.free_port()}"
    url = start_probe({**bus_env, "LIENTHONG_BOOTSTRAP": dead})
    status, body = health(url)
    assert status == 503
    assert body["broker_up"] is False and body["error"] == "broker does not answer ApiVersions"
    _, samples = scrape(url)
    assert total(samples, "lienthong_broker_up") == 0
