"""The Faust application every stream worker runs.

Built from Settings by :func:`lienthong.streams.bootstrap.bootstrap` (never at import), so a
worker talks to the embedded broker or a production cluster by configuration alone, and a test
builds several apps in one process. Choices that matter for correctness:

- ``stream_processing_concurrency`` stays 1 per agent: faust-streaming has a known data-loss
  problem when concurrency > 1 (offsets committed past unprocessed events), see
  docs/architecture.md.
- No idempotent or transactional producer (``processing_guarantee="at_least_once"``): the
  bus gets exactness from idempotent effects keyed by event id and source offset instead,
  which also works on brokers without transactions.
- Short session/heartbeat timeouts so consumer-group joins settle quickly (the embedded
  broker is slow to rebalance otherwise); they are settings, not constants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import faust
from faust.types import TP
from faust.utils import json as faust_json

from lienthong.config import Settings
from lienthong.connectors.kafka import faust_broker_credentials
from lienthong.runtime.topics import Catalogue, load_catalogue

# aiokafka's default batch size, for every producer that is not held to single records.
OUTPUT_BATCH_BYTES = 16384


def create_app(settings: Settings) -> faust.App:
    """The app. On the embedded broker (or ``worker.single_record_batches``) its producer writes
    one record per batch: Faust's table changelogs and :func:`write_changelog` go through it,
    and Faust's recovery reads a changelog up to the ListOffsets answer, which Tansu 0.6 gets
    wrong for multi-record batches. Every other output goes through :func:`produce`, which
    batches normally (see :func:`output_producer`)."""
    worker = settings.worker
    single = worker.single_record_batches
    if single is None:
        single = settings.uses_embedded_broker
    # aiokafka always admits the first record of a batch, so a 1-byte limit = 1 record/batch.
    batch_bytes = 1 if single else OUTPUT_BATCH_BYTES
    # One data directory per worker process (the web port tells workers on one host apart).
    datadir = settings.run_dir / "worker-data" / f"{worker.app_id}-{worker.web_port}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        worker.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_broker_credentials(settings),
        store=worker.store,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_bind=worker.web_host,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_max_batch_size=batch_bytes,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=worker.heartbeat_interval_s,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.kafka.replication_factor,
        topic_partitions=6,
        topic_allow_declare=True,
        table_cleanup_interval=30.0,
        web_enabled=True,
        autodiscover=False,
        datadir=str(datadir),
    )


class StreamsApp:
    """One Faust app with the settings and topic catalogue it was built from.

    Why an object and not module globals: the stages of one worker share it, and a test (or a
    tool) can build several, from different settings, in one process (see
    :mod:`lienthong.streams.bootstrap`).
    """

    def __init__(
        self, settings: Settings, catalogue: Catalogue | None = None, app: faust.App | None = None
    ) -> None:
        self.settings = settings
        self.catalogue = (
            catalogue if catalogue is not None else load_catalogue(settings.topics_file)
        )
        self.app = app if app is not None else create_app(settings)

    def partitions_of(self, name: str) -> int:
        """Declared partitions of a catalogue topic: a table's changelog must match its source."""
        return self.catalogue.get(name).partitions

    def topic(self, name: str, **options: object) -> faust.TopicT:
        """A catalogue topic (prefix applied) carried as raw bytes; agents decode explicitly so
        undecodable records can be dead-lettered instead of crashing the stream."""
        return self.app.topic(
            self.settings.topic(name),
            key_serializer="raw",
            value_serializer="raw",
            internal=False,
            **options,
        )

    async def produce(
        self, name: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        """:func:`produce` on this app's producer."""
        return await produce(self.app, name, key, value, partition)


async def produce(
    app: faust.App, name: str, key: bytes | None, value: bytes | None, partition: int | None = None
) -> asyncio.Future[Any]:
    """Send one output record (not a changelog record) through a producer underneath Faust's
    ``Topic.send``, batched normally.

    Why: ``Topic.send`` costs ~185 µs of CPU per record on the development machine (future
    message, pending message, serializer registry, sensors) against ~25 µs for the producer
    itself (benchmarks/bench_faust_floor.py), and the tracker sends several records per event.
    Semantics are those of ``Topic.send`` with raw serializers: same partitioner for a key
    (``partition=None``), timestamp = now, and Faust's commit still flushes this producer
    before it commits input offsets (:func:`output_producer`). The returned future resolves
    when the broker acknowledges the record (or fails); callers that must know await it.
    """
    lane = getattr(app, "_lienthong_outputs", None)
    if lane is None:
        lane = app._lienthong_outputs = asyncio.ensure_future(output_producer(app))
    producer = await lane
    return await producer.send(name, key, value, partition, None, None)


async def output_producer(app: faust.App) -> Any:
    """The producer for outputs: the app's own unless that one is held to single-record
    batches, else a second one with the normal batch size, started with the app.

    Its ``flush`` is chained into the app producer's, so whatever Faust does before committing
    input offsets or handing partitions over (``app.producer.flush()``) waits for the outputs
    too: the at-least-once order "outputs acknowledged, then input committed" is unchanged.
    """
    main = app.producer
    if main.max_batch_size > 1:
        return main
    outputs = app.transport.create_producer(loop=app.loop, beacon=app.beacon)
    outputs.max_batch_size = OUTPUT_BATCH_BYTES
    await app.add_runtime_dependency(outputs)  # stopped with the app
    await outputs.maybe_start()
    flush_main = main.flush

    async def flush_both() -> None:
        await asyncio.gather(flush_main(), outputs.flush())

    main.flush = flush_both  # type: ignore[method-assign]
    return outputs


def json_changelog_table(table: Any) -> Any:
    """Check that :func:`write_changelog` may write this table's changelog (json keys; json
    values, or raw bytes the caller encodes itself); returns the table so the check sits where
    the table is declared."""
    if table.key_serializer != "json" or table.value_serializer not in ("json", "raw"):
        raise RuntimeError(f"table {table.name}: changelog writes need json keys, json/raw values")
    return table


def _value_bytes(table: Any, value: Any) -> bytes:
    if getattr(table, "value_serializer", "json") == "raw":
        if not isinstance(value, bytes):
            raise TypeError(f"table {table.name}: raw values must be bytes, not {type(value)}")
        return value
    return changelog_json(value)


async def write_changelog(table: Any, partition: int, key: str, value: Any) -> asyncio.Future[Any]:
    """What ``Table.send_changelog`` sends (same topic, partition, key and value bytes, from
    Faust's own json dumps), through the producer of Faust's own changelogs; the store still
    learns the changelog offset it holds when the broker acknowledges the record. The caller sets
    ``table.data[key]`` itself and awaits the returned future before its input is
    acknowledged."""
    return await _send_changelog(table, partition, changelog_json(key), _value_bytes(table, value))


async def _send_changelog(
    table: Any, partition: int, raw_key: bytes, raw_value: bytes, producer: Any = None
) -> asyncio.Future[Any]:
    name = table.changelog_topic.get_topic_name()
    # The app's producer (or one of its changelog_lanes): one record per batch where the
    # broker needs it (see create_app).
    producer = producer if producer is not None else table.app.producer
    future = await producer.send(name, raw_key, raw_value, partition, None, None)
    tp = TP(name, partition)

    def persisted(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            # Highest acknowledged offset: with several lanes, acknowledgements of one
            # partition can come back out of order (recovery resumes after this offset; the
            # local store already holds every value written).
            offset = done.result().offset
            known = _persisted_offsets(table)
            if offset > known.get(tp, -1):
                known[tp] = offset
                table.data.set_persisted_offset(tp, offset)

    future.add_done_callback(persisted)
    return future


def _persisted_offsets(table: Any) -> dict[TP, int]:
    offsets = getattr(table, "_lienthong_persisted", None)
    if offsets is None:
        offsets = table._lienthong_persisted = {}
    return offsets


async def changelog_lanes(app: faust.App, count: int) -> list[Any]:
    """Producers a writer may spread one batch's changelog records over: ``[app.producer]``
    unless that one is held to single-record batches, else ``count`` producers (the app's and
    ``count - 1`` more, started with the app, their ``flush`` chained into the app
    producer's as in :func:`output_producer`).

    Why: a producer keeps one produce request in flight per broker, and a request carries
    one batch per partition; held to one record per batch (the embedded broker), a
    one-partition changelog then gets one record per round trip, which was what bounded
    stage 2 (``stats-totals``). Safe only for a writer that writes each key at most once per
    batch and awaits the batch before writing again: records of different keys may then be
    stored in any order, while the records of one key keep theirs. On a cluster
    (normal batches) this is the app's one producer, as before.
    """
    main = app.producer
    if main.max_batch_size > 1 or count <= 1:
        return [main]
    lanes = getattr(app, "_lienthong_lanes", None)
    if lanes is None:
        lanes = app._lienthong_lanes = asyncio.ensure_future(_start_lanes(app, count - 1))
    return [main, *await lanes]


async def _start_lanes(app: faust.App, extra: int) -> list[Any]:
    main = app.producer
    lanes = []
    for _ in range(extra):
        lane = app.transport.create_producer(loop=app.loop, beacon=app.beacon)
        lane.max_batch_size = main.max_batch_size
        await app.add_runtime_dependency(lane)  # stopped with the app
        await lane.maybe_start()
        lanes.append(lane)
    flush_main = main.flush

    async def flush_all() -> None:
        await asyncio.gather(flush_main(), *(lane.flush() for lane in lanes))

    main.flush = flush_all  # type: ignore[method-assign]
    return lanes


def changelog_json(value: Any) -> bytes:
    """What Faust's ``json`` codec writes for ``value``: its own dumps (orjson, which
    faust-streaming picks up when installed and which is ~10× the standard library's speed on
    the tracker's records), as bytes."""
    raw = faust_json.dumps(value)
    return raw if isinstance(raw, bytes) else raw.encode()


def _rocks(table: Any) -> Any | None:
    """The table's RocksDB store, or None for another store (memory://)."""
    store = table.data
    return store if hasattr(store, "_db_for_partition") else None


def store_get(table: Any, partition: int | None, key: str) -> Any | None:
    """The value under ``key`` in the table's local store (None when absent), read from the
    database of ``partition`` (None: whichever open partition holds it).

    Why: a RocksDB store reads the database of the current event's partition, which in a batch
    of several partitions (or a stats record read on behalf of another partition) is not the
    key's; reading by the key's own partition is right in every context.
    """
    rocks = _rocks(table)
    if rocks is None:
        return table.data.get(key)
    raw_key = rocks._encode_key(key)
    if partition is None:
        found = rocks._get_bucket_for_key(raw_key)
        raw = found[1] if found is not None else None
    else:
        raw = rocks._db_for_partition(partition).get(raw_key)
    return None if raw is None else rocks._decode_value(raw)


async def write_table(
    table: Any, partition: int, key: str, value: Any, producer: Any = None
) -> asyncio.Future[Any]:
    """Save ``value`` in the table's local store for ``partition`` and send its changelog
    record (:func:`write_changelog`; through ``producer``, one of :func:`changelog_lanes`, if
    given), encoding it once for both; the caller awaits the future before its input is
    acknowledged.

    Why not ``table.data[key] = value``: the RocksDB store picks the partition's database from
    the *current event* (it asserts there is one), and the tracker writes at the end of a batch
    that mixes partitions, or from a timer with no event at all; the memory store does not care.
    """
    rocks = _rocks(table)
    raw_key, raw_value = changelog_json(key), _value_bytes(table, value)
    if rocks is None:
        table.data[key] = value
    else:
        rocks._db_for_partition(partition).put(raw_key, raw_value)
        rocks._key_index[raw_key] = partition
    return await _send_changelog(table, partition, raw_key, raw_value, producer)


def store_values(table: Any, partition: int) -> Iterator[Any]:
    """The values of the table's local store that may belong to ``partition``: with RocksDB
    only that partition's database is read (and decoded), with another store every value
    (the caller filters)."""
    rocks = _rocks(table)
    if rocks is None:
        yield from table.data.values()
        return
    for raw in rocks._visible_values(rocks._db_for_partition(partition)):
        yield rocks._decode_value(raw)
