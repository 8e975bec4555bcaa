"""Live counts (BRIEF §6) in two stages, exact under redelivery, crashes and rebalances.

Stage 1 (in the tracker's worker, per source partition): an in-memory index of the tracker
records by ``agency|procedure|channel`` (:class:`lienthong.domain.stats.KeyFigures`, which
keeps each key's figures up to date record change by record change, equal to
:func:`lienthong.domain.stats.figures` over the records); every ``stats_flush_s`` the figures
of each changed key and period are read from it and published on ``stats-partials`` as
absolute values with the partition and a version (the highest source offset seen). The index
is rebuilt from the restored table after a rebalance.

Stage 2 (``stats-partials``, one partition): a table per ``key|period`` holding the latest
partial of each source partition; the sum is published as a ``LiveStatsSnapshot`` on the
compacted ``live-stats`` topic and served by ``GET /stats``. Replacing absolute partials is
idempotent, so duplicated or replayed inputs and repeated partials can never count twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from lienthong.connectors.deadletter import FaustDeadLetterPublisher
from lienthong.domain import stats as rules
from lienthong.logs import get_logger
from lienthong.schemas import encode
from lienthong.schemas.models import LiveStatsSnapshot
from lienthong.streams.app import (
    app,
    json_changelog_table,
    partitions_of,
    produce,
    settings,
    topic,
    write_changelog,
)
from lienthong.streams.failures import is_infrastructure, processing_failed, stop_process

log = get_logger(__name__)

stats_partials = topic("stats-partials")
PARTIALS = settings.topic("stats-partials")
LIVE_STATS = settings.topic("live-stats")
stats_table = json_changelog_table(
    app.Table("stats-totals", default=None, partitions=partitions_of("stats-partials"))
)
SNAPSHOT_NAMESPACE = uuid.UUID("7d1e2b7a-9c4f-5d39-8a21-6c6976657374")
dead_letters = FaustDeadLetterPublisher(topic("dead-letters"), "streams.stats")

_index: dict[int, dict[str, rules.KeyFigures]] = defaultdict(lambda: defaultdict(rules.KeyFigures))
_key_of: dict[int, dict[str, str]] = defaultdict(dict)  # record id -> key it is indexed under
_dirty: dict[tuple[int, str], set[str]] = defaultdict(set)
_marked: dict[tuple[int, str], datetime] = {}  # as_of of each key's latest marking
_swept: dict[int, str] = {}  # per partition: the day label of the last open-key sweep
_as_of: dict[int, datetime] = {}
_offsets: dict[int, int] = {}
_epochs: dict[int, float] = {}


def reset() -> None:
    _index.clear()
    _key_of.clear()
    _dirty.clear()
    _marked.clear()
    _swept.clear()


def owned_since(partition: int) -> None:
    """This process (re)took the partition: its partials outrank any earlier owner's."""
    _epochs[partition] = time.time()


def offset_seen(partition: int, offset: int) -> None:
    if offset > _offsets.get(partition, -1):
        _offsets[partition] = offset


def index(partition: int, record: dict[str, Any], rebuilt_at: datetime | None = None) -> None:
    """Index a record; ``rebuilt_at`` (after a rebalance or restart) also marks every period
    it has figures in for republication: partials published before a crash may not reflect
    records saved just before it, and their offsets may already be committed."""
    key = rules.stats_key(record)
    _reindex(partition, record, key)
    if key is None:
        return
    if rebuilt_at is not None:
        if partition not in _as_of or rebuilt_at > _as_of[partition]:
            _as_of[partition] = rebuilt_at
        _dirty[(partition, key)] |= rules.periods_of_record(record, _as_of[partition])
        _marked[(partition, key)] = _as_of[partition]


def _reindex(partition: int, record: dict[str, Any], key: str | None) -> str | None:
    """Put the record's latest summary under its key; returns the key it left, if it moved."""
    keys = _key_of[partition]
    record_id = record["id"]
    old = keys.get(record_id)
    moved = None
    if old is not None and old != key:
        _index[partition][old].update(record_id, None)
        del keys[record_id]
        moved = old
    if key is not None:
        _index[partition][key].put(record)
        keys[record_id] = key
    return moved


def touch(partition: int, record: dict[str, Any], at: datetime, now: datetime) -> None:
    """A record changed: re-index it and mark its key's periods for republication."""
    key = rules.stats_key(record)
    moved = _reindex(partition, record, key)
    if key is None and moved is None:
        return
    current = _as_of.get(partition)
    if current is None or now > current:
        _as_of[partition] = now
    as_of = _as_of[partition]
    changed = rules.periods_changed(at, as_of)
    if key is not None:
        # Every period since the key was last marked: its open dossiers were carried over
        # into them and in progress in them even if nothing happened to the key meanwhile.
        last = _marked.get((partition, key))
        if last is not None and last < as_of:
            changed |= rules.periods_between(last, as_of)
        if last is None or last < as_of:
            _marked[(partition, key)] = as_of
        _dirty[(partition, key)] |= changed
    if moved is not None:
        # The record left a key: that key's figures changed in every period it counted in.
        _dirty[(partition, moved)] |= rules.periods_of_record(record, _as_of[partition])


def _sweep_open_keys() -> None:
    """When a partition's clock enters a new day, mark the periods since their last marking of
    every key with open dossiers: those are carried over into the new periods and in progress
    in them although nothing happened to the key (a key with nothing open has no figures in a
    period without events of its own, and a dossier closing is an event)."""
    for partition, as_of in list(_as_of.items()):
        day = rules.labels_of(as_of)[0]
        if _swept.get(partition) == day:
            continue
        _swept[partition] = day
        for key, key_figures in _index[partition].items():
            if not key_figures.open:
                continue
            last = _marked.get((partition, key))
            if last is None or last < as_of:
                _dirty[(partition, key)] |= rules.periods_between(last or as_of, as_of)
                _marked[(partition, key)] = as_of


@app.timer(settings.streams.stats_flush_s)
async def flush_partials() -> None:
    """Publish the figures of every dirty key and period (stage 1 → ``stats-partials``).

    A key whose figures cannot be computed is logged and skipped (the others still go out).
    A send failing after the producer's retries stops the process: the dirty marks are gone
    with this flush, and a restarted worker rebuilds the index from the table and republishes
    every period of its records, where a timer that just logged the error would leave those
    counts stale until the key changes again.
    """
    _sweep_open_keys()
    if not _dirty:
        return
    batch = list(_dirty.items())
    _dirty.clear()
    sent: list[asyncio.Future[Any]] = []
    try:
        for (partition, key), labels in batch:
            try:
                values = _partials(partition, key, labels)
            except Exception:
                log.exception("stats_figures_failed", partition=partition, key=key)
                continue
            for label, value in values:
                sent.append(await produce(PARTIALS, f"{key}|{label}".encode(), value))
        if sent:
            await asyncio.gather(*sent)
    except Exception as exc:
        stop_process(log, "stats_flush_failed", exc, keys=len(batch))


def _partials(partition: int, key: str, labels: set[str]) -> list[tuple[str, bytes]]:
    as_of = _as_of.get(partition) or datetime.now(UTC)
    key_figures = _index[partition][key]
    shared: dict[datetime, dict[str, int]] = {}
    out = []
    for label in sorted(labels):
        period = rules.parse_period(label)
        value = {
            "partition": partition,
            # (ownership epoch, highest source offset): a partition's new owner (or the
            # restarted worker) outranks partials still in flight from the previous one.
            "version": [_epochs.get(partition, 0.0), _offsets.get(partition, -1)],
            "as_of": as_of.isoformat(),
            "figures": key_figures.figures(period, as_of, shared),
        }
        out.append((label, json.dumps(value).encode()))
    return out


@app.agent(stats_partials)
async def sum_partials(stream: faust.StreamT) -> None:
    """Stage 2, a batch of partials at a time.

    Each partial replaces its source partition's part of a ``key|period`` in order, as one at
    a time would; per batch, each changed ``key|period`` then gets one changelog record and one
    ``live-stats`` snapshot (the latest: ``live-stats`` is compacted by that key, and the six
    source partitions' partials of one flush usually arrive together). Everything is awaited
    before Faust acknowledges the batch, so a crash redelivers partials onto the saved table,
    where replacing them again is idempotent.

    Failures, as in the tracker (:mod:`lienthong.streams.failures`): a partial that is not one
    (anything else written to the topic) is dead-lettered with the reason and never reaches
    the table, so it cannot poison its key's totals; a send failing after retries stops the
    process before the batch is acknowledged.
    """
    async for events in stream.take_events(500, 0.05):
        try:
            changed: dict[str, int] = {}
            sent: list[asyncio.Future[Any]] = []
            for event in events:
                try:
                    _apply_partial(event, changed)
                except Exception as exc:
                    if is_infrastructure(exc):
                        raise
                    sent.append(await _reject_partial(event.message, exc))
            for full_key, partition in changed.items():
                value = stats_table.data[full_key]
                sent.append(await write_changelog(stats_table, partition, full_key, value))
                snapshot = encode(_snapshot(full_key, value["parts"]))
                sent.append(await produce(LIVE_STATS, full_key.encode(), snapshot))
            if sent:
                await asyncio.gather(*sent)
        except Exception as exc:
            stop_process(log, "stats_batch_failed", exc, records=len(events))


def _apply_partial(event: Any, changed: dict[str, int]) -> None:
    full_key = event.key.decode()
    partial = parse_partial(full_key, event.value)
    current = stats_table.get(full_key) or {"parts": {}}
    part = str(partial["partition"])
    old = current["parts"].get(part)
    if old is not None and old["version"] > partial["version"]:
        return  # a stale partial from a previous owner of that partition
    stats_table.data[full_key] = {"parts": {**current["parts"], part: partial}}
    changed[full_key] = event.message.partition


async def _reject_partial(message: Any, exc: Exception) -> asyncio.Future[Any]:
    where = {"partition": message.partition, "offset": message.offset}
    log.warning("stats_partial_rejected", error=str(exc), **where)
    return await dead_letters.publish(message, processing_failed(exc, **where))


def parse_partial(full_key: str, raw: bytes | None) -> dict[str, Any]:
    """A ``stats-partials`` record checked field by field (ValueError naming what is wrong).

    Why checked at all: stage 1 is the only intended writer, but whatever lands in the table
    is summed into a key's totals on every later partial, so one malformed record would break
    that key for good."""
    parts = full_key.split("|")
    if len(parts) != 4:
        raise ValueError(f"key {full_key!r} is not agency|procedure|channel|period")
    rules.parse_period(parts[3])
    try:
        partial = json.loads(raw or b"")
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
        and all(isinstance(v, int | float) for v in version)
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


def query(agency: str | None, procedure: str | None, period: str | None) -> dict[str, Any]:
    rows = []
    totals = dict.fromkeys(rules.FIGURES, 0)
    label = rules.parse_period(period).label if period else None
    for full_key, value in stats_table.items():
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


@app.page("/stats")
class Stats(View):
    """The counts, from whichever worker is asked.

    Stage 2 has one partition, so one worker holds every total; any other worker forwards the
    request to it (Faust's router, from the group's assignment) instead of answering with its
    own empty table — a monitoring console may be pointed at any worker.
    """

    async def get(self, request: Request) -> Response:
        q = request.query
        try:
            body = query(q.get("agency"), q.get("procedure"), q.get("period"))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        if not _holds_totals():
            try:
                return await app.router.route_req(stats_table.name, "*", self.web, request)
            except SameNode:
                pass  # the assignment says this worker after all (rebalance just happened)
            except ServiceUnavailable:
                return self.json({"error": "counts are moving between workers; retry"}, 503)
        return self.json(body)


def _holds_totals() -> bool:
    """Whether the stage-2 partition is assigned to this worker."""
    name = settings.topic("stats-partials")
    return any(tp.topic == name for tp in app.assignor.assigned_actives())
