"""Dossier tracker: one trustworthy record per dossier, portal feed, agency inbox, alerts.

Reads ``dossier-events`` (key = dossier id, so one dossier's events are in one partition and
applied in offset order) and keeps a changelog-backed table of tracker records (see
:mod:`lienthong.domain.tracking`). Effects are idempotent, processing is at-least-once:

- a repeated event id changes nothing; if it is the *same* source record delivered again (the
  worker died after saving the record but before the offset was committed), the event's
  outputs are re-emitted with identical key, id and content, because they may have been lost;
- portal records and inbox entries are deterministic functions of the record, so duplicates
  are byte-identical and consumers drop them by event id;
- deadline alerts are sent and acknowledged *before* the record notes them as emitted, so a
  crash can only repeat an alert (same uuid5 id and key), never lose one.

Failures (see :mod:`lienthong.streams.failures`): a record whose handling raises is
dead-lettered (``ProcessingFailed``, or ``OutputTooLarge`` when an output could not be
written) and the batch carries on; a failure of the bus itself stops the process before the
batch is acknowledged, so its records are read again after the restart.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

import faust
from faust.web import Request, Response, View

from lienthong.connectors.deadletter import FaustDeadLetterPublisher
from lienthong.domain.alerts import (
    Alert,
    AlertRules,
    alert_id,
    minutes_left,
    minutes_overdue,
    next_fire,
)
from lienthong.domain.decide import Decision, Timers, decide, tick
from lienthong.domain.procedures import Procedure, ProcedureCatalogue, load_procedures
from lienthong.domain.record import DossierRecord as Record
from lienthong.domain.slip import record_slip
from lienthong.logs import get_logger
from lienthong.runtime.metrics import Metrics
from lienthong.schemas import default_codec, encode
from lienthong.schemas.dossier_record import decode_state, encode_state
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import (
    ApologyIssued,
    DeadlineOverdue,
    DeadlineWarning,
    Event,
    HandoffEscalated,
)
from lienthong.schemas.validate import Validator
from lienthong.streams.app import (
    StreamsApp,
    changelog_json,
    json_changelog_table,
    store_get,
    store_values,
    write_table,
)
from lienthong.streams.clock import Clock, backlog_after
from lienthong.streams.counts import LiveCounts, is_closed
from lienthong.streams.facts import facts_of
from lienthong.streams.failures import (
    Rejection,
    dead_letter_parts,
    is_infrastructure,
    processing_failed,
    stop_process,
    too_large,
)
from lienthong.streams.gaps import GapGuard
from lienthong.streams.portal import PortalRecords
from lienthong.streams.records import HotRecords
from lienthong.streams.timers import PartitionTimers

log = get_logger(__name__)


def _restored(value: Any) -> Record | None:
    """A dossiers changelog value (bytes of any encoding version) as the typed record."""
    if value is None or isinstance(value, Record):
        return value
    return decode_state(value)


def _dossier(
    stage: TrackerStage, dossier_id: str, partition: int | None, batch: Batch | None = None
) -> Record | None:
    """The dossier's record: as the batch being applied left it, else the latest saved one
    (from the hot cache, else the store of ``partition``, decoded)."""
    if batch is not None:
        pending = batch.records.get(dossier_id)
        if pending is not None:
            return pending
    record = stage.hot_records.get(dossier_id)
    if record is not None:
        return record  # type: ignore[no-any-return]
    record = _restored(store_get(stage.dossiers, partition, dossier_id))
    if record is not None:
        stage.hot_records.put(dossier_id, record)
    return record


def _progress(stage: TrackerStage, partition: int) -> int:
    """Offset of the last dossier-events record of ``partition`` whose batch was saved."""
    value = store_get(stage.tracker_progress, partition, str(partition))
    return -1 if value is None else int(value)


class TrackerStage:
    """The dossier tracker of one app: its topics, tables, clock, rules, procedures, caches,
    timers and the live counts it feeds (stage 1, owned by the stats stage).

    Built by :func:`lienthong.streams.bootstrap.bootstrap`; the functions of this module take
    it as their first argument and :meth:`register` puts the agent, timers and page on the app.
    """

    def __init__(
        self,
        streams: StreamsApp,
        counts: LiveCounts,
        metrics: Metrics,
        procedures: ProcedureCatalogue | None = None,
    ) -> None:
        self.app = app = streams.app
        self.settings = settings = streams.settings
        self.produce = streams.produce
        self.counts = counts
        self.metrics = metrics
        self.dossier_events = streams.topic("dossier-events")
        self.PORTAL_STATUS = settings.topic("portal-status")
        self.AGENCY_INBOX = settings.topic("agency-inbox")
        self.DEADLINE_ALERTS = settings.topic("deadline-alerts")
        self.dead_letter_publisher = FaustDeadLetterPublisher(
            streams.topic("dead-letters"), "streams.tracker"
        )
        partitions = streams.partitions_of("dossier-events")
        # Values: the record's versioned encoding (lienthong.schemas.dossier_record), as bytes.
        self.dossiers = app.Table("dossiers", default=None, partitions=partitions, value_type=bytes)
        # key: source partition -> offset of the last dossier-events record handled; lets the
        # gap guard see a record Faust dropped around a rebalance (see lienthong.streams.gaps).
        self.tracker_progress = app.Table(
            "tracker-progress", default=lambda: -1, partitions=partitions
        )
        # Batch._changelog writes these tables' changelog records itself (see write_changelog).
        json_changelog_table(self.dossiers)
        json_changelog_table(self.tracker_progress)
        # Faust's hook for the values it restores from a changelog (memory store): any version
        # lienthong.schemas.dossier_record reads, as the typed record.
        self.dossiers._to_value = _restored  # type: ignore[method-assign]

        self.clock = Clock(settings.streams.clock)
        self.rules = AlertRules(
            warning_lead=timedelta(hours=settings.streams.warning_lead_hours),
            accept_within=timedelta(hours=settings.streams.handoff_accept_hours),
        )
        self.procedures = procedures if procedures is not None else load_procedures()
        self.validator = Validator(default_codec())
        # Pending timers per source partition, lazily invalidated; rebuilt from the table
        # whenever a partition is (re)assigned, so they follow the partitions.
        self.partition_timers = PartitionTimers()
        # Builds the portal status records (caches of rendered dates and validated lines).
        self.portal_records = PortalRecords()
        # The records read or written lately, decoded (bounded; see lienthong.streams.records).
        self.hot_records = HotRecords()
        # The producer refuses a record over this size (Faust's producer_max_request_size).
        self.MAX_RECORD_BYTES: int = app.conf.producer_max_request_size
        self.SUSPECT_PORTAL_BYTES = self.MAX_RECORD_BYTES // 16
        # A tracker record is rewritten on every event of its dossier and held decoded in
        # hot_records: bounded below the producer's limit (streams.max_record_bytes).
        self.MAX_STATE_BYTES = min(settings.streams.max_record_bytes, self.MAX_RECORD_BYTES)
        # Held while a batch is applied and by the live alert timer: the timer must not save a
        # record carrying alerts a batch has noted but not yet had acknowledged (see Batch).
        self.processing = asyncio.Lock()
        self.current: Batch | None = None
        self.gap_guard = GapGuard(
            app,
            self.dossier_events.get_topic_name(),
            self.applied_offset,
            skip_redelivered=False,  # track() recognises repeats and re-emits lost outputs
        )

    def applied_offset(self, partition: int) -> int:
        if self.current is not None:
            return self.current.applied_offset(partition)
        return _progress(self, partition)

    def register(self) -> None:
        """The agent, the gap and alert timers, the rebalance hook and the slip page."""
        app, stage = self.app, self
        prefix = "lienthong.streams.tracker"

        @app.timer(interval=2.0, name=f"{prefix}.repair_dossier_event_tail_gaps")
        async def repair_gaps() -> None:
            await repair_dossier_event_tail_gaps(stage)

        @app.agent(self.dossier_events, name=f"{prefix}.track_dossiers")
        async def track(stream: faust.StreamT) -> None:
            await track_dossiers(stage, stream)

        @app.timer(self.settings.streams.tick_s, name=f"{prefix}.live_tick")
        async def tick_alerts() -> None:
            await live_tick(stage)

        @app.on_rebalance_complete.connect
        async def rebalanced(sender: Any, **kwargs: Any) -> None:
            await _on_rebalance(stage)

        app.page("/dossiers/slip")(type("DossierSlip", (DossierSlip,), {"stage": stage}))


# Above these sizes (the portal one: TrackerStage.SUSPECT_PORTAL_BYTES) an event may make its
# dossier's changelog record too large, and the record is encoded and measured before it is
# saved. Below them it cannot: the record holds at most ENTRIES_KEPT (40) applied events, each
# no larger than the event's own free text (typical events are 150-250 bytes), so with events
# under SUSPECT_EVENT_BYTES and portal records under 1/16 of the producer's limit the record
# stays far below streams.max_record_bytes. Measuring every record would encode it twice.
SUSPECT_EVENT_BYTES = 4096

Outputs = list[tuple[str, bytes, bytes]]


def _outputs(stage: TrackerStage, dossier_id: str, decision: Decision, raw: bytes) -> Outputs:
    """The records a decision sends (portal, inbox), encoded and size-checked, none sent yet.

    Built before the tracker record is saved, so an event whose outputs cannot be written
    (``OutputTooLarge``, or an exception building them) is rejected with the dossier
    untouched; after the save only the sends remain, and they fail only with the bus.
    """
    key = dossier_id.encode()
    outputs: Outputs = []
    if decision.portal is not None:
        outputs.append(
            (
                stage.PORTAL_STATUS,
                key,
                encode(stage.portal_records.build(dossier_id, decision.portal)),
            )
        )
    if decision.inbox is not None:
        outputs.append((stage.AGENCY_INBOX, decision.inbox.encode(), raw))
    for name, out_key, value in outputs:
        rejection = too_large(name, out_key, value, stage.MAX_RECORD_BYTES)
        if rejection is not None:
            raise rejection
    return outputs


def _check_record_size(stage: TrackerStage, record: Record, raw: bytes, outputs: Outputs) -> None:
    """Refuse an event that would make the dossier's changelog record unwritable.

    A record saved in memory but refused by the producer at the end of the batch would stop
    the worker at every restart (the batch fails as a whole): the event is rejected here
    instead, while the dossier is still as it was. Measured only for suspect sizes (above).
    """
    portal = outputs[0][2] if outputs else b""
    if len(raw) <= SUSPECT_EVENT_BYTES and len(portal) <= stage.SUSPECT_PORTAL_BYTES:
        return
    name = stage.dossiers.changelog_topic.get_topic_name()
    # The very bytes write_changelog sends.
    key, value = changelog_json(record.id), encode_state(record)
    rejection = too_large(
        name,
        key,
        value,
        stage.MAX_STATE_BYTES,
        what="tracker record (changelog)",
        limit_name="the tracker record limit (streams.max_record_bytes)",
    )
    if rejection is not None:
        raise rejection


async def _send(stage: TrackerStage, outputs: Outputs, batch: Batch) -> None:
    for name, key, value in outputs:
        batch.sent.append(await stage.produce(name, key, value))


def _note_change(
    stage: TrackerStage,
    partition: int,
    record: Record,
    counts_at: tuple[datetime, ...],
    now: datetime,
    next_at: datetime | None = None,
    *,
    timer: bool = False,
    was_closed: bool = False,
) -> None:
    """Counts (changed at the instants ``counts_at``) and the next timer of a record just saved.
    ``was_closed``: the version it replaces was closed already (the live counts need not
    remember every closed dossier to recognise one).

    Why the exceptions are caught: the record is saved and its outputs are on their way, so
    the event *has* been applied; dead-lettering it would say otherwise, and letting the
    exception stop the agent would make it a poison record. The loss is derived state only
    (a count or a timer of one dossier), rebuilt from the table at the next rebalance/restart.
    """
    try:
        for at in counts_at:
            stage.counts.touch(partition, record, at, now, was_closed)
            was_closed = is_closed(record)  # the next instant follows this very version
        if next_at is not None:
            stage.partition_timers.schedule(partition, next_at, record.id)
        elif timer:  # the clock's decision: nothing pending (e.g. the dossier is closed)
            stage.partition_timers.drop(partition, record.id)
    except Exception:
        log.exception("derived_state_failed", dossier_id=record.id, partition=partition)


def _alert_model(dossier_id: str, alert: Alert) -> Event:
    common: dict[str, Any] = {
        "event_id": alert_id(dossier_id, alert.key),
        "dossier_id": dossier_id,
        "producer_agency": alert.responsible,
        "occurred_at": alert.issued_at,
        "recorded_at": alert.issued_at,
    }
    if alert.kind == "warning":
        return DeadlineWarning.create(
            **common,
            scope=alert.scope,
            responsible_agency=alert.responsible,
            step=alert.step,
            due_at=alert.due_at,
            remaining_working_minutes=minutes_left(alert),
        )
    if alert.kind == "overdue":
        return DeadlineOverdue.create(
            **common,
            scope=alert.scope,
            responsible_agency=alert.responsible,
            step=alert.step,
            due_at=alert.due_at,
            overdue_working_minutes=minutes_overdue(alert),
        )
    if alert.kind == "apology":
        return ApologyIssued.create(
            **common,
            reason=alert.reason or "the result cannot be returned by the appointment",
            responsible_agency=alert.responsible,
            previous_appointment_at=alert.due_at,
            new_appointment_at=alert.new_appointment,
        )
    assert alert.handoff is not None and alert.sent_at is not None and alert.step is not None
    return HandoffEscalated.create(
        **common,
        handoff_id=alert.handoff[0],
        from_agency=alert.handoff[1],
        to_agency=alert.handoff[2],
        step=alert.step,
        sent_at=alert.sent_at,
        accept_due_at=alert.due_at,
    )


def _alert_value(stage: TrackerStage, dossier_id: str, alert: Alert) -> bytes:
    value = encode(_alert_model(dossier_id, alert))
    rejection = too_large(stage.DEADLINE_ALERTS, dossier_id.encode(), value, stage.MAX_RECORD_BYTES)
    if rejection is not None:
        raise rejection
    return value


def _procedure(stage: TrackerStage, code: str | None) -> Procedure | None:
    return stage.procedures.get(code or "")


def _alert_values(
    stage: TrackerStage, dossier_id: str, partition: int, timers: Timers
) -> list[bytes] | None:
    """The encoded alerts of a clock decision; None when they cannot be had.

    Why a failure is only logged: this dossier's record, not the event being applied, cannot
    give its alerts; blaming the event would dead-letter an innocent record, and raising
    would make every later event of the partition fail the same way. The dossier's timer is
    dropped until the partition is rebuilt (rebalance/restart), when it is tried again.
    """
    if timers.failed is not None:
        where = {"dossier_id": dossier_id, "partition": partition}
        log.error("deadline_alerts_failed", error=timers.failed, **where)
        return None
    try:
        return [_alert_value(stage, dossier_id, alert) for alert in timers.alerts]
    except Exception:
        log.exception("deadline_alerts_failed", dossier_id=dossier_id, partition=partition)
        return None


async def _emit_alerts(
    stage: TrackerStage, dossier_id: str, timers: Timers, values: list[bytes], batch: Batch
) -> None:
    """Send a dossier's due alerts; the batch awaits them before any changelog record."""
    key = dossier_id.encode()
    for alert, value in zip(timers.alerts, values, strict=True):
        batch.alerts.append(await stage.produce(stage.DEADLINE_ALERTS, key, value))
        stage.metrics.alert(alert.kind)
        log.info("deadline_alert", dossier_id=dossier_id, alert=alert.key)


def _first_fire(timers: Timers) -> tuple[datetime, ...]:
    """When the counts change with these alerts: "in progress overdue" starts at the overdue."""
    return (min(a.fire_at for a in timers.alerts),) if timers.alerts else ()


def _schedule(stage: TrackerStage, partition: int, record: Record) -> None:
    at = next_fire(record, stage.rules)
    if at is not None:
        stage.partition_timers.schedule(partition, at, record.id)


def _build(stage: TrackerStage, partition: int, now: datetime) -> None:
    """Rebuild this partition's timers and stats index from the (restored) table."""
    stage.partition_timers.rebuilding(partition)
    stage.counts.owned_since(partition)
    pending = stage.current.records if stage.current is not None else {}
    stored = (_restored(value) for value in store_values(stage.dossiers, partition))
    kept = (r for r in stored if r is not None and r.id not in pending)
    for record in itertools.chain(kept, list(pending.values())):
        if record is not None and record.partition == partition:
            try:
                _schedule(stage, partition, record)
                stage.counts.index(partition, record, rebuilt_at=now)
            except Exception:  # one odd record must not stop the partition (see _note_change)
                log.exception("derived_state_failed", dossier_id=record.id, partition=partition)
    stage.partition_timers.rebuilt(partition)


async def _fire_due(
    stage: TrackerStage, partition: int, now: datetime | None, batch: Batch
) -> None:
    """Emit every alert due by ``now`` in this partition and note them in the records.

    The sends are not awaited here: the batch awaits every alert of the batch together (one
    broker round trip, not one per alert) before any record noting them reaches the
    changelog, so a crash in between repeats alerts (same ids), never loses one.
    """
    fired: dict[str, tuple[Timers, list[bytes]]] = {}
    for dossier_id in stage.partition_timers.due(partition, now):
        record = _dossier(stage, dossier_id, partition, batch)
        if record is None or dossier_id in fired:
            continue
        due = tick(record, now, _procedure(stage, record.procedure), stage.rules)
        values = _alert_values(stage, dossier_id, partition, due)
        if values is None:
            continue
        if not due.alerts:
            _note_change(stage, partition, record, (), now, due.next_fire, timer=True)
            continue
        fired[dossier_id] = (due, values)
    for dossier_id, (due, values) in fired.items():
        await _emit_alerts(stage, dossier_id, due, values, batch)
    for dossier_id, (due, _values) in fired.items():
        batch.save(dossier_id, due.state)
        _note_change(stage, partition, due.state, _first_fire(due), now, due.next_fire, timer=True)


# Records taken from the stream at a time, and how long to wait for a batch to fill. A batch
# is applied record by record, in offset order, exactly as one record at a time would be; only
# the table writes and the alert acknowledgements are collected and done once per batch.
BATCH_MAX = 500
BATCH_WITHIN_S = 0.02


class Batch:
    """Sends and table writes collected while one batch of records is applied.

    Why: a changelog record per event (plus one ``tracker-progress`` record per event) and a
    broker round trip per alert round cost more than the domain work itself. Records are
    updated in the in-memory store at once (later records of the batch see them); their
    changelog records, and the progress offset of each partition, are sent once at
    :meth:`finish`, *after* every alert of the batch is acknowledged, so the changelog never
    notes an alert the broker has not got. :meth:`finish` then waits until every record of
    the batch is acknowledged; only after that does Faust acknowledge the batch's input
    records (and it flushes the producer before committing their offsets anyway), so a crash
    anywhere in between redelivers the batch onto the last saved records, and a failed send
    stops the process (see :func:`track_dossiers`) instead of being committed past.
    """

    def __init__(self, stage: TrackerStage) -> None:
        self.stage = stage
        # Records saved by the batch, written to the store and changelog at finish().
        self.records: dict[str, Record] = {}
        self.progress: dict[int, int] = {}
        self.alerts: list[asyncio.Future[Any]] = []
        self.sent: list[asyncio.Future[Any]] = []
        # The dossier and event of the record being applied, for a failure's dead letter.
        self.dossier_id: str | None = None
        self.event_id: str | None = None

    def save(self, key: str, value: Record) -> None:
        self.records[key] = value

    def applied_offset(self, partition: int) -> int:
        offset = self.progress.get(partition)
        return offset if offset is not None else _progress(self.stage, partition)

    async def finish(self) -> None:
        """Write the batch: alerts acknowledged first, then store + changelog of each record.

        Why the store is written only here, not at :meth:`save`: the RocksDB store survives a
        SIGKILL, so a record saved there before its alerts are acknowledged could note an
        alert the broker never got (the batch is redelivered onto that record and would not
        emit it again)."""
        if self.alerts:
            await asyncio.gather(*self.alerts)
        stage = self.stage
        for key, record in self.records.items():
            await self._write(stage.dossiers, record.partition, key, encode_state(record))
            stage.hot_records.put(key, record)
        for partition, offset in self.progress.items():
            if offset > _progress(stage, partition):
                await self._write(stage.tracker_progress, partition, str(partition), offset)
        if self.sent:
            await asyncio.gather(*self.sent)

    async def _write(self, table: Any, partition: int, key: str, value: Any) -> None:
        self.sent.append(await write_table(table, partition, key, value))


async def repair_dossier_event_tail_gaps(stage: TrackerStage) -> None:
    if stage.processing.locked():
        stage.gap_guard.busy()  # a batch (or the alert timer) is running: not idle, just busy
        return
    await stage.gap_guard.check_idle_partitions()


async def track_dossiers(stage: TrackerStage, stream: faust.StreamT) -> None:
    """Apply batches of records; one failing record is dead-lettered, a failing bus stops us.

    Per record: an exception that is not the bus's (see :func:`is_infrastructure`) rejects
    that record only (:func:`_reject`) and the batch goes on. Why that is safe: everything an
    event can fail on (decoding, the rules, building and size-checking its outputs, the
    changelog size) runs before its record is saved; after the save only sends remain, which
    fail only with the bus, and the derived counts and timers, which catch their own failures
    (:func:`_note_change`). So a rejected event leaves its dossier as it was and nothing of it
    reaches an output.

    Per batch: any other exception (a send failing after the producer's retries, the broker
    gone) stops the process before Faust acknowledges the batch (:func:`stop_process`). The
    batch's offsets stay uncommitted, so the restarted worker, or whichever worker the group
    gives the partitions to, reads them again; records and outputs the batch did get to the
    broker are recognised then (same source offset, see :mod:`lienthong.domain.tracking`) and
    re-emitted identically. Letting the exception escape instead would let Faust acknowledge
    the batch and restart the agent in-process, with the batch's records saved in memory but
    not in the changelog.
    """
    async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
        async with stage.processing:
            batch = stage.current = Batch(stage)
            try:
                for event in events:
                    message = event.message
                    if not await stage.gap_guard.admit(message):
                        continue
                    try:
                        await _handle(stage, event, batch)
                    except Exception as exc:
                        if is_infrastructure(exc):
                            raise
                        await _reject(stage, event, exc, batch)
                    # After the record's effects: a crash in between only makes the guard
                    # re-read it.
                    if message.offset > batch.applied_offset(message.partition):
                        batch.progress[message.partition] = message.offset
                await batch.finish()
            except Exception as exc:
                first = events[0].message if events else None
                stop_process(
                    log,
                    "tracker_batch_failed",
                    exc,
                    records=len(events),
                    partition=first.partition if first else None,
                    first_offset=first.offset if first else None,
                )
            finally:
                stage.current = None
                stage.gap_guard.busy()


async def _reject(stage: TrackerStage, event: Any, exc: Exception, batch: Batch) -> None:
    """Dead-letter the record whose handling raised ``exc``; the batch carries on."""
    message = event.message
    dossier_id = batch.dossier_id or (message.key or b"").decode("utf-8", "replace") or None
    where = {
        "dossier_id": dossier_id,
        "event_id": batch.event_id,
        "partition": message.partition,
        "offset": message.offset,
    }
    if isinstance(exc, Rejection):
        error = exc
        log.warning("event_rejected", error_class=exc.error_class, reason=exc.reason, **where)
    else:
        error = processing_failed(exc, **where)
        log.exception("record_processing_failed", error_type=type(exc).__name__, **where)
    await _dead_letter(stage, message, error, batch)


async def _dead_letter(
    stage: TrackerStage, message: Any, error: BaseException, batch: Batch
) -> None:
    message, error = dead_letter_parts(message, error, stage.MAX_RECORD_BYTES)
    batch.sent.append(await stage.dead_letter_publisher.publish(message, error))


async def _handle(stage: TrackerStage, event: Any, batch: Batch) -> None:
    """Apply one dossier-events record: decode, track, emit outputs (or dead-letter it).

    Order matters (see :func:`track_dossiers`): nothing is saved until every output is built
    and known to fit.
    """
    message = event.message
    partition = message.partition
    raw = event.value
    if not stage.clock.replay:  # the replay clock is the watermark whatever the backlog
        # Every record, also one that is dead-lettered: the last of a backlog puts the
        # partition back on the wall clock (see lienthong.streams.clock).
        highwater = stage.app.consumer.highwater(message.tp)
        stage.clock.consumed(partition, backlog_after(message.offset, highwater))
    batch.dossier_id = batch.event_id = None
    model = stage.validator.decode_or_reason(raw)
    if isinstance(model, DecodeError):
        await _dead_letter(stage, message, model, batch)
        return
    facts = facts_of(model)
    if facts is None:
        return
    batch.dossier_id, batch.event_id = facts.dossier_id, facts.event_id
    stage.counts.offset_seen(partition, message.offset)
    stage.clock.observe(partition, facts.at)
    if not stage.partition_timers.is_built(partition):
        _build(stage, partition, stage.clock.now(partition) or facts.at)

    await _fire_due(stage, partition, stage.clock.now(partition), batch)  # the clock first
    record = _dossier(stage, facts.dossier_id, partition, batch)
    now = stage.clock.now(partition) or facts.at
    procedure = _procedure(stage, facts.procedure or (record.procedure if record else None))
    decision = decide(
        record, facts, procedure, now, partition=partition, offset=message.offset, rules=stage.rules
    )
    if decision.rejection is not None:
        reason = decision.rejection.reason.value
        stage.metrics.event_rejected(model.EVENT_TYPE, reason)
        await _reject(stage, event, Rejection(reason, decision.rejection.detail), batch)
        return
    if decision.state is None:
        return  # a producer retry of an event already applied
    outputs = _outputs(stage, facts.dossier_id, decision, raw)
    if decision.redelivered:
        # Saved again too: the changelog record may have been lost with the outputs (a
        # batch whose sends failed, or an agent restarted in-process by a rebalance).
        batch.save(facts.dossier_id, decision.state)
        await _send(stage, outputs, batch)
        _note_change(
            stage, partition, decision.state, decision.counts_at, now, was_closed=is_closed(record)
        )
        return
    state, timers = decision.state, decision.timers
    assert timers is not None  # an applied event always has the clock's decision
    values = _alert_values(stage, facts.dossier_id, partition, timers)
    next_at = None  # without values: dropped until the partition is rebuilt (_alert_values)
    if values is not None:
        state, next_at = timers.state, timers.next_fire
    _check_record_size(stage, state, raw, outputs)
    batch.save(facts.dossier_id, state)
    await _send(stage, outputs, batch)
    stage.metrics.event_processed(model.EVENT_TYPE)
    stage.metrics.portal_record(message.timestamp)
    counts_at = decision.counts_at if values is not None else (facts.at,)
    _note_change(
        stage,
        partition,
        state,
        counts_at,
        now,
        next_at,
        timer=values is not None,
        was_closed=is_closed(record),
    )
    if values:
        # An event may itself make an alert due (e.g. a handoff sent long after its due).
        await _emit_alerts(stage, facts.dossier_id, timers, values, batch)


async def live_tick(stage: TrackerStage) -> None:
    """Live mode: fire alerts by the wall clock for partitions this worker owns.

    A failure here is the bus's (alert computations catch their own): the records noting
    the alerts are saved in memory, so carrying on could leave an alert noted but never
    acknowledged. Stopping the process restores the records from the changelog instead.
    """
    if stage.clock.replay:
        return
    async with stage.processing:
        try:
            for partition in stage.partition_timers.built():
                batch = stage.current = Batch(stage)
                await _fire_due(stage, partition, stage.clock.now(partition), batch)
                await batch.finish()
        except Exception as exc:
            stop_process(log, "tracker_alert_timer_failed", exc)
        finally:
            stage.current = None
        stage.metrics.clock_sweep()


async def _on_rebalance(stage: TrackerStage) -> None:
    stage.partition_timers.forget_all()
    stage.counts.reset()
    stage.hot_records.clear()


def slip_json(stage: TrackerStage, record: Record) -> dict[str, Any]:
    """The process control slip (Phiếu kiểm soát quá trình) of a tracked dossier."""
    now = stage.clock.now(record.partition)
    slip = record_slip(record, procedure=stage.procedures.get(record.procedure or ""), now=now)

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "dossier_id": slip.dossier_id,
        "status": slip.status,
        "appointment": iso(slip.appointment),
        "effective_due": iso(slip.effective_due),
        "supplement_requests": slip.supplement_requests,
        "outcome": slip.classification.outcome.value if slip.classification else None,
        "late": slip.late,
        "responsible_agencies": list(slip.responsible_agencies),
        "steps": [
            {
                "step": s.step,
                "agency": s.agency,
                "received_at": iso(s.received_at),
                "accepted_at": iso(s.accepted_at),
                "handed_on_at": iso(s.handed_on_at),
                "due": iso(s.due),
                "on_time": s.on_time,
            }
            for s in slip.steps
        ],
        "sent_alerts": sorted(record.sent_alerts),
    }


class DossierSlip(View):
    """The slip of one dossier held by this worker's partitions (404 if not held here).

    Registered per app by :meth:`TrackerStage.register` (a subclass carrying :attr:`stage`)."""

    stage: TrackerStage

    async def get(self, request: Request) -> Response:
        stage = self.stage
        record = _dossier(stage, request.query.get("id", ""), None)
        if record is None:
            return self.json({"error": "dossier not held by this worker"}, status=404)
        return self.json(slip_json(stage, record))
