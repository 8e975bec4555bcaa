"""Stage 2 spreads a batch's changelog records over several producers only where the broker
holds the app's producer to single-record batches, and the persisted offset never goes back
when their acknowledgements come back out of order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from lienthong.streams.app import changelog_lanes, write_table


class FakeProducer:
    """Records what is sent; each send returns a future the test resolves."""

    def __init__(self, max_batch_size: int) -> None:
        self.max_batch_size = max_batch_size
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.flushed = 0

    async def send(self, topic: str, key: bytes, value: bytes, partition: int, *_: Any) -> Any:
        self.sent.append((topic, key, value, partition))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def flush(self) -> None:
        self.flushed += 1

    async def maybe_start(self) -> None:
        pass


def fake_app(max_batch_size: int) -> Any:
    created: list[FakeProducer] = []

    def create_producer(**_: Any) -> FakeProducer:
        created.append(FakeProducer(max_batch_size))
        return created[-1]

    async def add_runtime_dependency(_: Any) -> None:
        pass

    return SimpleNamespace(
        producer=FakeProducer(max_batch_size),
        transport=SimpleNamespace(create_producer=create_producer),
        loop=None,
        beacon=None,
        add_runtime_dependency=add_runtime_dependency,
        created=created,
    )


def test_batching_producer_is_the_only_lane() -> None:
    app = fake_app(16384)
    lanes = asyncio.run(changelog_lanes(app, 6))
    assert lanes == [app.producer] and not app.created


def test_single_record_producer_gets_lanes_started_once_and_flushed_with_it() -> None:
    async def scenario() -> None:
        app = fake_app(1)
        lanes = await changelog_lanes(app, 4)
        again = await changelog_lanes(app, 4)
        assert lanes == again and lanes[0] is app.producer and len(app.created) == 3
        assert all(lane.max_batch_size == 1 for lane in lanes)
        await app.producer.flush()  # Faust's flush before a commit waits for every lane
        assert [lane.flushed for lane in app.created] == [1, 1, 1]

    asyncio.run(scenario())


def test_persisted_offset_keeps_the_highest_acknowledged() -> None:
    async def scenario() -> None:
        persisted: list[int] = []
        app = fake_app(1)
        table = SimpleNamespace(
            app=app,
            data=_MemoryStore(lambda tp, offset: persisted.append(offset)),
            changelog_topic=SimpleNamespace(get_topic_name=lambda: "x-stats-totals-changelog"),
        )
        a, b = await changelog_lanes(app, 2)
        first = await write_table(table, 0, "k1", {"parts": {}}, a)
        second = await write_table(table, 0, "k2", {"parts": {}}, b)
        b.futures[0].set_result(SimpleNamespace(offset=8))  # the later record acknowledged first
        a.futures[0].set_result(SimpleNamespace(offset=7))
        await asyncio.gather(first, second)
        await asyncio.sleep(0)
        assert persisted == [8]
        assert table.data.values == {"k1": {"parts": {}}, "k2": {"parts": {}}}
        assert a.sent[0][0] == "x-stats-totals-changelog" and a.sent[0][3] == 0

    asyncio.run(scenario())


class _MemoryStore:
    """What write_table needs of a non-RocksDB store."""

    def __init__(self, set_persisted_offset: Any) -> None:
        self.values: dict[str, Any] = {}
        self.set_persisted_offset = set_persisted_offset

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value
