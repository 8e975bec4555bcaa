"""Avro binary in the Confluent framing: ``0x00`` + 4-byte big-endian schema id + Avro body.

Why the standard framing: any Kafka tool (kcat -s avro, Confluent deserializers, Kafka UI) can
decode our topics given the registry, and a future cluster can switch to the Confluent registry
by configuration only.

Encoding registers the event's current schema on first use (subject per RecordNameStrategy) and
caches the 5-byte header. Decoding looks the writer schema up by id (cached), resolves it against
the current reader schema when the two differ (schema evolution), and validates the result with
the event's pydantic model, so a consumer only ever sees a validated model.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """Encode/decode catalogue events against one schema registry. Thread-safe."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
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
                writer = _Writer(header, parsed, compile_encoder(schema.schema))
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
            fast = compile_decoder(writer_schema)
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

        The compiled decoder handles well-formed records of already-seen schema ids. Anything it
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


# --- compiled fast path -------------------------------------------------------------------------
#
# fastavro's generic writer/reader walk the parsed schema for every record (~13 µs each way for
# dossier_received); a function generated once per schema does the same work in a few µs. The
# generated code is deliberately conservative: any value or byte sequence it is not sure about
# raises, and the caller then re-runs the exact fastavro path, so errors, messages and every
# accepted/rejected input stay those of fastavro. Only the happy path is faster.

_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "string", "bytes"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_PACK_D = struct.Struct("<d").pack
_PACK_F = struct.Struct("<f").pack
_UNPACK_D = struct.Struct("<d").unpack_from
_UNPACK_F = struct.Struct("<f").unpack_from
_US = timedelta(microseconds=1)

# Varints of up to 8 bytes (values below 2**56) convert between 7-bit groups and bytes in three
# mask-and-shift steps (a software pdep/pext) instead of one Python loop iteration per byte.
_SPREAD = (
    (0x0FFFFFFF, 0x00FFFFFFF0000000, 4),
    (0x00003FFF00003FFF, 0x0FFFC0000FFFC000, 2),
    (0x007F007F007F007F, 0x3F803F803F803F80, 1),
)
_COMPACT = (
    (0x007F007F007F007F, 0x7F007F007F007F00, 1),
    (0x00003FFF00003FFF, 0x3FFF00003FFF0000, 2),
    (0x0FFFFFFF, 0x0FFFFFFF00000000, 4),
)
_HIGH_BITS = 0x8080808080808080
_LOW_BITS = 0x7F7F7F7F7F7F7F7F
_CONTINUATION = tuple(int.from_bytes(b"\x80" * (k - 1), "little") for k in range(9))


class _Unsupported(Exception):
    """Schema feature the generator does not cover; the schema then uses fastavro only."""


class _Bad(Exception):
    """Input the fast path will not judge; fastavro decides instead."""


def _write_long(out: bytearray, value: int, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _Bad
    n = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    if n >> 56:
        while n > 0x7F:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return
    # Up to 8 groups of 7 bits: spread them into bytes with three mask-and-shift steps instead
    # of a per-byte loop (timestamps are 8-byte varints, the commonest long on the bus).
    size = (n.bit_length() + 6) // 7 or 1
    for mask, high, shift in _SPREAD:
        n = (n & mask) | ((n & high) << shift)
    out += (n | _CONTINUATION[size]).to_bytes(size, "little")


def _read_varint(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """Rest of a varint whose first byte had the continuation bit (fastavro reads 64 bits)."""
    chunk = buf[pos - 1 : pos + 7]
    if len(chunk) == 8:
        x = int.from_bytes(chunk, "little")
        ends = ~x & 0x8080808080808080
        if ends:
            size = (ends & -ends).bit_length() // 8
            x &= _LOW_BITS & ((1 << (8 * size)) - 1)
            for mask, high, shift in _COMPACT:
                x = (x & mask) | ((x & high) >> shift)
            return x, pos - 1 + size
    n = first & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Bad
    if n >> 64:
        raise _Bad
    return n, pos


def _uuid_text(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if type(value) is not str:
        raise _Bad
    return value


class _Gen:
    """Source builder for one schema's encoder or decoder."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "_Bad": _Bad,
            "_wl": _write_long,
            "_lb": _long_bytes,
            "_LEN": _LENGTHS,
            "_SMALL": _SMALL_LONGS,
            "_rv": _read_varint,
            "_uuid_text": _uuid_text,
            "_UUID": uuid.UUID,
            "_EPOCH": _EPOCH,
            "_US": _US,
            "_PD": _PACK_D,
            "_PF": _PACK_F,
            "_UD": _UNPACK_D,
            "_UF": _UNPACK_F,
        }
        self.count = 0
        self.named: dict[str, dict[str, Any]] = {}

    def var(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any) -> str:
        name = self.var("_k")
        self.env[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        """Named-type references replaced by their definition; definitions recorded."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema, namespace
            full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
            found = self.named.get(full) or self.named.get(schema)
            if found is None:
                raise _Unsupported(f"unknown named type {schema!r}")
            return found, found.get("namespace", namespace)
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            name = schema["name"]
            ns = schema.get("namespace", namespace)
            full = name if "." in name or not ns else f"{ns}.{name}"
            self.named[full] = schema
            return schema, ns
        return schema, namespace

    def function(self, name: str, args: str) -> Any:
        source = f"def {name}({args}):\n" + "\n".join(self.lines) + "\n"
        exec(compile(source, f"<lienthong {name}>", "exec"), self.env)
        return self.env[name]


def _long_bytes(value: int, low: int, high: int) -> bytes:
    out = bytearray()
    _write_long(out, value, low, high)
    return bytes(out)


# Encoded zig-zag varints of string lengths below 8192 and of small longs, looked up rather than
# computed: most strings and counters on the bus fall in these ranges.
_LENGTHS = tuple(
    bytes((n << 1,)) if n < 64 else bytes((((n << 1) & 0x7F) | 0x80, n >> 6)) for n in range(8192)
)
_SMALL_LONGS = {v: bytes(((v << 1) ^ (v >> 63),)) for v in range(-64, 64)}


def _gen_encode(gen: _Gen, schema: Any, namespace: str | None, src: str, depth: int) -> list[str]:
    """Emit statements for ``src`` and return the bytes expressions of its encoding, in order.

    The generated encoder joins every piece once (``b"".join``) instead of growing a buffer
    field by field, which is what most of its time went on.
    """
    schema, namespace = gen.resolve(schema, namespace)
    kind = schema if isinstance(schema, str | list) else schema.get("type")
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise _Unsupported("only [null, X] unions")
        piece = gen.var("u")
        gen.emit(depth, f"if {src} is None: {piece} = b'\\x00'")
        gen.emit(depth, "else:")
        parts = _gen_encode(gen, schema[1], namespace, src, depth + 1)
        gen.emit(depth + 1, f"{piece} = b''.join((b'\\x02', {', '.join(parts)}))")
        return [piece]
    if isinstance(kind, dict | list):
        return _gen_encode(gen, kind, namespace, src, depth)
    if kind == "null":
        gen.emit(depth, f"if {src} is not None: raise _Bad")
        return []
    if kind == "boolean":
        piece = gen.var("o")
        gen.emit(depth, f"if {src} is True: {piece} = b'\\x01'")
        gen.emit(depth, f"elif {src} is False: {piece} = b'\\x00'")
        gen.emit(depth, "else: raise _Bad")
        return [piece]
    if kind in ("int", "long"):
        low, high = _INT32 if kind == "int" else _INT64
        if logical == "timestamp-micros":
            # Present-day timestamps are 8-byte varints: spread the 7-bit groups inline rather
            # than call the generic writer.
            value = gen.var("t")
            gen.emit(depth, f"{value} = ({src} - _EPOCH) // _US")
            gen.emit(depth, f"if {1 << 48} <= {value} < {1 << 55}:")
            gen.emit(depth + 1, f"{value} <<= 1")
            for mask, top, shift in _SPREAD:
                gen.emit(
                    depth + 1,
                    f"{value} = ({value} & {mask:#x}) | (({value} & {top:#x}) << {shift})",
                )
            gen.emit(
                depth + 1, f"{value} = ({value} | {_CONTINUATION[8]:#x}).to_bytes(8, 'little')"
            )
            gen.emit(depth, f"else: {value} = _lb({value}, {low}, {high})")
            return [value]
        if logical is not None:
            raise _Unsupported(f"logical type {logical}")
        return [
            f"(_SMALL[{src}] if type({src}) is int and -64 <= {src} < 64 "
            f"else _lb({src}, {low}, {high}))"
        ]
    if kind in ("float", "double"):
        return [f"{'_PD' if kind == 'double' else '_PF'}({src})"]
    if kind == "string":
        if logical not in (None, "uuid"):
            raise _Unsupported(f"logical type {logical}")
        raw, size = gen.var("s"), gen.var("n")
        if logical == "uuid":
            # str(UUID) spelled out (same format as uuid.UUID.__str__): half the cost.
            digits = gen.var("h")
            gen.emit(depth, f"if {src}.__class__ is _UUID:")
            gen.emit(depth + 1, f"{digits} = '%032x' % {src}.int")
            gen.emit(
                depth + 1,
                f"{raw} = f'{{{digits}[:8]}}-{{{digits}[8:12]}}-{{{digits}[12:16]}}-"
                f"{{{digits}[16:20]}}-{{{digits}[20:]}}'.encode()",
            )
            gen.emit(depth, f"else: {raw} = _uuid_text({src}).encode()")
            text = raw
        else:
            text = f"({raw} := {src}.encode())"
        return [
            f"(_LEN[{size}] if ({size} := len({text})) < 8192 else _lb({size}, 0, {_INT64[1]}))",
            raw,
        ]
    if kind == "enum":
        symbols = schema["symbols"]
        table = {symbol: _long_bytes(i, 0, _INT64[1]) for i, symbol in enumerate(symbols)}
        return [f"{gen.const(table)}[str({src})]"]
    if kind == "record":
        parts: list[str] = []
        for field in schema["fields"]:
            name = field["name"]
            if not name.isidentifier() or name.startswith("_"):
                raise _Unsupported(f"field name {name!r}")
            value = gen.var("v")
            gen.emit(depth, f"{value} = {src}.{name}")
            parts.extend(_gen_encode(gen, field["type"], namespace, value, depth))
        return parts
    if kind == "array":
        item, pieces = gen.var("i"), gen.var("a")
        gen.emit(depth, f"if {src}:")
        gen.emit(depth + 1, f"{pieces} = [_lb(len({src}), 0, {_INT64[1]})]")
        gen.emit(depth + 1, f"for {item} in {src}:")
        parts = _gen_encode(gen, schema["items"], namespace, item, depth + 2)
        gen.emit(depth + 2, f"{pieces}.extend(({', '.join(parts)},))")
        gen.emit(depth + 1, f"{pieces}.append(b'\\x00')")
        gen.emit(depth + 1, f"{pieces} = b''.join({pieces})")
        gen.emit(depth, f"else: {pieces} = b'\\x00'")
        return [pieces]
    raise _Unsupported(f"type {kind!r}")


def _gen_read_long(gen: _Gen, target: str, depth: int) -> None:
    second = gen.var("x")
    gen.emit(depth, f"{target} = buf[p]")
    gen.emit(depth, "p += 1")
    gen.emit(depth, f"if {target} & 128:")
    gen.emit(depth + 1, f"{second} = buf[p]")
    gen.emit(depth + 1, f"if {second} < 128:")
    gen.emit(depth + 2, f"{target} = ({target} & 127) | ({second} << 7)")
    gen.emit(depth + 2, "p += 1")
    gen.emit(depth + 1, f"else: {target}, p = _rv(buf, p, {target})")
    gen.emit(depth, f"{target} = ({target} >> 1) ^ -({target} & 1)")


def _gen_decode(gen: _Gen, schema: Any, namespace: str | None, target: str, depth: int) -> None:
    schema, namespace = gen.resolve(schema, namespace)
    kind = schema if isinstance(schema, str | list) else schema.get("type")
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise _Unsupported("only [null, X] unions")
        branch = gen.var("u")
        gen.emit(depth, f"{branch} = buf[p]")
        gen.emit(depth, "p += 1")
        gen.emit(depth, f"if {branch} == 0: {target} = None")
        gen.emit(depth, f"elif {branch} == 2:")
        _gen_decode(gen, schema[1], namespace, target, depth + 1)
        gen.emit(depth, "else: raise _Bad")
        return
    if isinstance(kind, dict | list):
        _gen_decode(gen, kind, namespace, target, depth)
        return
    if kind == "null":
        gen.emit(depth, f"{target} = None")
    elif kind == "boolean":
        gen.emit(depth, "if buf[p] > 1: raise _Bad")
        gen.emit(depth, f"{target} = buf[p] == 1")
        gen.emit(depth, "p += 1")
    elif kind in ("int", "long"):
        if logical == "timestamp-micros":
            gen.emit(depth, f"{target} = int.from_bytes(buf[p:p + 8], 'little')")
            # The compaction masks drop the continuation bits themselves.
            gen.emit(depth, f"if {target} & {_HIGH_BITS:#x} == {_CONTINUATION[8]:#x}:")
            for mask, high, shift in _COMPACT:
                gen.emit(
                    depth + 1,
                    f"{target} = ({target} & {mask:#x}) | (({target} & {high:#x}) >> {shift})",
                )
            gen.emit(depth + 1, "p += 8")
            gen.emit(depth + 1, f"{target} = ({target} >> 1) ^ -({target} & 1)")
            gen.emit(depth, "else:")
            _gen_read_long(gen, target, depth + 1)
            gen.emit(depth, f"{target} = _EPOCH + _US * {target}")
            return
        if logical is not None:
            raise _Unsupported(f"logical type {logical}")
        _gen_read_long(gen, target, depth)
    elif kind in ("float", "double"):
        size = 8 if kind == "double" else 4
        gen.emit(depth, f"if p + {size} > end: raise _Bad")
        gen.emit(depth, f"{target} = {'_UD' if kind == 'double' else '_UF'}(buf, p)[0]")
        gen.emit(depth, f"p += {size}")
    elif kind == "string":
        if logical not in (None, "uuid"):
            raise _Unsupported(f"logical type {logical}")
        # A uuid stays text here: pydantic parses it (its accepted forms are a subset of
        # uuid.UUID's), so the conversion happens once instead of twice.
        size = gen.var("n")
        _gen_read_long(gen, size, depth)
        gen.emit(depth, f"if {size} < 0 or p + {size} > end: raise _Bad")
        gen.emit(depth, f"{target} = buf[p:p + {size}].decode()")
        gen.emit(depth, f"p += {size}")
    elif kind == "enum":
        symbols = gen.const(tuple(schema["symbols"]))
        index = gen.var("e")
        _gen_read_long(gen, index, depth)
        gen.emit(depth, f"if {index} < 0: raise _Bad")
        gen.emit(depth, f"{target} = {symbols}[{index}]")
    elif kind == "record":
        values = []
        for field in schema["fields"]:
            value = gen.var("v")
            _gen_decode(gen, field["type"], namespace, value, depth)
            values.append(f"{field['name']!r}: {value}")
        gen.emit(depth, f"{target} = {{{', '.join(values)}}}")
    elif kind == "array":
        count, item = gen.var("c"), gen.var("i")
        gen.emit(depth, f"{target} = []")
        gen.emit(depth, "while True:")
        _gen_read_long(gen, count, depth + 1)
        gen.emit(depth + 1, f"if {count} == 0: break")
        gen.emit(depth + 1, f"if {count} < 0:")
        gen.emit(depth + 2, f"{count} = -{count}")
        _gen_read_long(gen, gen.var("z"), depth + 2)
        gen.emit(depth + 1, f"if {count} > end - p: raise _Bad")
        gen.emit(depth + 1, f"for _ in range({count}):")
        _gen_decode(gen, schema["items"], namespace, item, depth + 2)
        gen.emit(depth + 2, f"{target}.append({item})")
    else:
        raise _Unsupported(f"type {kind!r}")


# --- native fast path ---------------------------------------------------------------------------
#
# schemas/_avro_native.c interprets the same schema shapes as the generators above from a small
# tuple "program", with the same contract (fastavro's bytes on the happy path, decline otherwise).
# It is an optional build product: without a C compiler the generated Python code is used.

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


def native_program(schema: Any) -> tuple[Any, ...]:
    """The node tuple the native codec interprets; raises _Unsupported like the generators."""
    gen = _Gen()

    def node(schema: Any, namespace: str | None) -> tuple[Any, ...]:
        schema, namespace = gen.resolve(schema, namespace)
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
    """None = whatever was built; True insists on the extension (tests pin both paths)."""
    if native and _native is None:
        raise RuntimeError("the native codec extension is not built")
    return NATIVE_AVAILABLE if native is None else native


def compile_encoder(
    schema: dict[str, Any], *, native: bool | None = None
) -> Callable[[Any, bytes], bytes] | None:
    """``fn(model, head)``: ``head`` + the Avro body of ``model``; None if unsupported.

    ``native`` None = the C path when it was built, else the generated Python code; True/False
    force one (tests pin both to fastavro's bytes).
    """
    if _use_native(native):
        try:
            return _native.Encoder(native_program(schema))  # type: ignore[no-any-return]
        except _Unsupported:
            return None
    gen = _Gen()
    try:
        parts = _gen_encode(gen, schema, None, "obj", 1)
    except _Unsupported:
        return None
    gen.emit(1, f"return b''.join((head, {', '.join(parts)}))")
    return gen.function("encode_record", "obj, head")  # type: ignore[no-any-return]


def compile_decoder(
    schema: dict[str, Any], *, native: bool | None = None
) -> Callable[[bytes], dict[str, Any]] | None:
    """``fn(framed)`` returning the record dict of a framed body; None if unsupported.

    The dict is ready for pydantic (uuids as text, timestamps as aware UTC datetimes); it raises
    on anything short of a whole, well-formed body with no trailing bytes. ``native`` as in
    :func:`compile_encoder`.
    """
    if _use_native(native):
        try:
            return _native.Decoder(native_program(schema), HEADER_SIZE)  # type: ignore[no-any-return]
        except _Unsupported:
            return None
    gen = _Gen()
    gen.emit(1, f"p = {HEADER_SIZE}")
    gen.emit(1, "end = len(buf)")
    try:
        _gen_decode(gen, schema, None, "rec", 1)
    except _Unsupported:
        return None
    gen.emit(1, "if p != end: raise _Bad")
    gen.emit(1, "return rec")
    return gen.function("decode_record", "buf")  # type: ignore[no-any-return]
