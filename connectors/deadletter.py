"""Dead letters: records a consumer cannot accept, kept whole and explained.

A rejected record is re-published to the ``dead-letters`` topic with its original key, value
and headers untouched, plus the ``lienthong.dlq.*`` headers of :mod:`connectors.headers`
(source topic/partition/offset, error class, one-line reason, failed-at, consumer). The consumer
then carries on: one bad record from one agency must not stop the province's stream. Because
nothing is altered, ``lienthong dlq replay`` can send the same bytes back once the cause (an
unknown agency, a missing schema) is fixed.

Two publishers share one header builder: :class:`DeadLetterPublisher` for kafka-python
consumers and :class:`FaustDeadLetterPublisher` for Faust agents that consume raw bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from lienthong.connectors.headers import (
    DLQ_CONSUMER,
    DLQ_ERROR_CLASS,
    DLQ_FAILED_AT,
    DLQ_HEADERS,
    DLQ_REASON,
    DLQ_REPLAYED_FROM,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from lienthong.logs import get_logger
from lienthong.runtime.metrics import count_dead_letter
from lienthong.schemas.errors import DecodeError

Headers = list[tuple[str, bytes]]
Clock = Callable[[], datetime]


class SourceRecord(Protocol):
    """What a dead letter needs from the rejected record (kafka-python ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


def _utc_now() -> datetime:
    return datetime.now(UTC)


def normalise_headers(headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None) -> Headers:
    """Headers as a list of (str, bytes) in their original order."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: Headers = []
    for name, value in items:
        if value is None:
            value = b""
        elif isinstance(value, str):
            value = value.encode("utf-8")
        out.append((str(name), bytes(value)))
    return out


def dead_letter_headers(
    original: Iterable[tuple[str, Any]] | Mapping[str, Any] | None,
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    error: DecodeError | BaseException,
    consumer: str,
    failed_at: datetime,
) -> Headers:
    """The original headers followed by the ``lienthong.dlq.*`` headers."""
    error_class = getattr(error, "error_class", type(error).__name__)
    reason = getattr(error, "reason", None) or " ".join(str(error).split()) or error_class
    return [
        *normalise_headers(original),
        (DLQ_SOURCE_TOPIC, source_topic.encode()),
        (DLQ_SOURCE_PARTITION, str(source_partition).encode()),
        (DLQ_SOURCE_OFFSET, str(source_offset).encode()),
        (DLQ_ERROR_CLASS, error_class.encode()),
        (DLQ_REASON, reason.encode("utf-8")),
        (DLQ_FAILED_AT, failed_at.astimezone(UTC).isoformat().encode()),
        (DLQ_CONSUMER, consumer.encode("utf-8")),
    ]


def dlq_header_map(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """The ``lienthong.dlq.*`` headers of a dead letter, decoded."""
    return {
        name: value.decode("utf-8", "replace")
        for name, value in normalise_headers(headers)
        if name in DLQ_HEADERS
    }


def replay_headers(headers: Sequence[tuple[str, bytes]] | None, replayed_from: str) -> Headers:
    """Original headers without dead-letter headers, plus where the replay came from."""
    kept = [
        (name, value)
        for name, value in normalise_headers(headers)
        if name not in DLQ_HEADERS and name != DLQ_REPLAYED_FROM
    ]
    return [*kept, (DLQ_REPLAYED_FROM, replayed_from.encode())]


class DeadLetterPublisher:
    """Dead-letter sender for kafka-python consumers.

    ``producer`` is a kafka-python ``KafkaProducer`` *without* serializers (bytes pass through).
    Call :meth:`flush` before committing the source offsets so a crash cannot lose a dead letter.
    """

    def __init__(
        self, producer: Any, topic: str, consumer_name: str, clock: Clock = _utc_now
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.consumer_name = consumer_name
        self.clock = clock
        self.sent = 0

    def publish(self, record: SourceRecord, error: DecodeError | BaseException) -> Any:
        headers = rejected_record_headers(record, error, self.consumer_name, self.clock)
        self.sent += 1
        return self.producer.send(self.topic, key=record.key, value=record.value, headers=headers)

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout=timeout)


def rejected_record_headers(
    record: Any, error: BaseException, consumer: str, clock: Clock = _utc_now
) -> Headers:
    """Dead-letter headers for a rejected record (kafka-python or Faust), logged once: every
    sender of dead letters (the publishers here, connectors with their own producer) uses it."""
    count_dead_letter(consumer, getattr(error, "error_class", type(error).__name__))
    get_logger(
        "lienthong.deadletter",
        source_topic=record.topic,
        source_offset=record.offset,
        consumer=consumer,
    ).warning(
        "dead_letter",
        error_class=getattr(error, "error_class", type(error).__name__),
        reason=str(error),
    )
    return dead_letter_headers(
        record.headers,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        error=error,
        consumer=consumer,
        failed_at=clock(),
    )


class FaustDeadLetterPublisher:
    """Dead-letter sender for Faust agents that consume a raw topic.

    ``topic`` is a Faust topic for ``dead-letters`` declared with ``key_serializer="raw"`` and
    ``value_serializer="raw"``; ``message`` is ``event.message`` of the rejected event, whose
    key and value are the bytes exactly as read.
    """

    def __init__(self, topic: Any, consumer_name: str, clock: Clock = _utc_now) -> None:
        self.topic = topic
        self.consumer_name = consumer_name
        self.clock = clock
        self.sent = 0

    async def publish(self, message: Any, error: DecodeError | BaseException) -> Any:
        headers = rejected_record_headers(message, error, self.consumer_name, self.clock)
        self.sent += 1
        return await self.topic.send(
            key=message.key,
            value=message.value,
            headers=headers,
            key_serializer="raw",
            value_serializer="raw",
        )
