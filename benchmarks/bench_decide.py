"""The tracker's decision core alone, without a broker: CPU per event and the record's codec.

Why: the worker's CPU per event mixes Faust, aiokafka and our rules; this drives
:func:`lienthong.domain.decide.decide` over a simulated month's dossier events (6 partitions by
the Kafka partitioner, each partition's clock its newest event, as in a replay) and then
encodes and decodes every final record with :mod:`lienthong.schemas.dossier_record`, so the
rules' own cost and the changelog codec's can be compared between commits (run it from a
checkout of each).

Run:  python benchmarks/bench_decide.py [DOSSIERS]   (default 3000)
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import orjson
from bench_counts import PARTITIONS, stream  # the same month, partitioned alike
from kafka.partitioner.default import murmur2

from lienthong.domain.alerts import AlertRules
from lienthong.domain.decide import decide
from lienthong.domain.procedures import load_procedures
from lienthong.schemas.dossier_record import decode_state, encode_state


# So that the file also runs in a checkout of an older commit, whose record was a dict and
# whose encoding was JSON-able values (copy it there and run it the same way).
def _procedure(record: Any) -> str | None:
    if record is None:
        return None
    return record.get("procedure") if isinstance(record, dict) else record.procedure


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else orjson.dumps(value)  # what the tracker wrote


def main(dossiers: int) -> None:
    events = stream(dossiers, "2026-01", 7)
    catalogue, rules = load_procedures(), AlertRules()
    records: dict[str, Any] = {}
    offsets = [0] * PARTITIONS
    clocks: dict[int, datetime] = {}
    t0 = time.process_time()
    for at, _, facts in events:
        partition = (murmur2(facts.dossier_id.encode()) & 0x7FFFFFFF) % PARTITIONS
        clocks[partition] = max(clocks.get(partition, at), at)
        record = records.get(facts.dossier_id)
        code = facts.procedure or _procedure(record) or ""
        decision = decide(
            record,
            facts,
            catalogue.get(code),
            clocks[partition],
            partition=partition,
            offset=offsets[partition],
            rules=rules,
        )
        offsets[partition] += 1
        if decision.final is not None:
            records[facts.dossier_id] = decision.final
    spent = time.process_time() - t0
    print(
        f"{dossiers} dossiers, {len(events)} events: decide "
        f"{1e6 * spent / len(events):.1f} µs/event"
    )
    finals = list(records.values())
    t0 = time.process_time()
    encoded = [_bytes(encode_state(r)) for r in finals]
    t1 = time.process_time()
    for value in encoded:
        decode_state(value if value[:1] == b"\x00" else orjson.loads(value))
    t2 = time.process_time()
    print(
        f"changelog record: {sum(map(len, encoded)) / len(encoded):,.0f} bytes, encode "
        f"{1e6 * (t1 - t0) / len(finals):.1f} µs, decode {1e6 * (t2 - t1) / len(finals):.1f} µs"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
