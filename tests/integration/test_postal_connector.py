"""Postal connector end to end: real broker, real fake-post HTTP server, connector subprocess.

The fake post runs in this process (so the test can read its order book and switch its
failure modes) but is only ever reached over HTTP; the connector is the real
``python -m lienthong.connectors.postal`` process, stopped with SIGTERM; the dossier tracker is
a real worker. Time is scaled so a day of postal delay takes about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from lienthong.connectors.sdk.producer import BusProducer
from lienthong.runtime.probe import free_port
from lienthong.schemas import decode
from lienthong.schemas.models import (
    DossierReceived,
    PostalOrderRequested,
    PostalTracking,
    ProcessingFinished,
    ResultReturned,
)
from tests.support.fakepost import FakePost
from tests.support.metrics import scrape, total
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"
PROC = "1.004227"
SECRET = "webhook-s3cret"


class Connector:
    """``python -m lienthong.connectors.postal`` as a subprocess."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = int(env["LIENTHONG_CONNECTORS__POSTAL__PORT"])
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Connector:
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lienthong.connectors.postal"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"connector exited:\n{self.log_tail()}")
            try:
                if self.health()["status"] == "ok":
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"connector not ready:\n{self.log_tail()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
            return json.loads(r.read())

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode if self.process else None


@pytest.fixture(autouse=True)
def bus_codec(bus_settings) -> Iterator[None]:
    """Encode and decode here with the registry the connector and worker use (the run dir)."""
    from lienthong.schemas import set_default_codec
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.registry import registry_from_settings

    set_default_codec(AvroCodec(registry_from_settings(bus_settings)))
    yield
    set_default_codec(None)


@pytest.fixture
def connector_env(bus_env: dict[str, str]) -> dict[str, str]:
    port = free_port()
    return {
        **bus_env,
        "LIENTHONG_CONNECTORS__POSTAL__PORT": str(port),
        "LIENTHONG_CONNECTORS__POSTAL__WEBHOOK_SECRET": SECRET,
        "LIENTHONG_CONNECTORS__POSTAL__POLL_INTERVAL_S": "0.3",
        "LIENTHONG_CONNECTORS__POSTAL__BASE_DELAY_S": "0.05",
        "LIENTHONG_CONNECTORS__POSTAL__MAX_DELAY_S": "0.2",
        "LIENTHONG_CONNECTORS__POSTAL__GROUP_ID": f"postal-{bus_env['LIENTHONG_TOPIC_PREFIX']}",
    }


@pytest.fixture
def start_connector(connector_env: dict[str, str], tmp_path: Path) -> Iterator[Callable]:
    started: list[Connector] = []

    def start(post: FakePost) -> Connector:
        env = {**connector_env, "LIENTHONG_CONNECTORS__POSTAL__URL": post.url}
        connector = Connector(env, tmp_path / f"connector-{len(started) + 1}.log")
        started.append(connector)
        return connector.start()

    yield start
    for connector in started:
        connector.stop()


def webhook_url(connector_env: dict[str, str]) -> str:
    return (
        f"http://127.0.0.1:{connector_env['LIENTHONG_CONNECTORS__POSTAL__PORT']}/webhooks/tracking"
    )


def read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=300).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def events(bootstrap: str, topic: str, cls: type) -> list[Any]:
    decoded = [decode(r.value) for r in read_all(bootstrap, topic)]
    return [e for e in decoded if isinstance(e, cls)]


def postal_order(
    dossier: str, order_id: str, kind: str = "delivery", deliver_by: datetime | None = None
) -> PostalOrderRequested:
    return PostalOrderRequested.create(
        dossier_id=dossier,
        producer_agency=CENTER,
        occurred_at=datetime.now(UTC),
        order_id=order_id,
        kind=kind,
        requesting_agency=CENTER,
        recipient_name="Nguyễn Văn C",
        address="12 Đồng Khởi, phường An Hội, TP Bến Tre",
        phone="0912345678",
        deliver_by=deliver_by,
    )


def test_delivery_by_post_returns_the_dossier(
    kafka_bootstrap, bus_settings, catalogue_topics, connector_env, start_connector, start_worker
):
    worker = start_worker()
    dossier = "H10.2611.0000101"
    now = datetime.now(UTC)
    with BusProducer(bus_settings) as producer:
        producer.publish(
            DossierReceived.create(
                dossier_id=dossier,
                producer_agency=CENTER,
                occurred_at=now - timedelta(hours=2),
                channel="counter",
                procedure_code=PROC,
                receiving_agency=CENTER,
                subject={"kind": "citizen", "identifier_hash": "ab" * 32},
                received_at=now - timedelta(hours=2),
                appointment_at=now + timedelta(days=10),
            )
        )
        producer.publish(
            ProcessingFinished.create(
                dossier_id=dossier,
                producer_agency=CENTER,
                occurred_at=now - timedelta(hours=1),
                agency=CENTER,
                outcome="approved",
            )
        )

        def slip_status() -> str | None:
            return worker.get_json(f"/dossiers/slip?id={dossier}").get("status")

        wait_for(lambda: slip_status() == "finished", 60, "dossier finished", worker.log_tail)
        with FakePost(webhook_url(connector_env), SECRET, failure_rate=0.0) as post:
            connector = start_connector(post)
            producer.publish(postal_order(dossier, f"DELIVERY-{dossier}"))
            wait_for(
                lambda: slip_status() == "returned", 60, "dossier returned", connector.log_tail
            )
            health = connector.health()
            scans = post.order_by_id(f"DELIVERY-{dossier}")["events"]

    assert [s["kind"] for s in scans] == ["result_dispatched", "delivered_to_citizen"]
    code = scans[0]["tracking_code"]
    returned = events(kafka_bootstrap, catalogue_topics["dossier-events"], ResultReturned)
    assert [(r.envelope.dossier_id, r.method.value, r.postal_tracking_code) for r in returned] == [
        (dossier, "post", code)
    ]
    assert returned[0].agency == CENTER
    tracking = events(kafka_bootstrap, catalogue_topics["postal-tracking"], PostalTracking)
    assert sorted((t.kind.value, t.envelope.dossier_id, t.tracking_code) for t in tracking) == [
        ("delivered_to_citizen", dossier, code),
        ("result_dispatched", dossier, code),
    ]
    # Webhooks and polls both ran; every scan was published once whichever came first.
    assert health["scans_webhook"] + health["scans_poll"] == 2, health
    assert health["deliveries"] == 1 and health["orders_placed"] == 1 and health["open_orders"] == 0
    portal = [decode(r.value) for r in read_all(kafka_bootstrap, catalogue_topics["portal-status"])]
    assert any(p.MaHoSo == dossier and p.TrangThaiHoSo == 10 for p in portal), [
        (p.MaHoSo, p.TrangThaiHoSo) for p in portal
    ]


def test_polling_alerts_dead_letters_and_restart(
    kafka_bootstrap, bus_settings, catalogue_topics, connector_env, start_connector
):
    # Every webhook lost and a busy post: polling alone must ingest, orders must be retried.
    with FakePost(
        webhook_url(connector_env),
        SECRET,
        failure_rate=0.0,
        webhook_drop_rate=1.0,
        error_rate=0.5,
        seed=3,
    ) as post:
        first = start_connector(post)
        soon = datetime.now(UTC) + timedelta(hours=6)
        with BusProducer(bus_settings) as producer:
            producer.publish(postal_order("H10.2611.0000201", "DELIVERY-201", deliver_by=soon))
            producer.publish(postal_order("H10.2611.0000202", "PICKUP-202", kind="pickup"))
            raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
            raw.send(catalogue_topics["postal-orders"], key=b"H10.2611.0000203", value=b"junk")
            raw.flush()
            raw.close()
            wait_for(
                lambda: (
                    (post.order_by_id("DELIVERY-201") or {}).get("status") == "delivered_to_citizen"
                    and (post.order_by_id("PICKUP-202") or {}).get("status")
                    == "delivered_to_center"
                ),
                30,
                "post finished the first two orders",
                first.log_tail,
            )
            post.control(stall=True, error_rate=0.0)
            due = datetime.now(UTC) + timedelta(seconds=2)
            producer.publish(postal_order("H10.2611.0000204", "DELIVERY-204", deliver_by=due))
            wait_for(
                lambda: first.health()["alerts"] >= 1 and first.health()["open_orders"] == 1,
                30,
                "overdue alert",
                first.log_tail,
            )
        expected = {
            "DELIVERY-201": ["result_dispatched", "delivered_to_citizen"],
            "PICKUP-202": ["collected", "delivered_to_center"],
            "DELIVERY-204": ["result_dispatched"],
        }
        wait_for(lambda: first.health()["scans_poll"] == 5, 20, "all scans polled", first.log_tail)
        # Two more poll rounds of the open order (counted at the fake post, not waited out by
        # the clock): nothing may be published twice.
        polled = post.polls_of("DELIVERY-204")
        wait_for(lambda: post.polls_of("DELIVERY-204") >= polled + 2, 20, "two more polls")
        health = first.health()
        _, samples = scrape(f"http://127.0.0.1:{first.port}")
        assert first.stop() == 0
        for event in ("scans_poll", "orders_placed", "dead_letters", "order_retries"):
            figure = total(samples, "lienthong_connector_events_total", event=event)
            assert figure == health[event], (event, figure, health)
        assert (
            total(samples, "lienthong_connector_open_items", item="open_orders")
            == (health["open_orders"])
        )
        assert health["scans_webhook"] == 0 and health["scans_poll"] == 5, health
        assert health["orders_placed"] == 3 and health["dead_letters"] == 1, health
        assert health["order_retries"] >= 1, health  # the 503s were retried, not dead-lettered
        for order_id, kinds in expected.items():
            assert [s["kind"] for s in post.order_by_id(order_id)["events"]] == kinds

        tracking = events(kafka_bootstrap, catalogue_topics["postal-tracking"], PostalTracking)
        ids = Counter(t.envelope.event_id for t in tracking)
        assert len(tracking) == 6 and set(ids.values()) == {1}  # 5 scans + pickup_ordered
        kinds = Counter((t.envelope.dossier_id, t.kind.value) for t in tracking)
        assert kinds[("H10.2611.0000202", "pickup_ordered")] == 1
        assert kinds[("H10.2611.0000204", "result_dispatched")] == 1
        alerts = [
            json.loads(r.value)
            for r in read_all(kafka_bootstrap, catalogue_topics["monitoring-alerts"])
        ]
        assert [(a["alert_type"], a["dossier_id"]) for a in alerts] == [
            ("postal_delivery_overdue", "H10.2611.0000204")
        ]
        dead = read_all(kafka_bootstrap, catalogue_topics["dead-letters"])
        assert [(d.key, d.value) for d in dead] == [(b"H10.2611.0000203", b"junk")]
        assert dict(dead[0].headers)["lienthong.dlq.consumer"] == b"connectors.postal"

        # Restart: nothing is placed again, no scan or alert is published again.
        attempts = post.post_attempts()
        second = start_connector(post)
        wait_for(lambda: second.health()["scans_duplicate"] >= 1, 20, "re-poll", second.log_tail)
        polled = post.polls_of("DELIVERY-204")
        wait_for(lambda: post.polls_of("DELIVERY-204") >= polled + 2, 20, "two more polls")
        after = second.health()
        assert after["orders_placed"] == 0 and after["open_orders"] == 1, after
        assert after["scans_poll"] == 0 and after["alerts"] == 0, after
        assert post.post_attempts() == attempts
        assert len(read_all(kafka_bootstrap, catalogue_topics["postal-tracking"])) == 6
        assert len(read_all(kafka_bootstrap, catalogue_topics["monitoring-alerts"])) == 1
        assert second.stop() == 0
