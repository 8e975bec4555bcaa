"""End offsets that do not depend on the broker's ListOffsets answer.

Why: Tansu 0.6 answers ListOffsets (``KafkaConsumer.end_offsets``) with the base offset of a
partition's last record batch + 1, not the high watermark, as soon as a batch holds several
records; the worker's outputs are written in such batches. Every fetch response carries the
partition's real high watermark (right on Kafka and on Tansu alike), so a reader that must know
where a partition ends takes the larger of the two: the ListOffsets answer is a lower bound,
the fetched high watermark the end. Works unchanged on a Kafka cluster, where both agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

__all__ = ["high_watermarks"]


def high_watermarks(consumer: Any, tps: Iterable[Any], timeout_s: float = 30.0) -> dict[Any, int]:
    """The end of every partition in ``tps`` (kafka-python ``TopicPartition``), from a fetch.

    Uses ``consumer``'s assignment: it is reassigned to ``tps``, positioned at the ListOffsets
    end and polled until each partition's fetch response has reported its high watermark; the
    records that poll returns are not consumed by anybody (no group commit is made). Raises
    ``TimeoutError`` naming the partitions still unknown after ``timeout_s``.
    """
    parts = list(tps)
    if not parts:
        return {}
    lower = consumer.end_offsets(parts)
    consumer.assign(parts)
    for tp in parts:
        consumer.seek(tp, lower[tp])
    deadline = time.monotonic() + timeout_s
    while True:
        known = {tp: consumer.highwater(tp) for tp in parts}
        if all(h is not None for h in known.values()):
            return {tp: max(lower[tp], known[tp]) for tp in parts}
        if time.monotonic() > deadline:
            missing = sorted(f"{tp.topic}/{tp.partition}" for tp, h in known.items() if h is None)
            raise TimeoutError(f"no fetch response with a high watermark for {missing}")
        consumer.poll(timeout_ms=200, max_records=1)
