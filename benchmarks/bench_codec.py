"""Codec cost per record on one core, for the example record of every event type.

Columns, all in µs per record (CPU time, best of several runs):
  fastavro fastavro's fastest use: schema parsed once, schemaless_writer into a reused BytesIO
           (seek/truncate) from a ready dict, schemaless_reader from a reused BytesIO with the
           parsed writer schema (reader None: same schema, no resolution)
  +model   fastavro plus what a model costs around it: model_dump() before writing,
           pydantic validation after reading (what a fastavro-only codec would do)
  codec    AvroCodec.encode / AvroCodec.decode as the bus calls them (framing, pydantic
           validation)

Then what that is per stream-worker event (it decodes one dossier event and encodes one portal
status record per event). Until commit f439f51 this also measured a hand-written C codec and an
exec-generated Python one: 13x and 1.9x faster than fastavro on the Avro part, saving 2.5% and
1.3% of the worker's CPU per event; both were removed (issue 14).

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
from lienthong.schemas.codec import HEADER_SIZE
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
    return row


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(
        f"python {sys.version.split()[0]}, fastavro {fastavro.__version__}, "
        f"{n} calls x 5 runs per cell, µs/record"
    )
    header = (
        f"{'record':24} {'bytes':>5} | {'encode':>6} {'+dump':>6} {'codec':>6} "
        f"| {'decode':>6} {'+valid':>6} {'codec':>6}"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        codec = AvroCodec(FileSchemaRegistry(Path(tmp) / "registry.json"))
        for name, event in sorted(example_events().items()):
            row = rows[name] = measure_record(codec, event, n)
            print(
                f"{name:24} {row['bytes']:>5.0f} | {row['enc_fa']:6.2f} "
                f"{row['enc_fa_model']:6.2f} {row['enc_codec']:6.2f} | {row['dec_fa']:6.2f} "
                f"{row['dec_fa_model']:6.2f} {row['dec_codec']:6.2f}",
                flush=True,
            )
    summarise(rows)


def summarise(rows: dict[str, dict[str, float]]) -> None:
    print()
    for side in ("enc", "dec"):
        values = [r[f"{side}_fa"] for r in rows.values()]
        print(f"mean {side}ode, fastavro's Avro part: {statistics.fmean(values):.2f} µs")
    # One worker event = decode one dossier event + encode one portal status record.
    dossier = [r for name, r in rows.items() if name != "live_stats_snapshot"]
    for label, dec, enc in (
        ("Avro part (fastavro)", "dec_fa", "enc_fa"),
        ("the codec as used (framing + validation)", "dec_codec", "enc_codec"),
    ):
        total = statistics.fmean(r[dec] for r in dossier) + rows["portal_status_record"][enc]
        print(
            f"per worker event (1 decode + 1 portal record encode), {label}: {total:.1f} µs = "
            f"{100 * total / WORKER_US_PER_EVENT:.1f}% of {WORKER_US_PER_EVENT:.0f} µs/event"
        )


if __name__ == "__main__":
    main()
