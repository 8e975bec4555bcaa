"""kafka-python producer → real Faust worker subprocess → records written back.

The dead-letter monitor is the agent under test: it must raise one alert per dead letter,
count exactly, and not count again what it sees a second time after a crash.
"""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from lienthong.connectors import headers as H

pytestmark = pytest.mark.integration


def _dead_letter(producer: KafkaProducer, topic: str, dossier: str, error_class: str) -> None:
    producer.send(
        topic,
        key=dossier.encode(),
        value=b"\x07not-avro",
        headers=[
            ("agency-header", b"kept"),
            (H.DLQ_SOURCE_TOPIC, b"dossier-events"),
            (H.DLQ_SOURCE_PARTITION, b"2"),
            (H.DLQ_SOURCE_OFFSET, b"41"),
            (H.DLQ_ERROR_CLASS, error_class.encode()),
            (H.DLQ_REASON, f"{error_class}: test record for {dossier}".encode()),
        ],
    )


def _alerts(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[dict]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        enable_auto_commit=False,
    )
    alerts: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(alerts) < expected and time.monotonic() < deadline:
            for message in consumer:
                alerts.append(json.loads(message.value))
    finally:
        consumer.close()
    return alerts


def test_worker_raises_one_alert_per_dead_letter_and_counts_exactly(
    kafka_bootstrap, catalogue_topics, start_worker
):
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(5):
        _dead_letter(producer, catalogue_topics["dead-letters"], f"HS-{i}", "NotFramed")
    _dead_letter(producer, catalogue_topics["dead-letters"], "HS-9", "UnknownAgency")
    producer.flush()

    worker = start_worker()
    alerts = _alerts(kafka_bootstrap, catalogue_topics["monitoring-alerts"], 6)
    assert len(alerts) == 6, worker.log_tail()
    by_dossier = {a["dossier_id"]: a for a in alerts}
    assert set(by_dossier) == {"HS-0", "HS-1", "HS-2", "HS-3", "HS-4", "HS-9"}
    assert by_dossier["HS-9"]["error_class"] == "UnknownAgency"
    assert by_dossier["HS-9"]["reason"] == "UnknownAgency: test record for HS-9"
    assert by_dossier["HS-9"]["source_topic"] == "dossier-events"
    assert by_dossier["HS-9"]["source_offset"] == "41"
    assert len({a["alert_id"] for a in alerts}) == 6

    summary = worker.get_json("/dead-letters/summary")
    assert summary == {
        "by_source": {"dossier-events": {"NotFramed": 5, "UnknownAgency": 1}},
        "total": 6,
    }


def test_counts_survive_sigkill_without_double_counting(
    kafka_bootstrap, catalogue_topics, start_worker
):
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(20):
        _dead_letter(producer, catalogue_topics["dead-letters"], f"HS-{i}", "AvroDecodeError")
    producer.flush()
    first = start_worker()
    assert len(_alerts(kafka_bootstrap, catalogue_topics["monitoring-alerts"], 20)) >= 20
    first.kill()

    for i in range(20, 25):
        _dead_letter(producer, catalogue_topics["dead-letters"], f"HS-{i}", "AvroDecodeError")
    producer.flush()
    second = start_worker()
    deadline = time.monotonic() + 60
    summary: dict = {}
    while time.monotonic() < deadline:
        summary = second.get_json("/dead-letters/summary")
        if summary["total"] >= 25:
            break
        time.sleep(0.5)
    # A wrongly re-counting worker has overshot once it has committed all its input.
    second.wait_caught_up()
    summary = second.get_json("/dead-letters/summary")
    assert summary["total"] == 25, (summary, second.log_tail(5))
