"""What a producer wrote to a topic, batch by batch: records, record batches and bytes.

Why: whether outputs go one record per batch (the Tansu workaround) or in real batches is
visible only in the stored batches; kafka-python's consumer hides them, so its record parser is
wrapped while one partition at a time is read to its end (the fetched high watermark).
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition


def batch_footprint(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """(records, record batches, bytes) of every partition of ``topic``, read to the end.

    Batches are what the producer wrote: one produce request carries at most one batch per
    partition, so batches bound the produce requests from above, and their bytes (v2 batch
    headers included, ~70 bytes per batch) are what the broker stores. The end is the high
    watermark of the fetch responses, not ``end_offsets``: Tansu's ListOffsets under-reports
    it when a batch holds several records."""
    import kafka.consumer.fetcher as fetcher

    seen: dict[int, tuple[int, int]] = {}
    original = fetcher.MemoryRecords

    class Counting(original):  # type: ignore[misc, valid-type]
        def next_batch(self, *args: Any, **kwargs: Any) -> Any:
            batch = super().next_batch(*args, **kwargs)
            if batch is not None and batch.magic == 2:
                seen[batch.base_offset] = (batch._num_records, batch.size_in_bytes)
            return batch

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    fetcher.MemoryRecords = Counting
    records = batches = size = 0
    try:
        for partition in sorted(consumer.partitions_for_topic(topic) or set()):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            seen.clear()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                consumer.poll(500)
                high = consumer.highwater(tp)
                if high is not None and consumer.position(tp) >= high:
                    break
            else:
                raise TimeoutError(f"{topic}/{partition} not read to its end in 60 s")
            records += sum(c for c, _ in seen.values())
            batches += len(seen)
            size += sum(b for _, b in seen.values())
    finally:
        fetcher.MemoryRecords = original
        consumer.close()
    return records, batches, size
