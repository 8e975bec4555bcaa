"""The native (C) encoder/decoder against the fastavro reference and stock Apache Avro.

Why: the C extension exists only for speed; these tests pin that it writes the very bytes
fastavro writes, reads them back to what fastavro reads, and never accepts what the fastavro
path rejects. Without the extension (no C compiler) they skip, except in CI where
test_native_extension_is_built fails instead; the golden bytes (test_wire_golden) cover fastavro.
"""

from __future__ import annotations

import io
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest
from pydantic import ValidationError

from lienthong.schemas import (
    EVENT_CLASSES,
    AvroCodec,
    AvroDecodeError,
    DecodeError,
    ValidationFailed,
    frame,
)
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.codec import NATIVE_AVAILABLE, compile_decoder, compile_encoder
from lienthong.schemas.examples import example_event
from lienthong.schemas.models import HandoffAccepted
from tests.unit.schemas.wire_cases import INSTANTS, varint_sweep


def _fastavro_body(event: Any) -> bytes:
    out = io.BytesIO()
    schema = fastavro.parse_schema(current_schema(event.EVENT_TYPE).schema, named_schemas={})
    fastavro.schemaless_writer(out, schema, event.model_dump())
    return out.getvalue()


needs_native = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="native extension not built")


def _compiled_body(event: Any) -> bytes:
    encoder = compile_encoder(current_schema(event.EVENT_TYPE).schema, native=True)
    assert encoder is not None
    return encoder(event, b"")


def test_native_extension_is_built() -> None:
    """CI and `make setup` build schemas/_avro_native.c; a missing build must not go unnoticed
    there (elsewhere the codec falls back to fastavro)."""
    if not (os.environ.get("CI") or os.environ.get("LIENTHONG_REQUIRE_NATIVE")):
        pytest.skip("only required in CI or with LIENTHONG_REQUIRE_NATIVE=1")
    assert NATIVE_AVAILABLE, "the native codec extension was not built (is a C compiler there?)"


@needs_native
@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_compiled_bytes_equal_fastavro_and_apache_avro_reads_them(cls) -> None:
    event = example_event(cls.EVENT_TYPE)
    body = _compiled_body(event)
    assert body == _fastavro_body(event)
    schema = avro.schema.parse(current_schema(cls.EVENT_TYPE).text)
    stream = io.BytesIO(body)
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(stream))
    assert stream.tell() == len(body)
    assert str(record["envelope"]["event_id"]) == str(event.envelope.event_id)
    assert record["envelope"]["occurred_at"] == event.envelope.occurred_at


@needs_native
@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_compiled_decoder_reads_what_fastavro_reads(cls) -> None:
    schema = current_schema(cls.EVENT_TYPE).schema
    event = example_event(cls.EVENT_TYPE)
    framed = frame(1, _fastavro_body(event))
    decoder = compile_decoder(schema, native=True)
    assert decoder is not None
    ours = cls.model_validate(decoder(framed))
    parsed = fastavro.parse_schema(schema, named_schemas={})
    theirs = cls.model_validate(fastavro.schemaless_reader(io.BytesIO(framed[5:]), parsed, None))
    assert ours == theirs == event


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_codec_round_trip_uses_identical_bytes(codec: AvroCodec, cls) -> None:
    event = example_event(cls.EVENT_TYPE)
    data = codec.encode(event)
    assert data[5:] == _fastavro_body(event)
    assert codec.decode(data) == event
    assert codec.decode(data) == event  # second time through the compiled decoder


def test_longs_and_timestamps_across_the_range(codec: AvroCodec) -> None:
    """Every varint length, negative and far timestamps, against fastavro byte for byte."""
    base = example_event("deadline_warning")
    for value, due in varint_sweep():
        event = base.model_copy(update={"remaining_working_minutes": value, "due_at": due})
        data = codec.encode(event)
        assert data[5:] == _fastavro_body(event), value
        decoded = codec.decode(data)
        assert decoded.remaining_working_minutes == value
        assert decoded.due_at == due


def _handoff_body(**changes: Any) -> bytes:
    record = example_event("handoff_accepted").model_dump()
    record.update(changes)
    out = io.BytesIO()
    schema = fastavro.parse_schema(current_schema("handoff_accepted").schema, named_schemas={})
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def _reference_error(codec: AvroCodec, data: bytes) -> DecodeError:
    """What the fastavro path alone says about ``data``."""
    with pytest.raises(DecodeError) as info:
        codec._decode_fastavro(data)
    return info.value


@pytest.mark.parametrize(
    "changes",
    [
        {"to_agency": "not-an-agency"},
        {"handoff_id": ""},
        {"step": 0},
        {"event_type": "fee_paid"},
    ],
    ids=["agency-pattern", "empty-string", "step-range", "type-mismatch"],
)
def test_compiled_path_rejects_like_the_reference(codec: AvroCodec, changes: dict) -> None:
    schema_id = codec.schema_id(HandoffAccepted)
    codec.decode(codec.encode(example_event("handoff_accepted")))  # warm the compiled reader
    if "event_type" in changes:
        record = example_event("handoff_accepted").model_dump()
        record["envelope"]["event_type"] = changes.pop("event_type")
        changes = {"envelope": record["envelope"]}
    data = frame(schema_id, _handoff_body(**changes))
    expected = _reference_error(codec, data)
    with pytest.raises(ValidationFailed) as info:
        codec.decode(data)
    assert str(info.value) == str(expected)


def test_malformed_uuid_is_rejected_as_before(codec: AvroCodec) -> None:
    schema_id = codec.schema_id(HandoffAccepted)
    codec.decode(codec.encode(example_event("handoff_accepted")))
    record = example_event("handoff_accepted").model_dump()
    record["envelope"]["event_id"] = "not-a-uuid"
    out = io.BytesIO()
    schema = fastavro.parse_schema(current_schema("handoff_accepted").schema, named_schemas={})
    fastavro.schemaless_writer(out, schema, record)  # fastavro writes uuid text unchecked
    data = frame(schema_id, out.getvalue())
    expected = _reference_error(codec, data)
    with pytest.raises(type(expected)) as info:
        codec.decode(data)
    assert str(info.value) == str(expected)


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_truncated_and_padded_bodies_fall_back_to_the_reference_error(
    codec: AvroCodec, cut: int
) -> None:
    data = codec.encode(example_event("dossier_received"))
    codec.decode(data)
    for bad in (data[:-cut], data + b"\x00" * cut):
        expected = _reference_error(codec, bad)
        with pytest.raises(AvroDecodeError) as info:
            codec.decode(bad)
        assert str(info.value) == str(expected)


def test_random_corruption_never_accepted_when_the_reference_rejects(codec: AvroCodec) -> None:
    rnd = random.Random(3)
    data = codec.encode(example_event("dossier_received"))
    codec.decode(data)
    for _ in range(2000):
        bad = bytearray(data)
        for _ in range(rnd.randint(1, 3)):
            bad[rnd.randrange(5, len(bad))] = rnd.randrange(256)
        bad = bytes(bad)
        try:
            expected: Any = codec._decode_fastavro(bad)
        except DecodeError as exc:
            expected = exc
        try:
            got: Any = codec.decode(bad)
        except DecodeError as exc:
            got = exc
        if isinstance(expected, DecodeError):
            assert type(got) is type(expected) and str(got) == str(expected)
        else:
            assert got == expected


@pytest.mark.parametrize(
    ("event_type", "update"),
    [
        ("supplement_received", {"documents": []}),
        ("supplement_requested", {"documents": ["x" * 70] * 3, "supplement_due_at": None}),
        ("portal_status_record", {"QuaTrinhXuLy": []}),
        ("dossier_received", {"appointment_at": None}),
        ("handoff_returned", {"note": "ghi chú " * 2000}),
        ("handoff_returned", {"note": ""}),
        ("live_stats_snapshot", {"on_time_rate": 0.125, "online_rate": None, "received": 10**12}),
    ],
)
@needs_native
def test_edges_empty_arrays_nulls_and_long_strings(
    codec: AvroCodec, event_type: str, update: dict
) -> None:
    event = example_event(event_type).model_copy(update=update)
    assert _compiled_body(event) == _fastavro_body(event)
    data = codec.encode(event)
    decoder = compile_decoder(current_schema(event_type).schema, native=True)
    assert decoder is not None
    assert type(event).model_validate(decoder(data)) == event
    assert codec.decode(data) == event


@needs_native
def test_values_the_compiled_encoder_declines_go_through_fastavro(codec: AvroCodec) -> None:
    """An Avro int beyond 32 bits (model_copy skips validation): fastavro writes it unchecked,
    the compiled encoder declines, and the codec still produces fastavro's bytes."""
    event = example_event("handoff_accepted").model_copy(update={"step": 2**40})
    encoder = compile_encoder(current_schema("handoff_accepted").schema, native=True)
    assert encoder is not None
    with pytest.raises(Exception):  # noqa: B017 - any exception means "decline"
        encoder(event, b"")
    assert codec.encode(event)[5:] == _fastavro_body(event)


@needs_native
def test_timestamps_in_any_zone_encode_the_same_instant() -> None:
    """Aware datetimes in Vietnam time, odd fixed offsets and a DST zone (both folds of an
    ambiguous hour), early and late years: the same bytes as fastavro, decoded to the instant."""
    schema = current_schema("deadline_warning").schema
    encoder = compile_encoder(schema, native=True)
    decoder = compile_decoder(schema, native=True)
    assert encoder is not None and decoder is not None
    base = example_event("deadline_warning")
    for due in INSTANTS:
        event = base.model_copy(update={"due_at": due})
        body = encoder(event, b"\x00\x00\x00\x00\x01")
        assert body[5:] == _fastavro_body(event), due
        # Compared as microseconds since the epoch: PEP 495 makes ``==`` across zones False for
        # times in a repeated hour, even when they are the same instant.
        epoch, micro = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
        assert (decoder(body)["due_at"] - epoch) // micro == (due - epoch) // micro, due


@needs_native
def test_naive_datetimes_and_foreign_objects_are_declined() -> None:
    """The compiled encoders judge nothing: a naive datetime or a wrong type is declined (the
    codec then lets fastavro raise its own error)."""
    schema = current_schema("deadline_warning").schema
    encoder = compile_encoder(schema, native=True)
    assert encoder is not None
    base = example_event("deadline_warning")
    for update in ({"due_at": datetime(2026, 1, 1)}, {"due_at": "2026-01-01"}, {"step": "2"}):
        with pytest.raises(Exception):  # noqa: B017 - any exception means "decline"
            encoder(base.model_copy(update=update), b"")


def _validated(model: Any, record: Any) -> Any:
    """The model pydantic makes of a decoded record, or "rejected"."""
    try:
        return model.model_validate(record)
    except ValidationError:
        return "rejected"


def _fastavro_event(model: Any, schema: Any, framed: bytes) -> Any:
    """What the fastavro path makes of a framed body: a model or "rejected"."""
    stream = io.BytesIO(framed[5:])
    try:
        record = fastavro.schemaless_reader(stream, schema, None)
    except Exception:  # fastavro raises many types on corrupt input
        return "rejected"
    return "rejected" if stream.tell() != len(framed) - 5 else _validated(model, record)


@needs_native
@pytest.mark.parametrize(
    "event_type", ["dossier_received", "portal_status_record", "live_stats_snapshot"]
)
def test_native_decoder_never_accepts_what_fastavro_rejects_on_corrupted_bodies(
    event_type: str,
) -> None:
    """Differential check of the C decoder against fastavro on 3,000 damaged records each
    (flipped bytes, cuts, random tails): the C decoder declines, or its record validates to what fastavro's path gives
    (the same event, or a rejection)."""
    rnd = random.Random(11)
    schema = current_schema(event_type).schema
    parsed = fastavro.parse_schema(schema, named_schemas={})
    native = compile_decoder(schema, native=True)
    assert native is not None
    model = type(example_event(event_type))
    good = frame(1, _fastavro_body(example_event(event_type)))
    accepted = 0
    for i in range(3000):
        bad = bytearray(good)
        if i % 3 == 0:
            for _ in range(rnd.randint(1, 4)):
                bad[rnd.randrange(5, len(bad))] = rnd.randrange(256)
        elif i % 3 == 1:
            del bad[rnd.randrange(5, len(bad)) :]
        else:
            bad += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 9)))
        try:
            ours = native(bytes(bad))
        except Exception:  # a decline: the codec then asks fastavro
            continue
        accepted += 1
        # Compared as models: the C decoder leaves uuid text to pydantic, fastavro parses it.
        # A record pydantic rejects is decoded again by fastavro (AvroCodec.decode), so only
        # accepted ones must match ("_" in a uuid: int() takes it, pydantic does not).
        event = _validated(model, ours)
        if event != "rejected":
            assert event == _fastavro_event(model, parsed, bytes(bad)), bytes(bad).hex()
    assert accepted > 0  # some damage (e.g. a changed character) still decodes
