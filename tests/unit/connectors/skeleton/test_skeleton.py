"""The connector skeleton with a fake kafka-python consumer: gate, effects before commit,
compacted-state reading, bounded retries, guarded tasks and the health app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import TopicPartition

from lienthong.config import load_settings
from lienthong.connectors.skeleton import (
    ConsumeLoop,
    KafkaThread,
    Retry,
    Stopped,
    guard,
    latest_by_key,
    open_consumer,
    per_record,
    read_topics,
    retry,
)
from lienthong.schemas import encode
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import HandoffSent

SETTINGS = load_settings(environ={"LIENTHONG_TOPIC_PREFIX": "u."})


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)


def handoff() -> bytes:
    return encode(
        HandoffSent.create(
            dossier_id="H10-1",
            producer_agency="000.00.01.H10",
            occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            handoff_id="h1",
            from_agency="000.00.01.H10",
            to_agency="000.00.60.H10",
            step=2,
            step_due_at=datetime(2026, 3, 5, 9, tzinfo=UTC),
        )
    )


class FakeConsumer:
    """Enough of KafkaConsumer: partitions, assignment, seek, poll batches, commit, close."""

    def __init__(self, batches: list[dict[Any, list[Rec]]], partitions: dict[str, set[int]]):
        self.batches = batches
        self.partitions = partitions
        self.log: list[str] = []
        self.assigned: list[Any] = []
        self.positions: dict[Any, int] = {}
        self.committed_offsets: dict[Any, int] = {}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def assign(self, tps: list[Any]) -> None:
        self.assigned = list(tps)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def committed(self, tp: Any) -> int | None:
        return self.committed_offsets.get(tp)

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[tp] = offset

    def seek_to_beginning(self, *tps: Any) -> None:
        for tp in tps:
            self.positions[tp] = 0

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        ends = dict.fromkeys(tps, 0)
        for batch in self.batches:
            for tp, records in batch.items():
                ends[tp] = max(ends.get(tp, 0), max(r.offset for r in records) + 1)
        return ends

    def position(self, tp: Any) -> int:
        return self.positions.get(tp, 0)

    def highwater(self, tp: Any) -> int | None:
        return self.end_offsets([tp])[tp]

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        if not self.batches:
            return {}
        batch = self.batches.pop(0)
        for tp, records in batch.items():
            self.positions[tp] = records[-1].offset + 1
        self.log.append(f"poll {sum(map(len, batch.values()))}")
        return batch

    def commit(self) -> None:
        self.log.append("commit")

    def close(self) -> None:
        self.log.append("close")


TP = TopicPartition("u.dossier-events", 0)


def test_valid_events_are_handled_invalid_ones_dead_lettered_and_commit_follows() -> None:
    good, bad = Rec(TP.topic, 0, 0, b"k", handoff()), Rec(TP.topic, 0, 1, b"k", b"junk")
    consumer = FakeConsumer([{TP: [good, bad]}], {TP.topic: {0}})
    seen: list[str] = []

    async def handle(event: Any, record: Any) -> None:
        seen.append(f"event {type(event).__name__} {record.offset}")
        consumer.log.append("effect")

    async def invalid(record: Any, error: DecodeError) -> None:
        seen.append(f"dead {record.offset} {error.error_class}")
        consumer.log.append("dead-letter")

    async def scenario() -> int:
        kafka = KafkaThread("test-kafka")
        try:
            loop = ConsumeLoop(kafka, consumer, per_record(handle, invalid))
            count = await loop.once()
            assert loop.lag == 0
            return count + await loop.once()
        finally:
            kafka.shutdown()

    assert asyncio.run(scenario()) == 2
    assert seen[0] == "event HandoffSent 0"
    assert seen[1].startswith("dead 1 ")
    # effects and dead letters of a batch come before its commit; an empty poll commits nothing
    assert consumer.log == ["poll 2", "effect", "dead-letter", "commit"]


def test_a_failing_handler_leaves_the_batch_uncommitted() -> None:
    consumer = FakeConsumer([{TP: [Rec(TP.topic, 0, 0, b"k", handoff())]}], {TP.topic: {0}})

    async def handle(polled: Any) -> None:
        raise RuntimeError("outside system down")

    async def scenario() -> None:
        kafka = KafkaThread("test-kafka")
        try:
            await ConsumeLoop(kafka, consumer, handle).run(asyncio.Event())
        finally:
            kafka.shutdown()

    with pytest.raises(RuntimeError, match="outside system down"):
        asyncio.run(scenario())
    assert "commit" not in consumer.log


def test_run_stops_after_idle_polls_and_when_stopping_is_set() -> None:
    consumer = FakeConsumer([], {TP.topic: {0}})

    async def scenario() -> int:
        kafka = KafkaThread("test-kafka")
        loop = ConsumeLoop(kafka, consumer, per_record(_never, _never))
        await loop.run(asyncio.Event(), stop_after_idle_polls=3)
        stopping = asyncio.Event()
        stopping.set()
        await loop.run(stopping)  # returns at once
        kafka.shutdown()
        return len(consumer.log)

    assert asyncio.run(scenario()) == 0


async def _never(*_: Any) -> None:
    raise AssertionError("not called")


def test_open_consumer_resumes_from_committed_offsets_or_the_start() -> None:
    tp0, tp1 = TopicPartition("u.postal-orders", 0), TopicPartition("u.postal-orders", 1)
    fake = FakeConsumer([], {"u.postal-orders": {0, 1}})
    fake.committed_offsets[tp1] = 7
    options: dict[str, Any] = {}

    def factory(**kwargs: Any) -> FakeConsumer:
        options.update(kwargs)
        return fake

    consumer = open_consumer(SETTINGS, "g", ["postal-orders"], consumer_factory=factory)
    assert consumer is fake and fake.assigned == [tp0, tp1]
    assert fake.positions == {tp0: 0, tp1: 7}
    assert options == {"group_id": "g", "enable_auto_commit": False}


def test_open_consumer_gives_up_on_a_missing_topic_after_the_wait() -> None:
    fake = FakeConsumer([], {})
    with pytest.raises(RuntimeError, match="u.postal-orders"):
        open_consumer(
            SETTINGS, "g", ["postal-orders"], wait_s=0.2, consumer_factory=lambda **_: fake
        )
    assert fake.log == ["close"]


def test_read_topics_reads_to_the_end_and_latest_by_key_honours_tombstones() -> None:
    tp = TopicPartition("u.central-requests", 0)
    records = [
        Rec(tp.topic, 0, 0, b"a", b"1"),
        Rec(tp.topic, 0, 1, b"b", b"1"),
        Rec(tp.topic, 0, 2, b"a", b"2"),
        Rec(tp.topic, 0, 3, b"b", None),
    ]
    fake = FakeConsumer([{tp: records[:2]}, {tp: records[2:]}], {tp.topic: {0}})
    out = read_topics(
        SETTINGS, ["central-requests", "monitoring-alerts"], consumer_factory=lambda: fake
    )
    assert [r.offset for r in out["central-requests"]] == [0, 1, 2, 3]
    assert out["monitoring-alerts"] == []
    assert latest_by_key(out["central-requests"]) == {b"a": b"2"}
    assert fake.log[-1] == "close"


def test_read_topics_refuses_incomplete_state_when_strict() -> None:
    tp = TopicPartition("u.central-requests", 0)
    fake = FakeConsumer([], {tp.topic: {0}})
    fake.end_offsets = lambda tps: dict.fromkeys(tps, 5)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="to the end"):
        read_topics(
            SETTINGS, ["central-requests"], idle_timeout_s=0.3, consumer_factory=lambda: fake
        )
    fake = FakeConsumer([], {tp.topic: {0}})
    fake.end_offsets = lambda tps: dict.fromkeys(tps, 5)  # type: ignore[method-assign]
    lenient = read_topics(
        SETTINGS,
        ["central-requests"],
        idle_timeout_s=0.3,
        strict=False,
        consumer_factory=lambda: fake,
    )
    assert lenient == {"central-requests": []}


def test_retry_backs_off_doubling_to_the_cap_then_gives_up() -> None:
    delays: list[float] = []
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise Retry(f"status 503 #{calls}")
        return "ok"

    result = asyncio.run(
        retry(attempt, base_s=0.001, cap_s=0.003, on_retry=lambda n, why, d: delays.append(d))
    )
    assert result == "ok" and delays == [0.001, 0.002, 0.003]

    async def always() -> str:
        raise Retry("down")

    with pytest.raises(Retry, match="down"):
        asyncio.run(retry(always, base_s=0.001, cap_s=0.001, max_attempts=3))


def test_retry_wakes_up_on_stop_and_lets_final_errors_through() -> None:
    async def always() -> None:
        raise Retry("down")

    async def stopped() -> None:
        stopping = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stopping.set)
        await retry(always, base_s=60, cap_s=60, stopping=stopping)

    with pytest.raises(Stopped):
        asyncio.run(asyncio.wait_for(stopped(), 5))

    async def refused() -> None:
        raise ValueError("4xx: the order itself is bad")

    with pytest.raises(ValueError):
        asyncio.run(retry(refused, base_s=0.001, cap_s=0.001))


def test_guard_reports_a_failed_task_instead_of_dying_silently() -> None:
    failures: list[str] = []

    async def broken() -> None:
        raise KeyError("x")

    asyncio.run(guard(broken(), failures.append))
    assert failures == ["KeyError: 'x'"]


def test_health_app_serves_health_and_metrics() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from lienthong.connectors.skeleton import health_app
    from lienthong.runtime.metrics import Metrics

    async def scenario() -> tuple[dict, str]:
        app = health_app(lambda: {"status": "ok", "lag": 3}, Metrics("skeleton-test"))
        async with TestClient(TestServer(app)) as client:
            health = await (await client.get("/health")).json()
            metrics = await (await client.get("/metrics")).text()
        return health, metrics

    health, metrics = asyncio.run(scenario())
    assert health == {"status": "ok", "lag": 3}
    assert 'lienthong_component_info{component="skeleton-test"} 1.0' in metrics


def test_read_topics_reads_past_under_reported_end_offsets_until_a_quiet_poll() -> None:
    tp = TopicPartition("u.postal-orders", 0)
    records = [Rec(tp.topic, 0, n, b"k", b"v") for n in range(4)]
    fake = FakeConsumer([{tp: records[:2]}, {tp: records[2:]}], {tp.topic: {0}})
    fake.end_offsets = lambda tps: dict.fromkeys(tps, 1)  # type: ignore[method-assign]
    out = read_topics(SETTINGS, ["postal-orders"], consumer_factory=lambda: fake)
    assert [r.offset for r in out["postal-orders"]] == [0, 1, 2, 3]


def test_read_topics_does_not_wait_on_a_topic_written_to_all_the_time() -> None:
    tp = TopicPartition("u.postal-orders", 0)
    busy = [{tp: [Rec(tp.topic, 0, n, b"k", b"v")]} for n in range(1000)]
    fake = FakeConsumer(busy, {tp.topic: {0}})
    fake.end_offsets = lambda tps: dict.fromkeys(tps, 1)  # type: ignore[method-assign]
    out = read_topics(SETTINGS, ["postal-orders"], consumer_factory=lambda: fake)
    assert [r.offset for r in out["postal-orders"]] == [0, 1]
