"""Avro binary in the Confluent framing: ``0x00`` + 4-byte big-endian schema id + Avro body.

Why the standard framing: any Kafka tool (kcat -s avro, Confluent deserializers, Kafka UI) can
decode our topics given the registry, and a future cluster can switch to the Confluent registry
by configuration only.

Encoding registers the event's current schema on first use (subject per RecordNameStrategy) and
caches the 5-byte header. Decoding looks the writer schema up by id (cached), resolves it against
the current reader schema when the two differ (schema evolution), and validates the result with
the event's pydantic model, so a consumer only ever sees a validated model.

Speed: where the C extension (schemas/_avro_native.c) was built, it encodes and decodes the
happy path (12-14x fastavro, 10-15 % of a stream worker's CPU per event, benchmarks/bench_codec.py);
without a compiler every record goes through fastavro, with the same bytes.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
from pydantic import ValidationError

from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.errors import (
    AvroDecodeError,
    EncodeError,
    NotFramed,
    SchemaNotFound,
    UnknownEventType,
    UnknownSchemaId,
    ValidationFailed,
)
from lienthong.schemas.models import MODELS_BY_RECORD_NAME, Event
from lienthong.schemas.registry import SchemaRegistry, canonical_schema, subject_for

MAGIC = 0
HEADER_SIZE = 5


@dataclass(frozen=True)
class _Writer:
    header: bytes
    parsed: Any
    fast: Callable[[Any, bytes], bytes] | None = None


@dataclass(frozen=True)
class _Reader:
    model: type[Event]
    writer: Any
    reader: Any  # None when the writer schema is the current schema (no resolution needed)
    fast: Callable[[bytes], dict[str, Any]] | None = None  # only when ``reader`` is None
    validate: Callable[[Any], Any] | None = None


def frame(schema_id: int, body: bytes) -> bytes:
    """Confluent framing of an Avro body."""
    return bytes((MAGIC,)) + schema_id.to_bytes(4, "big") + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    """Schema id and body of a framed record; raises NotFramed."""
    if data is None:
        raise NotFramed("value is null (tombstone), expected an Avro record")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise NotFramed(f"value is {type(data).__name__}, expected bytes")
    if len(data) < HEADER_SIZE:
        raise NotFramed(f"value has {len(data)} bytes, shorter than the 5-byte framing header")
    if data[0] != MAGIC:
        raise NotFramed(f"first byte is 0x{data[0]:02x}, expected magic byte 0x00")
    return int.from_bytes(data[1:5], "big"), memoryview(data)[HEADER_SIZE:]


class AvroCodec:
    """Encode/decode catalogue events against one schema registry. Thread-safe.

    ``native`` None uses the C fast path when it was built; False forces fastavro alone (tests
    pin both paths to the same golden bytes); True insists on the C path.
    """

    def __init__(self, registry: SchemaRegistry, *, native: bool | None = None) -> None:
        self.registry = registry
        self.native = native
        self._writers: dict[type[Event], _Writer] = {}
        self._readers: dict[int, _Reader] = {}
        self._lock = threading.Lock()

    # --- encode ---------------------------------------------------------------------------------

    def _writer_for(self, model: type[Event]) -> _Writer:
        writer = self._writers.get(model)
        if writer is None:
            with self._lock:
                schema = current_schema(model.EVENT_TYPE)
                schema_id = self.registry.register(subject_for(schema.full_name), schema.text)
                parsed = fastavro.parse_schema(schema.schema, named_schemas={})
                header = bytes((MAGIC,)) + schema_id.to_bytes(4, "big")
                fast = compile_encoder(schema.schema, native=self.native)
                writer = _Writer(header, parsed, fast)
                self._writers[model] = writer
        return writer

    def schema_id(self, model: type[Event]) -> int:
        """The registry id of ``model``'s current schema (registers it on first use)."""
        return int.from_bytes(self._writer_for(model).header[1:], "big")

    def encode(self, event: Event) -> bytes:
        if not isinstance(event, Event):
            raise EncodeError(f"cannot encode {type(event).__name__}: not a lienthong event model")
        writer = self._writers.get(type(event)) or self._writer_for(type(event))
        if writer.fast is not None:
            try:
                return writer.fast(event, writer.header)
            except Exception:  # fastavro below gives the canonical error or bytes
                pass
        return self._encode_fastavro(event, writer)

    def _encode_fastavro(self, event: Event, writer: _Writer) -> bytes:
        """The reference encoder; the fast path must produce exactly these bytes."""
        out = io.BytesIO()
        out.write(writer.header)
        try:
            fastavro.schemaless_writer(out, writer.parsed, event.model_dump())
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{event.EVENT_TYPE} does not fit its schema: {exc}") from exc
        return out.getvalue()

    # --- decode ---------------------------------------------------------------------------------

    def _reader_for(self, schema_id: int) -> _Reader:
        reader = self._readers.get(schema_id)
        if reader is not None:
            return reader
        try:
            text = self.registry.get_schema(schema_id)
        except SchemaNotFound:
            raise UnknownSchemaId(schema_id) from None
        try:
            writer_schema = json.loads(text)
            name = writer_schema.get("name", "")
            namespace = writer_schema.get("namespace")
            full_name = name if "." in name or not namespace else f"{namespace}.{name}"
        except (ValueError, AttributeError) as exc:
            raise UnknownEventType(f"schema id {schema_id} is not a record schema") from exc
        model = MODELS_BY_RECORD_NAME.get(full_name)
        if model is None:
            raise UnknownEventType(f"schema id {schema_id} is {full_name!r}, not a catalogue event")
        current = current_schema(model.EVENT_TYPE)
        writer_parsed = fastavro.parse_schema(writer_schema, named_schemas={})
        reader_parsed = None
        fast = None
        if canonical_schema(writer_schema) != canonical_schema(current.schema):
            reader_parsed = fastavro.parse_schema(current.schema, named_schemas={})
        else:
            fast = compile_decoder(writer_schema, native=self.native)
        validate = model.__pydantic_validator__.validate_python
        reader = _Reader(model, writer_parsed, reader_parsed, fast, validate)
        self._readers[schema_id] = reader
        return reader

    def decode_record(self, data: bytes) -> tuple[type[Event], dict[str, Any]]:
        """Framing + Avro only, without model validation (used by inspection tools)."""
        schema_id, _ = unframe(data)
        reader = self._reader_for(schema_id)
        stream = io.BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(stream, reader.writer, reader.reader)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise AvroDecodeError(
                f"schema id {schema_id} ({reader.model.EVENT_TYPE}): body does not decode: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        left = len(data) - stream.tell()
        if left:
            raise AvroDecodeError(
                f"schema id {schema_id} ({reader.model.EVENT_TYPE}): {left} trailing bytes after "
                "the record"
            )
        return reader.model, record

    def decode(self, data: bytes) -> Event:
        """Validated model of a framed record; raises a DecodeError subclass.

        The C decoder handles well-formed records of already-seen schema ids. Anything it
        refuses, and any record pydantic rejects, is decoded again by the fastavro path so
        rejections keep exactly the error type and message they always had.
        """
        if type(data) is bytes and len(data) > HEADER_SIZE and data[0] == MAGIC:
            reader = self._readers.get(int.from_bytes(data[1:5], "big"))
            if reader is not None and reader.fast is not None:
                try:
                    record = reader.fast(data)
                except Exception:  # the fastavro path reports the real error
                    pass
                else:
                    try:
                        return reader.validate(record)  # type: ignore[misc,no-any-return]
                    except ValidationError:
                        pass
        return self._decode_fastavro(data)

    def _decode_fastavro(self, data: bytes) -> Event:
        model, record = self.decode_record(data)
        try:
            return model.model_validate(record)
        except ValidationError as exc:
            raise ValidationFailed(model.EVENT_TYPE, exc.errors()) from None


# --- native fast path ---------------------------------------------------------------------------
#
# schemas/_avro_native.c interprets a small tuple "program" built once per schema. Contract: on
# the happy path it writes exactly fastavro's bytes and reads exactly the record pydantic
# expects; on anything it is not sure about it raises and the caller re-runs fastavro, so every
# error, message and accepted/rejected input stays fastavro's. It is an optional build product:
# without a C compiler compile_encoder/compile_decoder return None and fastavro does all the work.

try:
    from lienthong.schemas import _avro_native as _native
except ImportError:  # pragma: no cover - depends on the build machine
    _native = None

NATIVE_AVAILABLE = _native is not None
_OPS = {
    "null": 0,
    "boolean": 1,
    "int": 2,
    "long": 3,
    "float": 4,
    "double": 5,
    "string": 6,
}
_OP_UUID, _OP_TIMESTAMP, _OP_ENUM, _OP_UNION_NULL, _OP_RECORD, _OP_ARRAY = 7, 8, 9, 10, 11, 12


class _Unsupported(Exception):
    """Schema feature the C program does not cover; the schema then uses fastavro only."""


def native_program(schema: Any) -> tuple[Any, ...]:
    """The node tuple the native codec interprets; raises _Unsupported for other shapes."""
    named: dict[str, Any] = {}

    def full_name(name: str, namespace: str | None) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def node(schema: Any, namespace: str | None) -> tuple[Any, ...]:
        if isinstance(schema, str) and schema not in _OPS:
            # A reference to a named type defined earlier in the schema.
            found = named.get(full_name(schema, namespace)) or named.get(schema)
            if found is None:
                raise _Unsupported(f"unknown named type {schema!r}")
            schema = found
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            named[full_name(schema["name"], namespace)] = schema
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null":
                raise _Unsupported("only [null, X] unions")
            return (_OP_UNION_NULL, node(schema[1], namespace))
        kind = schema if isinstance(schema, str) else schema.get("type")
        if isinstance(kind, dict | list):
            return node(kind, namespace)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if kind == "long" and logical == "timestamp-micros":
            return (_OP_TIMESTAMP,)
        if kind == "string" and logical == "uuid":
            return (_OP_UUID,)
        if logical is not None and kind in _OPS:
            raise _Unsupported(f"logical type {logical}")
        if kind in _OPS:
            return (_OPS[kind],)
        if kind == "enum":
            return (_OP_ENUM, tuple(schema["symbols"]))
        if kind == "record":
            names = tuple(field["name"] for field in schema["fields"])
            return (
                _OP_RECORD,
                names,
                tuple(node(field["type"], namespace) for field in schema["fields"]),
            )
        if kind == "array":
            return (_OP_ARRAY, node(schema["items"], namespace))
        raise _Unsupported(f"type {kind!r}")

    return node(schema, None)


def _use_native(native: bool | None) -> bool:
    """None = whatever was built; True insists on the extension; False = fastavro only."""
    if native and _native is None:
        raise RuntimeError("the native codec extension is not built")
    return NATIVE_AVAILABLE if native is None else native


def compile_encoder(
    schema: dict[str, Any], *, native: bool | None = None
) -> Callable[[Any, bytes], bytes] | None:
    """``fn(model, head)``: ``head`` + the Avro body of ``model``; None = use fastavro.

    None also when the C path is off (``native`` False, or not built) or the schema has a shape
    the C program does not cover.
    """
    if not _use_native(native):
        return None
    try:
        return _native.Encoder(native_program(schema))  # type: ignore[no-any-return,union-attr]
    except _Unsupported:
        return None


def compile_decoder(
    schema: dict[str, Any], *, native: bool | None = None, header_size: int = HEADER_SIZE
) -> Callable[[bytes], dict[str, Any]] | None:
    """``fn(framed)`` returning the record dict of a framed body; None = use fastavro.

    The dict is ready for pydantic (uuids as text, timestamps as aware UTC datetimes); it raises
    on anything short of a whole, well-formed body with no trailing bytes. ``native`` as in
    :func:`compile_encoder`; ``header_size``: the bytes before the body (the Confluent 5).
    """
    if not _use_native(native):
        return None
    try:
        return _native.Decoder(native_program(schema), header_size)  # type: ignore[no-any-return,union-attr]
    except _Unsupported:
        return None
