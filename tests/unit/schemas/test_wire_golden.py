"""The Avro bodies the codec writes, pinned byte for byte in ``golden_avro.json``.

Why: the wire is a contract with every agency's consumer, and the codec has two encoders: the C
fast path (schemas/_avro_native.c, where it was built) and fastavro (the reference, and the only
one without a C compiler). Both must write exactly the recorded bodies, and both must read them
back, so a change to the C code, a fastavro upgrade or a model change that moves a byte fails
here. The C cases skip where the extension is not built (in CI test_native_extension_is_built
fails instead). Regenerate only for a deliberate wire change: ``python tests/unit/schemas/
test_wire_golden.py`` (then review the diff).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest

from lienthong.schemas import EVENT_CLASSES, AvroCodec, FileSchemaRegistry, frame
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.codec import NATIVE_AVAILABLE, compile_decoder, compile_encoder
from lienthong.schemas.examples import example_event
from lienthong.schemas.models import Event
from tests.unit.schemas.wire_cases import INSTANTS, varint_sweep

GOLDEN = Path(__file__).with_name("golden_avro.json")

# Edge values of the example records: empty arrays, nulls, long and empty strings, big counts.
EDGES: dict[str, tuple[str, dict[str, Any]]] = {
    "supplement_received/no-documents": ("supplement_received", {"documents": []}),
    "supplement_requested/long-documents": (
        "supplement_requested",
        {"documents": ["x" * 70] * 3, "supplement_due_at": None},
    ),
    "portal_status_record/no-history": ("portal_status_record", {"QuaTrinhXuLy": []}),
    "dossier_received/no-appointment": ("dossier_received", {"appointment_at": None}),
    "handoff_returned/long-note": ("handoff_returned", {"note": "ghi chú " * 2000}),
    "handoff_returned/empty-note": ("handoff_returned", {"note": ""}),
    "live_stats_snapshot/big-counts": (
        "live_stats_snapshot",
        {"on_time_rate": 0.125, "online_rate": None, "received": 10**12},
    ),
}


def _sweep() -> list[Event]:
    """Every varint length: ints across 32 bits and timestamps across years 1..9999."""
    base = example_event("deadline_warning")
    return [
        base.model_copy(update={"remaining_working_minutes": value, "due_at": due})
        for value, due in varint_sweep()
    ]


def _cases() -> dict[str, Event]:
    cases: dict[str, Event] = {
        cls.EVENT_TYPE: example_event(cls.EVENT_TYPE) for cls in EVENT_CLASSES
    }
    for label, (event_type, update) in EDGES.items():
        cases[label] = example_event(event_type).model_copy(update=update)
    for due in INSTANTS:
        cases[f"deadline_warning/due-{due.isoformat()}-fold{due.fold}"] = example_event(
            "deadline_warning"
        ).model_copy(update={"due_at": due})
    return cases


def _sweep_digest(codec: AvroCodec) -> str:
    digest = hashlib.sha256()
    for event in _sweep():
        digest.update(codec.encode(event)[5:])
    return digest.hexdigest()


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


PATHS = [
    pytest.param(
        "C",
        id="C",
        marks=pytest.mark.skipif(not NATIVE_AVAILABLE, reason="native extension not built"),
    ),
    pytest.param("fastavro", id="fastavro"),
]


@pytest.fixture(params=PATHS)
def path_codec(request: pytest.FixtureRequest, tmp_path: Path) -> AvroCodec:
    """A codec on one path only: the C extension (native=True) or fastavro (native=False)."""
    return AvroCodec(FileSchemaRegistry(tmp_path / "registry.json"), native=request.param == "C")


def _direct_body(codec: AvroCodec, event: Event) -> bytes:
    """The body from the path's own encoder, bypassing the codec's fallback to fastavro."""
    if codec.native:
        encoder = compile_encoder(current_schema(event.EVENT_TYPE).schema, native=True)
        assert encoder is not None, f"the C path does not cover {event.EVENT_TYPE}"
        return encoder(event, b"")
    return codec._encode_fastavro(event, codec._writer_for(type(event)))[5:]


def _direct_decode(codec: AvroCodec, data: bytes) -> Event:
    """The event from the path's own decoder (the C one must not decline a golden body)."""
    if codec.native:
        model = type(codec.decode(data))
        decoder = compile_decoder(current_schema(model.EVENT_TYPE).schema, native=True)
        assert decoder is not None
        return model.model_validate(decoder(data))
    return codec._decode_fastavro(data)


@pytest.mark.parametrize("label", sorted(_cases()))
def test_body_is_the_recorded_one_and_decodes_back(path_codec: AvroCodec, label: str) -> None:
    event = _cases()[label]
    golden = _golden()["bodies"][label]
    assert _direct_body(path_codec, event).hex() == golden
    data = path_codec.encode(event)
    assert data[5:].hex() == golden
    decoded = _direct_decode(path_codec, frame(int.from_bytes(data[1:5], "big"), data[5:]))
    assert type(decoded) is type(event)
    assert path_codec.encode(decoded) == data  # the same instants and values (zones may differ)
    assert path_codec.decode(data) == decoded


def test_every_varint_length_is_the_recorded_bytes(path_codec: AvroCodec) -> None:
    digest = hashlib.sha256()
    for event in _sweep():
        digest.update(_direct_body(path_codec, event))
    assert digest.hexdigest() == _golden()["sweep_sha256"]
    assert _sweep_digest(path_codec) == _golden()["sweep_sha256"]
    for event in _sweep()[::10]:
        decoded = _direct_decode(path_codec, path_codec.encode(event))
        assert decoded.remaining_working_minutes == event.remaining_working_minutes
        assert decoded.due_at == event.due_at


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_apache_avro_reads_every_example_body(codec: AvroCodec, cls: type[Event]) -> None:
    """An independent Avro implementation reads the whole body, to the last byte."""
    event = example_event(cls.EVENT_TYPE)
    body = codec.encode(event)[5:]
    schema = avro.schema.parse(current_schema(cls.EVENT_TYPE).text)
    stream = io.BytesIO(body)
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(stream))
    assert stream.tell() == len(body)
    assert str(record["envelope"]["event_id"]) == str(event.envelope.event_id)
    assert record["envelope"]["occurred_at"] == event.envelope.occurred_at


def _write_golden(directory: Path) -> None:
    codec = AvroCodec(FileSchemaRegistry(directory / "registry.json"), native=False)
    bodies = {label: codec.encode(event)[5:].hex() for label, event in sorted(_cases().items())}
    content = {"bodies": bodies, "sweep_sha256": _sweep_digest(codec)}
    GOLDEN.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(bodies)} bodies to {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _write_golden(Path(tmp))
