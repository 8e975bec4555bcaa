"""Applying one event to a dossier's tracker record (the aggregate is :mod:`.record`).

Ordering guarantee relied on: records are keyed by dossier id, so all events of one dossier
land in one partition and are applied in offset order. An agency that publishes a dossier's
events out of causal order (e.g. ``handoff_accepted`` before ``handoff_sent``) gets the early
one rejected as an illegal transition (dead letter with the reason); it can be replayed with
``lienthong dlq replay`` once the missing event is in. An event whose ``occurred_at`` is older
than the newest applied event of the dossier is rejected as stale: it cannot be placed in a
history that has already moved on without rewriting it (lateness is history).

Instants are kept in Vietnam time (Asia/Ho_Chi_Minh) whatever offset the event carried, so a
record decoded from the changelog renders its instants exactly as the record that was saved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from enum import StrEnum
from typing import Any, Protocol

from lienthong.domain.calendar import VN_TZ
from lienthong.domain.classification import classify
from lienthong.domain.deadlines import Duration, compute_appointment
from lienthong.domain.lifecycle import (
    Channel,
    DossierEvent,
    DossierState,
    DossierStatus,
    EventKind,
    IllegalTransition,
    LifecycleError,
    apply,
)
from lienthong.domain.procedures import Procedure
from lienthong.domain.record import (
    ENTRIES_KEPT,
    NOTES,
    DossierRecord,
    Entry,
    Handoff,
    PauseSpan,
    Source,
    effective_due,
    pauses_of,
)

__all__ = [
    "Applied",
    "Duplicate",
    "Facts",
    "Rejected",
    "RejectReason",
    "Record",
    "effective_due",
    "new_record",
    "pauses_of",
    "portal_view",
    "state_of",
    "track",
    "track_for",
    "track_in",
]

Record = DossierRecord


class RejectReason(StrEnum):
    UNKNOWN_DOSSIER = "UnknownDossier"
    ILLEGAL_TRANSITION = "IllegalTransition"
    STALE_EVENT = "StaleEvent"


@dataclass(frozen=True)
class Facts:
    """What the tracker needs from one wire event (the adapter fills it from the model)."""

    event_id: str
    kind: EventKind
    dossier_id: str
    at: datetime
    agency: str
    to_agency: str | None = None
    step: int | None = None
    channel: Channel | None = None
    due: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    procedure: str | None = None
    handoff_id: str | None = None
    return_method: str | None = None  # "post" on result_returned by post


@dataclass(frozen=True)
class Applied:
    record: Record
    history_index: int


@dataclass(frozen=True)
class Duplicate:
    """Event id already applied; ``same_record`` = the same source record delivered again
    (crash redelivery: outputs must be re-emitted), else a producer retry (nothing to do)."""

    history_index: int
    same_record: bool


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str


_NOTES = NOTES  # the console's name for it


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _vn(value: datetime | None) -> datetime | None:
    return value.astimezone(VN_TZ) if value is not None else None


def state_of(record: DossierRecord) -> DossierState:
    """The lifecycle state held by a tracker record."""
    return record.state


def new_record(dossier_id: str, partition: int) -> DossierRecord:
    return DossierRecord.new(dossier_id, partition)


def _appointment(
    facts: Facts, procedure_duration: Duration | None, cutoff: time | None
) -> datetime | None:
    if facts.due is not None:
        return facts.due
    if procedure_duration is None:
        return None
    return compute_appointment(facts.at, procedure_duration, cutoff=cutoff).due


class _Catalogue(Protocol):
    def get(self, code: str) -> Procedure | None: ...


def track_in(
    catalogue: _Catalogue,
    record: DossierRecord | None,
    facts: Facts,
    *,
    partition: int,
    offset: int,
) -> Applied | Duplicate | Rejected:
    """:func:`track` with the dossier's procedure looked up in ``catalogue``: the event's own
    code (a receipt) or the one on the record. Its duration checks the appointment, its
    cut-off time decides the receipt's day; an unknown code checks neither."""
    code = facts.procedure or (record.procedure if record is not None else None) or ""
    return track_for(catalogue.get(code), record, facts, partition=partition, offset=offset)


def track_for(
    procedure: Procedure | None,
    record: DossierRecord | None,
    facts: Facts,
    *,
    partition: int,
    offset: int,
) -> Applied | Duplicate | Rejected:
    """:func:`track` under the dossier's ``procedure`` (None: unknown, checks nothing)."""
    return track(
        record,
        facts,
        partition=partition,
        offset=offset,
        procedure_duration=procedure.duration if procedure else None,
        cutoff=procedure.cutoff if procedure else None,
    )


def _seen(record: DossierRecord, facts: Facts, partition: int, offset: int) -> Duplicate | None:
    """Already applied? The event id among the entries held (same source record: a crash
    redelivery, else a producer retry), or a source record at or below the highest offset
    applied from its partition (a redelivery older than the entries held)."""
    entry = record.find(facts.event_id)
    if entry is not None:
        same = (entry.source_partition, entry.source_offset) == (partition, offset)
        return Duplicate(history_index=entry.index, same_record=same)
    applied = record.applied_offset(partition)
    if applied is not None and offset <= applied:
        return Duplicate(history_index=-1, same_record=True)
    return None


def track(
    record: DossierRecord | None,
    facts: Facts,
    *,
    partition: int,
    offset: int,
    procedure_duration: Duration | None = None,
    cutoff: time | None = None,
) -> Applied | Duplicate | Rejected:
    """Apply one event to a dossier's record (pure: returns a new record, never mutates)."""
    if record is not None:
        seen = _seen(record, facts, partition, offset)
        if seen is not None:
            return seen
    if record is None:
        if facts.kind not in (EventKind.DOSSIER_SUBMITTED, EventKind.DOSSIER_RECEIVED):
            if facts.kind is not EventKind.INTAKE_REFUSED:
                return Rejected(
                    RejectReason.UNKNOWN_DOSSIER,
                    f"dossier {facts.dossier_id}: {facts.kind.value} for a dossier the bus "
                    "has never seen received or submitted",
                )
        record = new_record(facts.dossier_id, partition)
    at = facts.at.astimezone(VN_TZ)
    if record.last_at is not None and at < record.last_at:
        return Rejected(
            RejectReason.STALE_EVENT,
            f"dossier {facts.dossier_id}: {facts.kind.value} at {facts.at.isoformat()} is older "
            f"than the dossier's newest applied event ({record.last_at.isoformat()})",
        )
    kind = facts.kind
    due = None
    if kind is EventKind.DOSSIER_RECEIVED:
        due = _vn(_appointment(facts, procedure_duration, cutoff))
    elif kind is EventKind.HANDOFF_SENT:
        due = _vn(facts.due)
    domain_event = DossierEvent(
        kind=kind,
        dossier_id=facts.dossier_id,
        at=at,
        agency=facts.agency,
        to_agency=facts.to_agency,
        step=facts.step,
        channel=facts.channel,
        due=due,
        outcome=facts.outcome,
        reason=facts.reason,
    )
    try:
        state = apply(record.state, domain_event)
    except (IllegalTransition, LifecycleError) as exc:
        return Rejected(RejectReason.ILLEGAL_TRANSITION, str(exc))

    changes: dict[str, Any] = {"state": state, "last_at": at}
    if record.first_at is None:
        changes["first_at"] = at
    if kind in (EventKind.DOSSIER_RECEIVED, EventKind.DOSSIER_SUBMITTED):
        changes["procedure"] = facts.procedure or record.procedure
        changes["receiving_agency"] = facts.agency
        changes["holder"] = facts.agency
    if kind is EventKind.SUPPLEMENT_REQUESTED:
        changes["pauses"] = (*record.pauses, PauseSpan(at, None))
        changes["supplement_agencies"] = (*record.supplement_agencies, facts.agency)
    elif kind is EventKind.SUPPLEMENT_RECEIVED and record.pauses:
        last = record.pauses[-1]
        changes["pauses"] = (*record.pauses[:-1], PauseSpan(last.start, at))
    if kind is EventKind.HANDOFF_SENT and facts.step is not None:
        handoff = Handoff(facts.step, facts.handoff_id, facts.agency, facts.to_agency)
        kept = tuple(h for h in record.handoffs if h.step != facts.step)
        changes["handoffs"] = tuple(sorted((*kept, handoff), key=lambda h: h.step))
        changes["holder"] = facts.to_agency
    elif kind is EventKind.HANDOFF_RETURNED:
        changes["holder"] = facts.to_agency
    if kind is EventKind.RESULT_RETURNED and facts.return_method == "post":
        changes["returned_by_post_at"] = at
    if kind is EventKind.DOSSIER_WITHDRAWN:
        changes["withdrawn_at"] = at
    if kind is EventKind.INTAKE_REFUSED:
        changes["refused_at"] = at
    new = replace(record, **changes)
    if state.ended_at is not None and record.state.ended_at is None:
        new = replace(new, outcome=_outcome(new, state, procedure_duration))

    previous = record.entries[-1] if record.entries else None
    returned_at = at if kind is EventKind.RESULT_RETURNED else None
    if returned_at is None and previous is not None:
        returned_at = previous.returned_at
    channel = int(facts.channel) if facts.channel is not None else None
    if channel is None and previous is not None:
        channel = previous.channel
    received_at = state.received_at if kind is EventKind.DOSSIER_RECEIVED else None
    if received_at is None and previous is not None:
        received_at = previous.received_at
    entry = Entry(
        index=record.applied,
        event_id=facts.event_id,
        kind=kind,
        agency=facts.agency,
        status=state.portal_status,
        at=at,
        reason=facts.reason or None,
        due=effective_due(new),
        finished_at=state.finished_at,
        returned_at=returned_at,
        received_at=received_at,
        channel=channel,
        source_partition=partition,
        source_offset=offset,
    )
    sources = tuple(s for s in record.sources if s.partition != partition)
    new = replace(
        new,
        applied=record.applied + 1,
        entries=(*record.entries, entry)[-ENTRIES_KEPT:],
        sources=tuple(sorted((*sources, Source(partition, offset)))),
    )
    return Applied(record=new, history_index=entry.index)


def _outcome(
    record: DossierRecord, state: DossierState, procedure_duration: Duration | None
) -> str | None:
    """early / on_time / late for an ended dossier (refused at intake is not classified)."""
    if state.status is DossierStatus.REFUSED or state.received_at is None:
        return None
    assert state.ended_at is not None
    legal_max = procedure_duration.working_time() if procedure_duration else None
    if state.due is None and legal_max is None:
        return None
    result = classify(
        received=state.received_at,
        finished=state.ended_at,
        due=state.due,
        legal_max=legal_max,
        pauses=pauses_of(record, state.ended_at),
        supplement_requests=state.supplement_requests,
    )
    return result.outcome.value


def progress_of(record: DossierRecord, index: int) -> tuple[Entry, ...]:
    """The held entries up to and including ``index`` (the portal's progress log of it)."""
    if not record.entries:
        return ()
    return record.entries[: max(0, index - record.entries[0].index + 1)]


def portal_view(record: DossierRecord, index: int, *, progress: bool = True) -> dict[str, Any]:
    """The portal record for applied event ``index`` (which must still be held): every field
    is the entry's own or the record's fixed ones, so a re-emission after a crash carries
    exactly the content of the first emission, whatever the dossier did since (a dossier
    submitted online is received later: the entry keeps the intake date and channel as they
    were then). ``progress=False`` leaves out QuaTrinhXuLy, which the caller builds from
    :func:`progress_of`."""
    entry = record.entry(index)
    if entry is None:
        raise KeyError(f"dossier {record.id}: event {index} is no longer held in its record")
    lines = progress_of(record, index) if progress else ()
    return {
        "MaHoSo": record.id,
        "MaTTHC": record.procedure or "unknown",
        "NgayTiepNhan": _iso(entry.received_at or record.first_at),
        "NgayHenTra": _iso(entry.due),
        "TrangThaiHoSo": entry.status,
        "KenhThucHien": entry.channel or 2,
        "NgayKetThucXuLy": _iso(entry.finished_at),
        "NgayTra": _iso(entry.returned_at),
        "DonViXuLy": entry.agency,
        "QuaTrinhXuLy": [
            {
                "NguoiXuLy": e.agency,
                "DonViXuLy": e.agency,
                "ThoiDiemXuLy": e.at.isoformat(),
                "NoiDungXuLy": e.note,
                "TrangThaiHoSo": e.status,
            }
            for e in lines
        ],
        "event_id": entry.event_id,
        "at": entry.at.isoformat(),
    }
