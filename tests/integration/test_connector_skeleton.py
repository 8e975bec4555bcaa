"""The connector skeleton against the real broker: assigned consumer resumed from committed
offsets, validation with dead letters, commit after effects, state read back to the end."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _handoff(handoff_id: str) -> Any:
    from lienthong.schemas.models import HandoffSent

    return HandoffSent.create(
        dossier_id="H10-SKEL",
        producer_agency="000.00.01.H10",
        occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        handoff_id=handoff_id,
        from_agency="000.00.01.H10",
        to_agency="000.00.60.H10",
        step=2,
        step_due_at=datetime(2026, 3, 5, 9, tzinfo=UTC),
    )


def test_skeleton_consumes_dead_letters_commits_and_rebuilds(
    bus_settings, catalogue_topics
) -> None:
    from lienthong.connectors.headers import DLQ_CONSUMER, DLQ_SOURCE_OFFSET
    from lienthong.connectors.sdk import BusProducer
    from lienthong.connectors.skeleton import (
        ConsumeLoop,
        DeadLetters,
        KafkaThread,
        open_consumer,
        per_record,
        read_topics,
    )
    from lienthong.schemas import AvroCodec, registry_from_settings, set_default_codec

    codec = AvroCodec(registry_from_settings(bus_settings))
    set_default_codec(codec)
    producer = BusProducer(bus_settings, codec=codec)
    first, second = _handoff("h-1"), _handoff("h-2")
    for value in (codec.encode(first), b"not an event", codec.encode(second)):
        producer.send_raw("dossier-events", b"H10-SKEL", value).get(timeout=30)
    group = f"{bus_settings.topic_prefix}skeleton-test"
    handled: list[str] = []

    async def handle(event: Any, record: Any) -> None:
        handled.append(event.handoff_id)

    async def consume() -> DeadLetters:
        kafka = KafkaThread("skeleton-test")
        dead = DeadLetters(lambda: producer, "skeleton-test", lambda: datetime.now(UTC))
        consumer = await kafka.call(open_consumer, bus_settings, group, ["dossier-events"])
        loop = ConsumeLoop(kafka, consumer, per_record(handle, dead.send))
        deadline = time.monotonic() + 60
        while (len(handled) < 2 or dead.sent < 1) and time.monotonic() < deadline:
            await loop.once()
        await kafka.call(consumer.close)
        kafka.shutdown()
        return dead

    dead = asyncio.run(consume())
    assert handled == ["h-1", "h-2"] and dead.sent == 1

    state = read_topics(bus_settings, ["dead-letters", "dossier-events"])
    assert len(state["dossier-events"]) == 3
    [letter] = state["dead-letters"]
    headers = dict(letter.headers)
    assert letter.value == b"not an event"
    assert headers[DLQ_CONSUMER] == b"skeleton-test" and headers[DLQ_SOURCE_OFFSET] == b"1"

    # a restart resumes after the committed batch: nothing is handled twice
    again = open_consumer(bus_settings, group, ["dossier-events"])
    try:
        committed = sum(again.committed(tp) or 0 for tp in again.assignment())
        assert committed == 3
        assert again.poll(timeout_ms=1000) == {}
    finally:
        again.close()
        producer.close()
