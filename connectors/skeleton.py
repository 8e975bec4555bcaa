"""The parts every kafka-python connector (postal, central, portal) is built from.

Why one skeleton: each connector used to write its own poll loop, its own "read a topic to its
end at start", its own executor for blocking kafka-python calls, its own signal handling and
its own ``/health`` + ``/metrics`` app, with small differences nobody chose. The pieces here are
small and composable (a connector keeps its own policy and HTTP client):

- :class:`KafkaThread`: kafka-python is blocking and not thread-safe, so one dedicated thread
  makes every Kafka call of a connector;
- :func:`read_topics` / :func:`latest_by_key`: rebuild in-memory state from topics (compacted
  or not) up to their end offsets at start;
- :func:`open_consumer`: manually assigned partitions resumed from the group's committed
  offsets (see :func:`lienthong.connectors.kafka.resume_from_committed`);
- :class:`ConsumeLoop`: poll, validate, hand over or dead-letter, and commit only after the
  batch's effects are done (at-least-once);
- :func:`retry`: bounded (doubling, capped) back-off that wakes up on stop;
- :func:`guard`, :func:`health_app`, :func:`start_site`, :func:`run_until_signal`: a failed
  loop stops the process, ``/health`` + ``/metrics``, and a clean stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from lienthong.connectors.backoff import doubling_delay
from lienthong.logs import get_logger
from lienthong.runtime.offsets import high_watermarks
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import Event

log = get_logger(__name__)

T = TypeVar("T")
Outcome = Event | DecodeError
Polled = list[tuple[Any, Outcome]]


class KafkaThread:
    """Runs blocking kafka-python calls on one thread, awaitable from the event loop."""

    def __init__(self, name: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


# --- state at start ------------------------------------------------------------------------


def read_topics(
    settings: Any,
    names: Iterable[str],
    *,
    idle_timeout_s: float = 30.0,
    strict: bool = True,
    consumer_factory: Callable[..., Any] | None = None,
) -> dict[str, list[Any]]:
    """Every record of the catalogue topics ``names`` up to their end at call time.

    A missing topic reads as empty. When no record arrives for ``idle_timeout_s`` before the
    end is reached, ``strict`` raises (state would be silently incomplete); otherwise what was
    read is returned and the gap logged.
    """
    from kafka import TopicPartition

    if consumer_factory is None:
        from kafka import KafkaConsumer

        from lienthong.connectors.kafka import kafka_python_config

        def consumer_factory() -> Any:
            return KafkaConsumer(**kafka_python_config(settings), enable_auto_commit=False)

    consumer = consumer_factory()
    out: dict[str, list[Any]] = {name: [] for name in names}
    try:
        tps: dict[Any, str] = {}
        for name in out:
            topic = settings.topic(name)
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                tps[TopicPartition(topic, p)] = name
        if not tps:
            return out
        ends = high_watermarks(consumer, list(tps))  # fetched, so right on Tansu too
        consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + idle_timeout_s
        # End offsets are a lower bound on some brokers (Tansu: last batch's base offset + 1),
        # so once they are reached one more poll takes the rest of the last batch (and stops
        # there, so a topic written to all the time cannot keep the start waiting).
        extra_poll = any(ends.values())
        while (remaining or extra_poll) and time.monotonic() < deadline:
            extra_poll = bool(remaining)
            for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
                out[tps[tp]].extend(records)
                deadline = time.monotonic() + idle_timeout_s
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        if remaining:
            missing = sorted(map(str, remaining))
            if strict:
                raise RuntimeError(f"could not read {missing} to the end")
            log.error("state_topics_incomplete", partitions=missing)
    finally:
        consumer.close()
    return out


def latest_by_key(records: Iterable[Any]) -> dict[bytes, bytes]:
    """Compacted-topic view: the last value per key; a tombstone (None value) removes it."""
    latest: dict[bytes, bytes] = {}
    for record in records:
        if record.key is None:
            continue
        if record.value is None:
            latest.pop(record.key, None)
        else:
            latest[record.key] = record.value
    return latest


# --- consuming -----------------------------------------------------------------------------


def open_consumer(
    settings: Any,
    group_id: str,
    names: Iterable[str],
    *,
    wait_s: float = 0.0,
    stopping: Callable[[], bool] = lambda: False,
    consumer_factory: Callable[..., Any] | None = None,
    **options: Any,
) -> Any:
    """A consumer assigned to every partition of ``names``, resumed from committed offsets.

    Waits up to ``wait_s`` (``None``: until ``stopping()``) for the topics' metadata, because
    a connector may start before the topics are created; with no partition at the end of the
    wait it raises, so the supervisor sees a failed start rather than an idle process.
    """
    from kafka import TopicPartition

    from lienthong.connectors.kafka import resume_from_committed

    if consumer_factory is None:
        from kafka import KafkaConsumer

        from lienthong.connectors.kafka import kafka_python_config

        def consumer_factory(**kwargs: Any) -> Any:
            return KafkaConsumer(**kafka_python_config(settings), **kwargs)

    consumer = consumer_factory(group_id=group_id, enable_auto_commit=False, **options)
    topics = [settings.topic(name) for name in names]
    deadline = None if wait_s is None else time.monotonic() + wait_s
    warned = False
    while True:
        parts = {t: consumer.partitions_for_topic(t) or set() for t in topics}
        missing = [t for t, p in parts.items() if not p]
        if not missing or stopping() or (deadline is not None and time.monotonic() >= deadline):
            break
        if not warned:
            log.error("topic_missing", topics=missing, effect="nothing consumed until it exists")
            warned = True
        time.sleep(0.5)
    tps = [TopicPartition(t, p) for t in topics for p in sorted(parts[t])]
    if wait_s != 0.0 and missing and not stopping():
        consumer.close()
        raise RuntimeError(f"topics {missing} not found")
    resume_from_committed(consumer, tps)
    log.info("consumer_assigned", group=group_id, topics=topics, partitions=len(tps))
    return consumer


def consumer_lag(consumer: Any) -> int | None:
    """Records between the consumer's positions and the high watermarks (None if unknown)."""
    total = 0
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            return None
        total += max(0, high - consumer.position(tp))
    return total


def gate(data: bytes | None) -> Outcome:
    """The validated event of a raw record value, or why it cannot be one (the bus's codec,
    agency list and clock; a :class:`lienthong.schemas.Validator` may stand in)."""
    from lienthong.schemas import decode_or_reason

    return decode_or_reason(data)


class ConsumeLoop:
    """Poll, validate, let the connector act, then commit: effects before offsets.

    ``handle`` receives each poll as ``(record, event or DecodeError)`` pairs, sorted by topic
    and partition (partition order kept), and must finish every effect of the batch (HTTP
    calls, produced records acknowledged, dead letters sent) before it returns: only then is
    the batch committed. An exception from ``handle`` ends the loop without committing, so the
    batch is read again after a restart. Use :func:`per_record` for one-record-at-a-time
    handling with dead-lettering of invalid records.
    """

    def __init__(
        self,
        kafka: KafkaThread,
        consumer: Any,
        handle: Callable[[Polled], Awaitable[Any]],
        *,
        max_records: int = 500,
        timeout_ms: int = 500,
        on_lag: Callable[[int | None], Any] | None = None,
        validate: Callable[[bytes | None], Outcome] = gate,
    ) -> None:
        self.kafka = kafka
        self.validate = validate
        self.on_lag = on_lag
        self.consumer = consumer
        self.handle = handle
        self.max_records = max_records
        self.timeout_ms = timeout_ms
        self.lag: int | None = None
        self.batches = 0

    def poll_blocking(self) -> Polled:
        batch = self.consumer.poll(timeout_ms=self.timeout_ms, max_records=self.max_records)
        records = sorted(
            (r for rs in batch.values() for r in rs), key=lambda r: (r.topic, r.partition)
        )
        self.lag = consumer_lag(self.consumer)
        if self.on_lag is not None:
            self.on_lag(self.lag)
        validate = self.validate
        return [(r, validate(r.value)) for r in records]

    async def once(self) -> int:
        """One poll handled and committed; how many records it had."""
        polled = await self.kafka.call(self.poll_blocking)
        if polled:
            await self.handle(polled)
            await self.kafka.call(self.consumer.commit)
            self.batches += 1
        return len(polled)

    async def run(
        self, stopping: asyncio.Event, *, stop_after_idle_polls: int | None = None
    ) -> None:
        idle = 0
        while not stopping.is_set():
            if stop_after_idle_polls is not None and idle >= stop_after_idle_polls:
                return
            idle = 0 if await self.once() else idle + 1


def per_record(
    handle: Callable[[Event, Any], Awaitable[Any]],
    invalid: Callable[[Any, DecodeError], Awaitable[Any]],
) -> Callable[[Polled], Awaitable[None]]:
    """A batch handler that gives valid events to ``handle`` and the rest to ``invalid``."""

    async def handle_batch(polled: Polled) -> None:
        for record, outcome in polled:
            if isinstance(outcome, DecodeError):
                await invalid(record, outcome)
            else:
                await handle(outcome, record)

    return handle_batch


class DeadLetters:
    """Dead letters sent through the bus producer and awaited (durable before the commit)."""

    def __init__(self, producer: Callable[[], Any], consumer_name: str, clock: Any) -> None:
        self._producer = producer
        self.consumer_name = consumer_name
        self.clock = clock
        self.sent = 0

    async def send(self, record: Any, error: BaseException) -> None:
        from lienthong.connectors.deadletter import rejected_record_headers
        from lienthong.connectors.sdk.producer import wait_acked

        headers = rejected_record_headers(record, error, self.consumer_name, self.clock)
        future = self._producer().send_raw(
            "dead-letters", record.key, record.value, headers=headers
        )
        await wait_acked(future)
        self.sent += 1


# --- retries -------------------------------------------------------------------------------


class Retry(Exception):
    """Raised by an attempt to ask for another one (the message says why, for the log)."""


class Stopped(Exception):
    """The retry loop gave up because the connector is stopping."""


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    base_s: float,
    cap_s: float,
    max_attempts: int | None = None,
    stopping: asyncio.Event | None = None,
    on_retry: Callable[[int, str, float], Any] | None = None,
) -> T:
    """Call ``attempt`` until it returns; :class:`Retry` waits base, 2·base … ≤ cap and tries
    again. Any other exception is final. After ``max_attempts`` the last :class:`Retry`
    propagates; a set ``stopping`` ends the wait early with :class:`Stopped`."""
    tries = 0
    while True:
        try:
            return await attempt()
        except Retry as exc:
            tries += 1
            if max_attempts is not None and tries >= max_attempts:
                raise
            delay = doubling_delay(tries, base_s, cap_s)
            if on_retry is not None:
                on_retry(tries, str(exc), delay)
            if stopping is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                continue
            raise Stopped(str(exc)) from exc


# --- process lifetime ----------------------------------------------------------------------


async def guard(work: Awaitable[Any], on_failure: Callable[[str], Any]) -> None:
    """Run ``work``; an exception is reported to ``on_failure`` (which should stop the
    process) instead of dying silently in a task behind a healthy ``/health``."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        on_failure(f"{type(exc).__name__}: {exc}")


def health_app(
    health: Callable[[], Mapping[str, Any]],
    metrics: Any,
    *,
    client_max_size: int = 1024**2,
) -> Any:
    """An aiohttp app with ``GET /health`` (JSON of ``health()``) and ``GET /metrics``; the
    connector adds its own routes (webhooks, callbacks) to it."""
    from aiohttp import web

    async def get_health(_: web.Request) -> web.Response:
        return web.json_response(dict(health()))

    app = web.Application(client_max_size=client_max_size)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", metrics.aiohttp_handler)
    return app


async def start_site(app: Any, host: str, port: int) -> Any:
    """Listen on host:port; returns the runner to ``cleanup()`` at stop."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def stop_on_signals(stopping: asyncio.Event) -> None:
    """SIGTERM (supervisor) and SIGINT (Ctrl-C) set ``stopping``."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)


async def run_until_signal(
    start: Callable[[], Awaitable[Any]],
    stop: Callable[[], Awaitable[Any]],
    stopping: asyncio.Event,
) -> None:
    """start(), wait for SIGTERM/SIGINT or for ``stopping`` set by a failure, stop()."""
    stop_on_signals(stopping)
    await start()
    try:
        await stopping.wait()
    finally:
        await stop()
