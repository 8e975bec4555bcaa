"""Live counts (BRIEF §6) in two stages, exact under redelivery, crashes and rebalances.

Stage 1 (in the tracker's worker, per source partition; one object the tracker calls,
:class:`lienthong.streams.counts.LiveCounts`): an in-memory index of the tracker records by
``agency|procedure|channel`` (:class:`lienthong.domain.stats.KeyFigures`, which keeps each
key's figures up to date record change by record change, equal to
:func:`lienthong.domain.stats.figures` over the records); every ``stats_flush_s`` the figures
of each changed key and period are read from it and published on ``stats-partials`` as
absolute values with the partition and a version (the highest source offset seen), when they
differ from the figures last sent for that key and period. Closed dossiers are folded into
per-period counters (bounded memory). The index is rebuilt from the restored table after a
rebalance.

Stage 2 (``stats-partials``, one partition): a table per ``key|period`` holding the latest
partial of each source partition; the sum is published as a ``LiveStatsSnapshot`` on the
compacted ``live-stats`` topic and served by ``GET /stats``. Replacing absolute partials is
idempotent, so duplicated or replayed inputs and repeated partials can never count twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

import faust
import orjson
from faust.exceptions import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from lienthong.connectors.deadletter import FaustDeadLetterPublisher
from lienthong.domain import stats as rules
from lienthong.logs import get_logger
from lienthong.schemas import encode
from lienthong.schemas.models import LiveStatsSnapshot
from lienthong.streams.app import (
    StreamsApp,
    changelog_lanes,
    json_changelog_table,
    store_get,
    write_table,
)
from lienthong.streams.counts import LiveCounts
from lienthong.streams.failures import is_infrastructure, processing_failed, stop_process

log = get_logger(__name__)

SNAPSHOT_NAMESPACE = uuid.UUID("7d1e2b7a-9c4f-5d39-8a21-6c6976657374")


class StatsStage:
    """The live counts of one app: stage 1 (:attr:`counts`, which the tracker calls) and the
    stage-2 table, topics and publishers."""

    def __init__(self, streams: StreamsApp, counts: LiveCounts | None = None) -> None:
        self.app = app = streams.app
        self.settings = settings = streams.settings
        self.produce = streams.produce
        self.stats_partials = streams.topic("stats-partials")
        self.PARTIALS = settings.topic("stats-partials")
        self.LIVE_STATS = settings.topic("live-stats")
        self.stats_table = json_changelog_table(
            app.Table(
                "stats-totals", default=None, partitions=streams.partitions_of("stats-partials")
            )
        )
        self.dead_letters = FaustDeadLetterPublisher(streams.topic("dead-letters"), "streams.stats")
        # Stage 1: the tracker tells it what changed, the flush below asks it what to publish.
        self.counts = counts if counts is not None else LiveCounts()

    def register(self) -> None:
        """The flush timer, the stage-2 agent and the ``/stats`` page, on this app."""
        app, stage = self.app, self

        @app.timer(self.settings.streams.stats_flush_s, name="lienthong.streams.stats.flush")
        async def flush() -> None:
            await flush_partials(stage)

        @app.agent(self.stats_partials, name="lienthong.streams.stats.sum_partials")
        async def sum_agent(stream: faust.StreamT) -> None:
            await sum_partials(stage, stream)

        app.page("/stats")(type("Stats", (Stats,), {"stage": stage}))


async def flush_partials(stage: StatsStage) -> None:
    """Publish the figures of every dirty key and period (stage 1 → ``stats-partials``).

    A key whose figures cannot be computed is logged and skipped (the others still go out).
    A send failing after the producer's retries stops the process: the dirty marks are gone
    with this flush, and a restarted worker rebuilds the index from the table and republishes
    every period of its records, where a timer that just logged the error would leave those
    counts stale until the key changes again.
    """
    batch = stage.counts.take_dirty()
    if not batch:
        return
    sent: list[asyncio.Future[Any]] = []
    try:
        out: list[tuple[str, bytes]] = []
        for (partition, key), labels in batch:
            try:
                values = stage.counts.partials(partition, key, labels)
            except Exception:
                log.exception("stats_figures_failed", partition=partition, key=key)
                continue
            out.extend((f"{key}|{label}", value) for label, value in values)
        # By key|period, so the partitions' partials of one key|period follow each other on
        # stats-partials and land in the same stage-2 batch (one write for all of them) even
        # when a batch boundary falls inside this flush. Only the order changes: each partial
        # replaces its own partition's part, so stage 2's result is the same in any order.
        out.sort(key=lambda item: item[0])
        for full_key, value in out:
            sent.append(await stage.produce(stage.PARTIALS, full_key.encode(), value))
        if sent:
            await asyncio.gather(*sent)
    except Exception as exc:
        stop_process(log, "stats_flush_failed", exc, keys=len(batch))


async def sum_partials(stage: StatsStage, stream: faust.StreamT) -> None:
    """Stage 2, a batch of partials at a time.

    Each partial replaces its source partition's part of a ``key|period`` in order, as one at
    a time would; per batch, each changed ``key|period`` then gets one changelog record and one
    ``live-stats`` snapshot (the latest: ``live-stats`` is compacted by that key). A batch is
    what arrives within ``streams.stats_window_s`` (0.5 s; at most ``stats_batch_max``), so
    the source partitions' partials of one stage-1 flush (sent together, by key|period) share
    one write instead of one each. Behind, a batch fills up to the maximum and coalesces
    several flushes. On the embedded broker each changelog record is a batch of its own and a
    producer has one request in flight, so a one-partition changelog got one record per round
    trip, which was stage 2's main cost: the batch's records are spread over
    ``streams.stats_lanes`` producers (:func:`lienthong.streams.app.changelog_lanes`; each key
    is written once per batch, so their order across keys does not matter). Everything is awaited
    before Faust acknowledges the batch, so a crash redelivers partials onto the saved table,
    where replacing them again is idempotent.

    Failures, as in the tracker (:mod:`lienthong.streams.failures`): a partial that is not one
    (anything else written to the topic) is dead-lettered with the reason and never reaches
    the table, so it cannot poison its key's totals; a send failing after retries stops the
    process before the batch is acknowledged.
    """
    window = stage.settings.streams
    async for events in stream.take_events(window.stats_batch_max, window.stats_window_s):
        try:
            changed: dict[str, tuple[int, dict[str, Any]]] = {}
            sent: list[asyncio.Future[Any]] = []
            for event in events:
                try:
                    _apply_partial(stage, event, changed)
                except Exception as exc:
                    if is_infrastructure(exc):
                        raise
                    sent.append(await _reject_partial(stage, event.message, exc))
            lanes = await changelog_lanes(stage.app, window.stats_lanes)
            for i, (full_key, (partition, value)) in enumerate(changed.items()):
                # Each key once per batch, awaited before the next: any lane will do.
                lane = lanes[i % len(lanes)]
                sent.append(await write_table(stage.stats_table, partition, full_key, value, lane))
                snapshot = encode(_snapshot(full_key, value["parts"]))
                sent.append(await stage.produce(stage.LIVE_STATS, full_key.encode(), snapshot))
            if sent:
                await asyncio.gather(*sent)
        except Exception as exc:
            stop_process(log, "stats_batch_failed", exc, records=len(events))


def _apply_partial(
    stage: StatsStage, event: Any, changed: dict[str, tuple[int, dict[str, Any]]]
) -> None:
    """Replace one source partition's part of a ``key|period`` in ``changed`` (key → its
    partition and new value, written to the store and changelog once per batch)."""
    full_key = event.key.decode()
    partial = parse_partial(full_key, event.value)
    partition = event.message.partition
    pending = changed.get(full_key)
    current = pending[1] if pending else store_get(stage.stats_table, partition, full_key)
    current = current or {"parts": {}}
    part = str(partial["partition"])
    old = current["parts"].get(part)
    if old is not None and old["version"] > partial["version"]:
        return  # a stale partial from a previous owner of that partition
    changed[full_key] = (partition, {"parts": {**current["parts"], part: partial}})


async def _reject_partial(stage: StatsStage, message: Any, exc: Exception) -> asyncio.Future[Any]:
    where = {"partition": message.partition, "offset": message.offset}
    log.warning("stats_partial_rejected", error=str(exc), **where)
    return await stage.dead_letters.publish(message, processing_failed(exc, **where))


def parse_partial(full_key: str, raw: bytes | None) -> dict[str, Any]:
    """A ``stats-partials`` record checked field by field (ValueError naming what is wrong).

    Why checked at all: stage 1 is the only intended writer, but whatever lands in the table
    is summed into a key's totals on every later partial, so one malformed record would break
    that key for good."""
    parts = full_key.split("|")
    if len(parts) != 4:
        raise ValueError(f"key {full_key!r} is not agency|procedure|channel|period")
    rules.period_of_label(parts[3])  # cached: a batch holds the same few hundred labels
    try:
        partial = orjson.loads(raw or b"")  # what stage 1's json.dumps wrote, ~3× faster
    except ValueError as exc:
        raise ValueError(f"value is not JSON: {exc}") from None
    if not isinstance(partial, dict):
        raise ValueError("value is not a JSON object")
    if not isinstance(partial.get("partition"), int) or isinstance(partial["partition"], bool):
        raise ValueError("partition: must be an integer")
    version = partial.get("version")
    if not (
        isinstance(version, list)
        and len(version) == 2
        and isinstance(version[0], _NUMBER)
        and isinstance(version[1], _NUMBER)
    ):
        raise ValueError("version: must be [epoch, offset]")
    try:
        datetime.fromisoformat(partial.get("as_of"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError("as_of: must be an ISO 8601 instant") from None
    figures = partial.get("figures")
    if not isinstance(figures, dict):
        raise ValueError("figures: must be an object")
    for name in rules.FIGURES:
        if not isinstance(figures.get(name), int):
            raise ValueError(f"figures.{name}: must be an integer")
    return partial


_NUMBER = (int, float)


def _sum(parts: dict[str, Any]) -> dict[str, int]:
    total = dict.fromkeys(rules.FIGURES, 0)
    for p in parts.values():
        total = rules.add(total, p["figures"])
    return total


def _snapshot(full_key: str, parts: dict[str, Any]) -> LiveStatsSnapshot:
    agency, procedure, channel, label = full_key.split("|")
    kind, _, period_key = label.partition(":")
    figures = _sum(parts)
    as_of = max(datetime.fromisoformat(p["as_of"]) for p in parts.values())
    version = json.dumps({k: parts[k]["version"] for k in sorted(parts)})
    return LiveStatsSnapshot.create(
        event_id=uuid.uuid5(SNAPSHOT_NAMESPACE, f"{full_key}/{version}/{figures}"),
        dossier_id=None,
        producer_agency=agency,
        occurred_at=as_of,
        recorded_at=as_of,
        agency=agency,
        procedure_code=procedure,
        channel=channel,
        period_kind=kind,
        period_key=period_key,
        as_of=as_of,
        **{k: v for k, v in figures.items() if k not in ("received_online", "received_postal")},
        **rules.rates(figures),
    )


def query(
    stage: StatsStage, agency: str | None, procedure: str | None, period: str | None
) -> dict[str, Any]:
    rows = []
    totals = dict.fromkeys(rules.FIGURES, 0)
    label = rules.parse_period(period).label if period else None
    for full_key, value in stage.stats_table.items():
        if not value:
            continue
        a, p, channel, lab = full_key.split("|")
        if (agency and a != agency) or (procedure and p != procedure) or (label and lab != label):
            continue
        figures = _sum(value["parts"])
        rows.append(
            {"agency": a, "procedure": p, "channel": channel, "period": lab, **figures}
            | rules.rates(figures)
        )
        totals = rules.add(totals, figures)
    rows.sort(key=lambda r: (r["period"], r["agency"], r["procedure"], r["channel"]))
    return {"rows": rows, "totals": totals | rules.rates(totals), "period": label}


class Stats(View):
    """The counts, from whichever worker is asked.

    Registered per app by :meth:`StatsStage.register` (a subclass carrying :attr:`stage`).
    Stage 2 has one partition, so one worker holds every total; any other worker forwards the
    request to it (Faust's router, from the group's assignment) instead of answering with its
    own empty table — a monitoring console may be pointed at any worker.
    """

    stage: StatsStage

    async def get(self, request: Request) -> Response:
        stage = self.stage
        q = request.query
        try:
            body = query(stage, q.get("agency"), q.get("procedure"), q.get("period"))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        if not _holds_totals(stage):
            try:
                return await stage.app.router.route_req(
                    stage.stats_table.name, "*", self.web, request
                )
            except SameNode:
                pass  # the assignment says this worker after all (rebalance just happened)
            except ServiceUnavailable:
                return self.json({"error": "counts are moving between workers; retry"}, 503)
        return self.json(body)


def _holds_totals(stage: StatsStage) -> bool:
    """Whether the stage-2 partition is assigned to this worker."""
    name = stage.settings.topic("stats-partials")
    return any(tp.topic == name for tp in stage.app.assignor.assigned_actives())
