"""Wire format: Confluent framing + Avro binary, round trips, golden bytes, typed decode errors."""

from __future__ import annotations

import io
import json

import avro.io
import avro.schema
import pytest

import lienthong.schemas as schemas
from lienthong.schemas import (
    EVENT_CLASSES,
    AvroCodec,
    AvroDecodeError,
    EncodeError,
    NotFramed,
    UnknownEventType,
    UnknownSchemaId,
    ValidationFailed,
    frame,
)
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.examples import example_event
from lienthong.schemas.models import AVRO_DIR, HandoffAccepted


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_round_trip_every_event(codec: AvroCodec, cls) -> None:
    event = example_event(cls.EVENT_TYPE)
    data = codec.encode(event)
    assert data[0] == 0
    decoded = codec.decode(data)
    assert type(decoded) is cls
    assert decoded == event
    assert decoded.model_dump_json() == event.model_dump_json()


# HandoffAccepted example under schema id 42: pins framing, field order, zig-zag longs,
# timestamp-micros and the uuid-as-string logical type. If this changes, the wire changed.
GOLDEN_HANDOFF_ACCEPTED = (
    "000000002a"  # magic 0 + schema id 42 big-endian
    "48"
    "30303030303030302d303030302d303030302d303030302d303030303030303030303063"  # event_id
    "20"
    "68616e646f66665f6163636570746564"  # event_type "handoff_accepted"
    "02"  # schema_version 1
    "02"
    "32"
    "3030302e30302e30312e4831302d3234303330312d30303031"  # dossier_id: union branch 1, len 25
    "1a"
    "3030302e30302e30312e483130"  # producer_agency
    "80d8c887eaa38906"  # occurred_at 2024-03-01T08:30+07:00 as timestamp-micros
    "80d8c887eaa38906"  # recorded_at
    "40"
    "3764316332613430653562323463306639613165336235633664376538663930"  # trace_id
    "00"  # causation_id: union branch 0 (null)
    "12"
    "484f2d303030312d31"  # handoff_id
    "1a"
    "3030302e30302e30312e483130"  # from_agency
    "1a"
    "3030302e30312e31312e483130"  # to_agency
    "02"  # step 1
)


def test_golden_bytes(memory_registry) -> None:
    memory_registry.ids["lienthong.events.HandoffAccepted"] = 42
    codec = AvroCodec(memory_registry)
    data = codec.encode(example_event("handoff_accepted"))
    assert data.hex() == GOLDEN_HANDOFF_ACCEPTED
    assert codec.decode(bytes.fromhex(GOLDEN_HANDOFF_ACCEPTED)) == example_event("handoff_accepted")


@pytest.mark.parametrize(
    "event_type", ["dossier_received", "portal_status_record", "live_stats_snapshot"]
)
def test_apache_avro_decodes_with_only_the_avsc(codec: AvroCodec, event_type: str) -> None:
    """A third party needs nothing but the .avsc and the framing rules."""
    data = codec.encode(example_event(event_type))
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert schema_id >= 1
    schema = avro.schema.parse((AVRO_DIR / f"{event_type}.avsc").read_text(encoding="utf-8"))
    reader = avro.io.DatumReader(schema)
    body = io.BytesIO(data[5:])
    record = reader.read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(data) - 5
    expected = example_event(event_type)
    assert str(record["envelope"]["event_id"]) == str(expected.envelope.event_id)
    occurred = record["envelope"]["occurred_at"]
    assert occurred == expected.envelope.occurred_at  # aware datetimes compare as instants
    if event_type == "portal_status_record":
        assert record["MaHoSo"] == expected.MaHoSo
        assert record["QuaTrinhXuLy"][1]["NoiDungXuLy"] == expected.QuaTrinhXuLy[1].NoiDungXuLy


def test_apache_avro_written_record_is_read_by_the_bus(codec: AvroCodec) -> None:
    """And the other way: a record written by stock Avro tooling is accepted."""
    event = example_event("handoff_sent")
    schema_id = codec.schema_id(type(event))
    schema = avro.schema.parse((AVRO_DIR / "handoff_sent.avsc").read_text(encoding="utf-8"))
    record = event.model_dump()
    record["envelope"]["event_id"] = str(event.envelope.event_id)  # avro wants uuid text
    out = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(out))
    assert codec.decode(frame(schema_id, out.getvalue())) == event


def test_module_level_encode_decode_and_kafka_callables(codec: AvroCodec) -> None:
    schemas.set_default_codec(codec)
    try:
        event = example_event("fee_paid")
        assert schemas.decode(schemas.encode(event)) == event
        assert schemas.value_deserializer(schemas.value_serializer(event)) == event
    finally:
        schemas.set_default_codec(None)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (None, "tombstone"),
        (b"", "shorter than the 5-byte"),
        (b"\x00\x00\x01", "shorter than the 5-byte"),
        (b'{"json": true}', "magic byte"),
    ],
)
def test_not_framed(codec: AvroCodec, data, match: str) -> None:
    with pytest.raises(NotFramed, match=match) as info:
        codec.decode(data)
    assert "\n" not in str(info.value)
    assert info.value.error_class == "NotFramed"


def test_unknown_schema_id(codec: AvroCodec) -> None:
    with pytest.raises(UnknownSchemaId, match="schema id 999 is not in the schema registry"):
        codec.decode(frame(999, b"\x00"))


def test_unknown_event_type(codec: AvroCodec) -> None:
    other = json.dumps({"type": "record", "name": "Other", "namespace": "x", "fields": []})
    schema_id = codec.registry.register("x.Other", other)
    with pytest.raises(UnknownEventType, match="x.Other"):
        codec.decode(frame(schema_id, b""))


def test_truncated_body(codec: AvroCodec) -> None:
    data = codec.encode(example_event("dossier_received"))
    with pytest.raises(AvroDecodeError, match="does not decode"):
        codec.decode(data[:-20])


def test_trailing_bytes(codec: AvroCodec) -> None:
    data = codec.encode(example_event("handoff_accepted"))
    with pytest.raises(AvroDecodeError, match="3 trailing bytes"):
        codec.decode(data + b"abc")


def test_validation_failure_carries_the_pydantic_path(codec: AvroCodec) -> None:
    event = example_event("handoff_accepted")
    bad = event.model_dump()
    bad["to_agency"] = "not-an-agency"
    schema_id = codec.schema_id(HandoffAccepted)
    out = io.BytesIO()
    import fastavro

    fastavro.schemaless_writer(
        out, fastavro.parse_schema(current_schema("handoff_accepted").schema), bad
    )
    with pytest.raises(ValidationFailed) as info:
        codec.decode(frame(schema_id, out.getvalue()))
    assert info.value.path == "to_agency"
    assert str(info.value).startswith("handoff_accepted: to_agency: String should match pattern")


def test_encode_rejects_non_events(codec: AvroCodec) -> None:
    with pytest.raises(EncodeError):
        codec.encode({"not": "a model"})  # type: ignore[arg-type]


def test_old_writer_schema_is_resolved_to_the_current_reader(codec: AvroCodec) -> None:
    """Schema evolution at read time: data written with an older schema decodes with defaults."""
    current = current_schema("handoff_returned").schema
    old = json.loads(json.dumps(current))
    old["fields"] = [f for f in old["fields"] if f["name"] != "note"]  # v0 had no note
    old_id = codec.registry.register("lienthong.events.HandoffReturned", json.dumps(old))
    import fastavro

    record = example_event("handoff_returned").model_dump()
    del record["note"]
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(old), record)
    decoded = codec.decode(frame(old_id, out.getvalue()))
    assert decoded.note is None
    assert decoded.handoff_id == "HO-0001-1"
