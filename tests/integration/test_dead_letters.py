"""Dead letters through a real broker: each bad input lands in the dead-letter topic with the
right reason and its original key/value/headers, while good records around it are processed.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from lienthong.cli.main import main as cli
from lienthong.connectors import headers as h
from lienthong.connectors.deadletter import (
    DLQ_REPLAYED_FROM,
    DeadLetterPublisher,
    FaustDeadLetterPublisher,
)
from lienthong.connectors.skeleton import ConsumeLoop, KafkaThread, per_record
from lienthong.schemas import AvroCodec, FileSchemaRegistry, Validator, frame, set_default_codec
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.examples import CENTER, LAND_OFFICE, example_event
from lienthong.schemas.models import VN_TZ, HandoffSent

pytestmark = pytest.mark.integration

NOW = datetime(2024, 3, 1, 9, 0, tzinfo=VN_TZ)
KNOWN = {CENTER, LAND_OFFICE}


@pytest.fixture
def codec(tmp_path: Path) -> Iterator[AvroCodec]:
    codec = AvroCodec(FileSchemaRegistry(tmp_path / "schema-registry.json"))
    set_default_codec(codec)  # the dlq CLI decodes with the default codec
    yield codec
    set_default_codec(None)


@pytest.fixture
def topics(kafka_bootstrap: str, unique_topic: Callable[[str], str]) -> dict[str, str]:
    names = {"source": unique_topic("dossier-events"), "dlq": unique_topic("dead-letters")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(names["source"], num_partitions=1, replication_factor=1),
                NewTopic(names["dlq"], num_partitions=3, replication_factor=1),
            ]
        )
    finally:
        admin.close()
    return names


def _raw_avro(codec: AvroCodec, record: dict[str, Any]) -> bytes:
    """Frame a handoff_sent record written without model validation (to smuggle bad data)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, fastavro.parse_schema(current_schema("handoff_sent").schema), record
    )
    return frame(codec.schema_id(HandoffSent), out.getvalue())


def _good(codec: AvroCodec, n: int) -> bytes:
    return codec.encode(example_event("handoff_sent", dossier_id=f"GOOD-{n}"))


def _bad_cases(codec: AvroCodec) -> dict[str, tuple[bytes, str, str]]:
    """name -> (value, error class, reason fragment)."""
    invalid = example_event("handoff_sent").model_dump()
    invalid["envelope"]["producer_agency"] = "H10-not-a-code"
    good = _good(codec, 0)
    return {
        "not_framed": (b'{"dossier_id": "x"}', "NotFramed", "expected magic byte 0x00"),
        "unknown_schema_id": (frame(4242, b"\x00"), "UnknownSchemaId", "schema id 4242"),
        "avro_undecodable": (good[:-12], "AvroDecodeError", "body does not decode"),
        "validation_failed": (
            _raw_avro(codec, invalid),
            "ValidationFailed",
            "handoff_sent: envelope.producer_agency: String should match pattern",
        ),
        "unknown_agency": (
            codec.encode(example_event("handoff_sent", producer_agency="000.00.99.H10")),
            "UnknownAgency",
            "envelope.producer_agency = '000.00.99.H10' is not a known agency",
        ),
        "future_event": (
            codec.encode(example_event("handoff_sent", occurred_at=NOW + timedelta(minutes=30))),
            "FutureEvent",
            "ahead of the consumer clock",
        ),
    }


def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes, list]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value, headers in items:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
    finally:
        producer.close()


def _read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@dataclass
class Gated:
    """What the connectors' consume loop (lienthong.connectors.skeleton) did with the input."""

    accepted: list[Any] = field(default_factory=list)
    rejected: int = 0


def _run_consumer(bootstrap: str, topics: dict[str, str], codec: AvroCodec, expected: int):
    """A real consumer group on the source topic, gated by the connectors' ConsumeLoop,
    dead-lettering to the dlq topic and committing after the dead letters are acknowledged."""
    gated = Gated()
    consumer = KafkaConsumer(
        topics["source"],
        bootstrap_servers=bootstrap,
        group_id=f"dlq-test-{topics['source']}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    kafka = KafkaThread("dlq-test")
    dead_letters = DeadLetterPublisher(producer, topics["dlq"], consumer_name="test-tracker")

    async def accept(event: Any, record: Any) -> None:
        gated.accepted.append(event)

    async def refuse(record: Any, error: Any) -> None:
        gated.rejected += 1
        dead_letters.publish(record, error)

    async def handle(polled: Any) -> None:
        await per_record(accept, refuse)(polled)
        await kafka.call(dead_letters.flush)  # durable before the loop commits

    loop = ConsumeLoop(
        kafka,
        consumer,
        handle,
        validate=Validator(codec, KNOWN.__contains__, clock=lambda: NOW).decode_or_reason,
    )

    async def run() -> None:
        deadline = time.monotonic() + 60
        while len(gated.accepted) + gated.rejected < expected and time.monotonic() < deadline:
            await loop.once()

    try:
        asyncio.run(run())
        assert len(gated.accepted) + gated.rejected == expected
        return gated.accepted, gated
    finally:
        kafka.shutdown()
        consumer.close()
        producer.close()


@pytest.mark.parametrize(
    "case",
    [
        "not_framed",
        "unknown_schema_id",
        "avro_undecodable",
        "validation_failed",
        "unknown_agency",
        "future_event",
    ],
)
def test_bad_record_is_dead_lettered_and_the_consumer_carries_on(
    kafka_bootstrap: str, topics: dict[str, str], codec: AvroCodec, case: str
) -> None:
    value, error_class, reason = _bad_cases(codec)[case]
    origin = [("x-origin", b"agency-system-7"), ("traceparent", b"00-abc-01")]
    _produce(
        kafka_bootstrap,
        topics["source"],
        [
            (b"GOOD-1", _good(codec, 1), []),
            (b"BAD-KEY", value, origin),
            (b"GOOD-2", _good(codec, 2), []),
        ],
    )
    accepted, gated = _run_consumer(kafka_bootstrap, topics, codec, expected=3)
    assert [e.envelope.dossier_id for e in accepted] == ["GOOD-1", "GOOD-2"]
    assert gated.rejected == 1

    (letter,) = _read_all(kafka_bootstrap, topics["dlq"], expected=1)
    assert letter.key == b"BAD-KEY"
    assert letter.value == value  # untouched bytes
    headers = list(letter.headers)
    assert headers[:2] == origin  # original headers first, untouched
    dlq = {k: v.decode() for k, v in headers[2:]}
    assert set(dlq) == set(h.DLQ_HEADERS)
    assert dlq[h.DLQ_SOURCE_TOPIC] == topics["source"]
    assert dlq[h.DLQ_SOURCE_PARTITION] == "0"
    assert dlq[h.DLQ_SOURCE_OFFSET] == "1"
    assert dlq[h.DLQ_ERROR_CLASS] == error_class
    assert reason in dlq[h.DLQ_REASON]
    assert "\n" not in dlq[h.DLQ_REASON]
    assert dlq[h.DLQ_CONSUMER] == "test-tracker"
    assert datetime.fromisoformat(dlq[h.DLQ_FAILED_AT]).tzinfo is not None


def test_dlq_cli_list_show_and_replay(
    kafka_bootstrap: str, topics: dict[str, str], codec: AvroCodec, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("LIENTHONG_BOOTSTRAP", kafka_bootstrap)
    cases = _bad_cases(codec)
    items = [
        (f"K-{name}".encode(), value, [("x-case", name.encode())])
        for name, (value, _, _) in cases.items()
    ]
    _produce(kafka_bootstrap, topics["source"], [(b"GOOD-1", _good(codec, 1), []), *items])
    _run_consumer(kafka_bootstrap, topics, codec, expected=len(items) + 1)
    common = ["--topic", topics["dlq"], "--bootstrap", kafka_bootstrap]

    capsys.readouterr()
    assert cli(["dlq", "list", *common]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(cases)
    classes = sorted(line.split("\t")[2] for line in lines[1:])
    assert classes == sorted(c for _, c, _ in cases.values())
    unknown_agency = next(line for line in lines[1:] if "\tUnknownAgency\t" in line)
    address = unknown_agency.split("\t")[0]
    assert f"{topics['source']}[0]@" in unknown_agency

    assert cli(["dlq", "show", address, *common]) == 0
    shown = capsys.readouterr().out
    assert "x-case: unknown_agency" in shown
    assert f"{h.DLQ_ERROR_CLASS}: UnknownAgency" in shown
    assert "avro (schema id" in shown and '"producer_agency": "000.00.99.H10"' in shown

    assert cli(["dlq", "show", "0:999", *common]) == 2  # one-line usage error

    assert cli(["dlq", "replay", "--error-class", "UnknownAgency", *common]) == 0
    assert "replayed" in capsys.readouterr().out
    source = _read_all(kafka_bootstrap, topics["source"], expected=len(items) + 2)
    replayed = [r for r in source if any(k == DLQ_REPLAYED_FROM for k, _ in r.headers)]
    assert len(replayed) == 1
    record = replayed[0]
    assert record.key == b"K-unknown_agency"
    assert record.value == cases["unknown_agency"][0]
    names = [k for k, _ in record.headers]
    assert names == ["x-case", DLQ_REPLAYED_FROM]
    assert dict(record.headers)[DLQ_REPLAYED_FROM] == f"{topics['dlq']}:{address}".encode()

    # once the agency is known, the replayed record is accepted
    accepted = Validator(codec, lambda code: True, clock=lambda: NOW).decode_or_reason(record.value)
    assert not isinstance(accepted, Exception)
    assert accepted.envelope.producer_agency == "000.00.99.H10"


def test_faust_dead_letter_publisher_preserves_the_record(
    kafka_bootstrap: str, topics: dict[str, str], codec: AvroCodec, tmp_path: Path
) -> None:
    """The Faust path: an agent's raw ``event.message`` is dead-lettered via the Faust producer."""
    import faust
    from faust.types import Message

    from lienthong.schemas import decode_or_reason

    app = faust.App(
        f"dlq-test-{topics['dlq']}",
        broker=f"kafka://{kafka_bootstrap}",
        datadir=str(tmp_path / "faust"),
        web_enabled=False,
        producer_acks=-1,
    )
    dlq_topic = app.topic(topics["dlq"], key_serializer="raw", value_serializer="raw")
    publisher = FaustDeadLetterPublisher(dlq_topic, consumer_name="faust-agent")
    message = Message(
        topic=topics["source"],
        partition=0,
        offset=17,
        timestamp=time.time(),
        timestamp_type=0,
        headers=[("x-origin", b"portal")],
        checksum=None,
        key=b"D-1",
        value=b"\x00\x00\x00\x10\x92garbage",
    )
    outcome = decode_or_reason(message.value, codec=codec)

    async def go() -> None:
        await app.producer.start()
        try:
            await publisher.publish(message, outcome)
            await app.producer.flush()
        finally:
            await app.producer.stop()

    asyncio.run(go())
    (letter,) = _read_all(kafka_bootstrap, topics["dlq"], expected=1)
    assert (letter.key, letter.value) == (b"D-1", message.value)
    dlq = {k: v.decode() for k, v in letter.headers}
    assert dlq["x-origin"] == "portal"
    assert dlq[h.DLQ_ERROR_CLASS] == "UnknownSchemaId"
    assert dlq[h.DLQ_SOURCE_OFFSET] == "17"
    assert dlq[h.DLQ_CONSUMER] == "faust-agent"
