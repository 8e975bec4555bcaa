"""The one way the bus's own Python code puts records on Kafka (SDK, gateway, connectors).

Why one wrapper: every producer must agree on the same delivery settings — ``acks=all`` and
kafka-python's idempotent producer (the broker drops a retried batch it already has, and
per-partition order survives retries) — on the key (the dossier id, which is what gives the
per-dossier ordering the stream processors rely on), and on the wire format (Confluent-framed
Avro from :mod:`lienthong.schemas`). Callers that need to know the write is durable (the
gateway answers 202 only then) wait on the returned future, synchronously or with
:meth:`BusProducer.send_async`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from lienthong.config import Settings
from lienthong.logs import get_logger
from lienthong.schemas import encode
from lienthong.schemas.models import Event

Headers = Sequence[tuple[str, bytes]]

log = get_logger(__name__)


class PublishError(Exception):
    """The broker did not acknowledge a record within the producer's delivery timeout."""


def record_key(event: Event) -> str:
    """Dossier id for dossier-scoped events; the compaction key for live-stats."""
    key = event.envelope.dossier_id
    if key is None:
        key = getattr(event, "key", None) or str(event.envelope.event_id)
    return key


def _utf8(key: Any) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return str(key).encode()


def _key_serializer() -> Any:
    from kafka.serializer import Serializer

    class KeySerializer(Serializer):  # type: ignore[misc]
        def serialize(self, topic: str, value: Any) -> bytes | None:
            return _utf8(value)

    return KeySerializer()


class BusProducer:
    """A kafka-python producer configured for the bus; thread-safe, one per process is enough."""

    def __init__(
        self,
        settings: Settings,
        *,
        linger_ms: int = 5,
        delivery_timeout_ms: int = 30_000,
        codec: Any = None,
        **overrides: Any,
    ) -> None:
        """``codec``: an :class:`lienthong.schemas.AvroCodec` to encode with; default the
        process-wide codec (built from the process settings on first use)."""
        from kafka import KafkaProducer

        from lienthong.connectors.kafka import kafka_python_config

        self.settings = settings
        self._encode = codec.encode if codec is not None else encode
        config: dict[str, Any] = {
            **kafka_python_config(settings),
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "delivery_timeout_ms": delivery_timeout_ms,
            "request_timeout_ms": min(delivery_timeout_ms - linger_ms, 30_000),
            "key_serializer": _key_serializer(),
        }
        config.update(overrides)
        self._producer = KafkaProducer(**config)

    def topic(self, name: str) -> str:
        """Catalogue name → the configured (prefixed) topic name."""
        return self.settings.topic(name)

    def send(self, event: Event, *, headers: Headers = (), topic: str | None = None) -> Any:
        """Encode and send; returns kafka-python's future (``.get(timeout)`` for the ack)."""
        return self.send_raw(
            topic or event.TOPIC, record_key(event), self._encode(event), headers=headers
        )

    def send_raw(
        self, topic: str, key: str | bytes | None, value: bytes | None, *, headers: Headers = ()
    ) -> Any:
        """Send bytes as they are (dead-letter replay, fault injection). ``topic`` is a
        catalogue name; the prefix is added here."""
        return self._producer.send(
            self.topic(topic), key=key, value=value, headers=list(headers) or None
        )

    def publish(self, event: Event, *, headers: Headers = (), timeout: float = 30.0) -> Any:
        """Send and wait for the broker's acknowledgement; returns the record metadata."""
        future = self.send(event, headers=headers)
        try:
            return future.get(timeout=timeout)
        except Exception as exc:
            raise PublishError(
                f"{event.EVENT_TYPE} {event.envelope.event_id} for dossier "
                f"{event.envelope.dossier_id}: broker did not acknowledge: {exc}"
            ) from exc

    async def send_async(self, event: Event, *, headers: Headers = ()) -> Any:
        """Send and await the acknowledgement without blocking the event loop."""
        return await wait_acked(self.send(event, headers=headers))

    def partitions_for(self, topic: str) -> set[int]:
        """Fetch (and cache) the topic's metadata now, so the first send does not block on it."""
        return self._producer.partitions_for(self.topic(topic))

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        self._producer.close(timeout=timeout)

    def __enter__(self) -> BusProducer:
        return self

    def __exit__(self, *_: object) -> None:
        self.flush()
        self.close()


async def wait_acked(future: Any) -> Any:
    """Bridge a kafka-python future (completed on its I/O thread) into the running loop."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()

    def done(value: Any) -> None:
        loop.call_soon_threadsafe(_settle, waiter, value, None)

    def failed(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_settle, waiter, None, exc)

    future.add_callback(done)
    future.add_errback(failed)
    return await waiter


def _settle(waiter: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if waiter.done():
        return
    if exc is not None:
        waiter.set_exception(PublishError(f"broker did not acknowledge: {exc}"))
    else:
        waiter.set_result(value)
