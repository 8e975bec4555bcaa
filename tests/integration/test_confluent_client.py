"""A standard client decodes our topics: confluent-kafka's AvroDeserializer (librdkafka), its
schemas fetched by id from the embedded registry's Confluent REST API.

Why: the Confluent framing and the registry's read API are only worth having if tools we did
not write can use them. Debian's kcat 1.7.1 is built without Avro/Schema-Registry support
("This build of kcat lacks Avro/Schema-Registry support"), so confluent-kafka is the test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from lienthong.runtime.probe import free_port

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công
PROC = "1.004227"


@pytest.fixture
def registry_url(bus_settings: Any) -> Iterator[str]:
    """The Confluent read API over this test's file registry, on a real TCP port."""
    from lienthong.schemas.registry import registry_from_settings
    from lienthong.schemas.rest import create_app

    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(registry_from_settings(bus_settings)))
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "registry REST did not start"
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def test_confluent_avro_deserializer_decodes_our_records_through_the_registry(
    bus_settings: Any, kafka_bootstrap: str, catalogue_topics: dict[str, str], registry_url: str
) -> None:
    from lienthong.connectors.sdk import BusClient, BusProducer
    from lienthong.schemas import AvroCodec, registry_from_settings

    producer = BusProducer(bus_settings, codec=AvroCodec(registry_from_settings(bus_settings)))
    center = BusClient(producer, agency=CENTER)
    now = datetime.now(UTC)
    sent = [f"H10-K{now.microsecond:06d}-{i}" for i in range(3)]
    try:
        for dossier in sent:
            center.publish_received(
                dossier,
                procedure_code=PROC,
                identifier_hash="cd" * 32,
                channel="online",
                received_at=now,
                appointment_at=now + timedelta(days=5),
            )
        producer.flush()
    finally:
        producer.close()

    topic = catalogue_topics["dossier-events"]
    values = _confluent_read(kafka_bootstrap, topic, registry_url, len(sent))
    by_dossier = {v["envelope"]["dossier_id"]: v for v in values}
    assert sorted(by_dossier) == sorted(sent)
    for value in values:
        assert value["envelope"]["event_type"] == "dossier_received"
        assert value["envelope"]["producer_agency"] == CENTER
        assert value["procedure_code"] == PROC
        assert value["channel"] == "online"


def _confluent_read(bootstrap: str, topic: str, registry_url: str, want: int) -> list[dict]:
    """Consume ``want`` records with confluent-kafka's AvroDeserializer, schema by id over REST."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"kcat-{topic}", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])  # from the beginning
    values: list[dict] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < want and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            context = SerializationContext(topic, MessageField.VALUE)
            value = deserialize(message.value(), context)
            assert message.key().decode() == value["envelope"]["dossier_id"]  # key = dossier id
            values.append(value)
    finally:
        consumer.close()
    assert len(values) == want, f"read {len(values)} of {want} records"
    return values
