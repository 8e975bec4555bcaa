"""Codec cost per record on one core, for the example record of every event type.

Columns, all in µs per record (CPU time, best of several runs):
  C        the hand-written C extension (schemas/_avro_native.c), Avro body only
  fastavro fastavro's fastest use: schema parsed once, schemaless_writer into a reused BytesIO
           (seek/truncate) from a ready dict, schemaless_reader from a reused BytesIO with the
           parsed writer schema (reader None: same schema, no resolution)
  +model   fastavro plus what a model costs around it: model_dump() before writing,
           pydantic validation after reading (what a fastavro-only codec would do)
  codec    AvroCodec.encode / AvroCodec.decode as the bus calls them (framing, fast path,
           pydantic validation)

Then the ratio fastavro/C and what the difference is worth per stream-worker event (it decodes
one dossier event and encodes one portal status record per event). Without the C extension the
codec is fastavro alone (the codec column then equals +model plus framing).

Run:  taskset -c 0 python benchmarks/bench_codec.py [N]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from lienthong.schemas import AvroCodec, FileSchemaRegistry
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.codec import HEADER_SIZE, NATIVE_AVAILABLE, compile_decoder, compile_encoder
from lienthong.schemas.examples import example_events
from lienthong.schemas.models import Event

WORKER_US_PER_EVENT = 890.0  # issue 14: the stream worker's CPU per event today


def cost(fn: Callable[[], object], n: int, runs: int = 5) -> float:
    """Best-of-``runs`` µs per call, in this process's CPU time (other tenants' time excluded)."""
    for _ in range(min(n, 500)):
        fn()
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def fastavro_paths(
    event: Event, data: bytes
) -> tuple[Callable[[dict], bytes], Callable[[], object]]:
    """fastavro's fastest encode (dict -> framed bytes) and decode (framed bytes -> dict)."""
    parsed = fastavro.parse_schema(current_schema(event.EVENT_TYPE).schema, named_schemas={})
    header = data[:HEADER_SIZE]
    out = io.BytesIO()
    source = io.BytesIO(data)
    writer, reader = fastavro.schemaless_writer, fastavro.schemaless_reader

    def encode(record: dict) -> bytes:
        out.seek(0)
        out.truncate()
        out.write(header)
        writer(out, parsed, record)
        return out.getvalue()

    def decode() -> object:
        source.seek(HEADER_SIZE)
        return reader(source, parsed, None)

    assert encode(event.model_dump()) == data, f"{event.EVENT_TYPE}: bytes differ from the codec's"
    return encode, decode


def measure_record(codec: AvroCodec, event: Event, n: int) -> dict[str, float]:
    """Every column of the table for one record."""
    data = codec.encode(event)
    assert codec.decode(data) == event
    schema = current_schema(event.EVENT_TYPE).schema
    head = data[:HEADER_SIZE]
    fa_enc, fa_dec = fastavro_paths(event, data)
    record = event.model_dump()
    validate = type(event).model_validate
    row = {
        "bytes": float(len(data)),
        "enc_fa": cost(lambda: fa_enc(record), n),
        "enc_fa_model": cost(lambda: fa_enc(event.model_dump()), n),
        "enc_codec": cost(lambda: codec.encode(event), n),
        "dec_fa": cost(fa_dec, n),
        "dec_fa_model": cost(lambda: validate(fa_dec()), n),
        "dec_codec": cost(lambda: codec.decode(data), n),
    }
    if NATIVE_AVAILABLE:
        c_enc = compile_encoder(schema, native=True)
        c_dec = compile_decoder(schema, native=True)
        assert c_enc is not None and c_dec is not None
        row["enc_c"] = cost(lambda: c_enc(event, head), n)
        row["dec_c"] = cost(lambda: c_dec(data), n)
    return row


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(
        f"python {sys.version.split()[0]}, fastavro {fastavro.__version__}, "
        f"C extension built: {NATIVE_AVAILABLE}, {n} calls x 5 runs per cell, µs/record"
    )
    header = (
        f"{'record':24} {'bytes':>5} | {'enc C':>6} {'fastav':>6} {'+dump':>6} "
        f"{'codec':>6} | {'dec C':>6} {'fastav':>6} {'+valid':>6} {'codec':>6}"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        codec = AvroCodec(FileSchemaRegistry(Path(tmp) / "registry.json"))
        for name, event in sorted(example_events().items()):
            row = rows[name] = measure_record(codec, event, n)
            print(
                f"{name:24} {row['bytes']:>5.0f} | {row.get('enc_c', float('nan')):6.2f} "
                f"{row['enc_fa']:6.2f} {row['enc_fa_model']:6.2f} "
                f"{row['enc_codec']:6.2f} | {row.get('dec_c', float('nan')):6.2f} "
                f"{row['dec_fa']:6.2f} {row['dec_fa_model']:6.2f} "
                f"{row['dec_codec']:6.2f}",
                flush=True,
            )
    summarise(rows)


def summarise(rows: dict[str, dict[str, float]]) -> None:
    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows.values() if key in r)

    print()
    for side in ("enc", "dec"):
        fa = mean(f"{side}_fa")
        line = f"mean {side}: fastavro {fa:.2f} µs"
        if NATIVE_AVAILABLE:
            line += f", C {mean(f'{side}_c'):.2f} µs (fastavro/C {fa / mean(f'{side}_c'):.2f}x)"
        print(line)
    # One worker event = decode one dossier event + encode one portal status record.
    dossier = [r for name, r in rows.items() if name not in ("live_stats_snapshot",)]
    dec_fa = statistics.fmean(r["dec_fa"] for r in dossier)
    enc_fa = rows["portal_status_record"]["enc_fa"]
    print(
        f"per worker event (1 decode + 1 portal record encode), Avro part: fastavro "
        f"{dec_fa + enc_fa:.1f} µs = {100 * (dec_fa + enc_fa) / WORKER_US_PER_EVENT:.1f}% of "
        f"{WORKER_US_PER_EVENT:.0f} µs/event"
    )
    if NATIVE_AVAILABLE:
        fast = statistics.fmean(r["dec_c"] for r in dossier) + rows["portal_status_record"]["enc_c"]
        saved = dec_fa + enc_fa - fast
        print(
            f"  C saves {saved:.1f} µs/event = {100 * saved / WORKER_US_PER_EVENT:.1f}% "
            f"of the worker's CPU per event (Avro part only)"
        )
    for label, dec, enc in (
        ("the codec as used (framing + validation)", "dec_codec", "enc_codec"),
        ("a fastavro-only codec (dump/validate)", "dec_fa_model", "enc_fa_model"),
    ):
        total = statistics.fmean(r[dec] for r in dossier) + rows["portal_status_record"][enc]
        print(
            f"{label}: {total:.1f} µs/event = "
            f"{100 * total / WORKER_US_PER_EVENT:.1f}% of {WORKER_US_PER_EVENT:.0f} µs/event"
        )


if __name__ == "__main__":
    main()
