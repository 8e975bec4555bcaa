"""Kafka record header names shared by every producer and consumer of the bus.

Dead-letter headers are added next to the original record's own headers (which are kept
untouched), so a dead letter can be inspected, counted and replayed to its source.
"""

from __future__ import annotations

DLQ_SOURCE_TOPIC = "lienthong.dlq.source_topic"
DLQ_SOURCE_PARTITION = "lienthong.dlq.source_partition"
DLQ_SOURCE_OFFSET = "lienthong.dlq.source_offset"
DLQ_ERROR_CLASS = "lienthong.dlq.error_class"
DLQ_REASON = "lienthong.dlq.reason"
DLQ_FAILED_AT = "lienthong.dlq.failed_at"
DLQ_CONSUMER = "lienthong.dlq.consumer"

# Added by `lienthong dlq replay` to a re-published record. Not a dead-letter header: it stays
# on the record in its source topic so that a replay is traceable.
DLQ_REPLAYED_FROM = "lienthong.dlq.replayed_from"

DLQ_HEADERS = (
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_ERROR_CLASS,
    DLQ_REASON,
    DLQ_FAILED_AT,
    DLQ_CONSUMER,
)
