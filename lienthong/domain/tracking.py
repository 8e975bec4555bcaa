"""Per-dossier aggregate the stream tracker keeps: lifecycle state, dedupe and portal history.

Why a plain JSON-able dict and not a dataclass: the record is a Faust table value, written to
a changelog topic and restored from it after a crash or a rebalance. One record per dossier
holds everything that must change together (state, the event ids already applied, the portal
progress log, the alerts already emitted), so a single changelog write keeps them consistent.

Ordering guarantee relied on: records are keyed by dossier id, so all events of one dossier
land in one partition and are applied in offset order. An agency that publishes a dossier's
events out of causal order (e.g. ``handoff_accepted`` before ``handoff_sent``) gets the early
one rejected as an illegal transition (dead letter with the reason); it can be replayed with
``lienthong dlq replay`` once the missing event is in. An event whose ``occurred_at`` is older
than the newest applied event of the dossier is rejected as stale: it cannot be placed in a
history that has already moved on without rewriting it (lateness is history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

from lienthong.domain.classification import classify
from lienthong.domain.deadlines import Duration, Pause, compute_appointment, extend_for_pauses
from lienthong.domain.lifecycle import (
    Channel,
    DossierEvent,
    DossierState,
    DossierStatus,
    EventKind,
    IllegalTransition,
    LifecycleError,
    StepState,
    StepStatus,
    apply,
)
from lienthong.domain.procedures import Procedure

__all__ = [
    "Applied",
    "Duplicate",
    "Facts",
    "Rejected",
    "RejectReason",
    "Record",
    "effective_due",
    "events_of",
    "new_record",
    "pauses_of",
    "portal_view",
    "state_of",
    "track",
    "track_for",
    "track_in",
]

Record = dict[str, Any]


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


_NOTES: dict[EventKind, str] = {
    EventKind.DOSSIER_SUBMITTED: "Nộp hồ sơ trực tuyến",
    EventKind.DOSSIER_RECEIVED: "Tiếp nhận hồ sơ",
    EventKind.INTAKE_REFUSED: "Từ chối tiếp nhận",
    EventKind.HANDOFF_SENT: "Chuyển xử lý",
    EventKind.HANDOFF_ACCEPTED: "Nhận hồ sơ chuyển đến",
    EventKind.HANDOFF_RETURNED: "Trả kết quả bước xử lý",
    EventKind.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    EventKind.SUPPLEMENT_RECEIVED: "Nhận hồ sơ bổ sung",
    EventKind.FEE_REQUESTED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    EventKind.FEE_PAID: "Đã thực hiện nghĩa vụ tài chính",
    EventKind.DOSSIER_WITHDRAWN: "Công dân rút hồ sơ",
    EventKind.PROCESSING_STOPPED: "Dừng xử lý",
    EventKind.PROCESSING_FINISHED: "Đã xử lý xong",
    EventKind.RESULT_RETURNED: "Đã trả kết quả",
}


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _state_dict(state: DossierState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "channel": int(state.channel) if state.channel is not None else None,
        "resume": state.resume_status.value if state.resume_status else None,
        "received_at": _ts(state.received_at),
        "due": _ts(state.due),
        "supplements": state.supplement_requests,
        "steps": [
            [
                s.step,
                s.agency,
                s.status.value,
                _ts(s.sent_at),
                _ts(s.accepted_at),
                _ts(s.returned_at),
                _ts(s.due),
                s.outcome,
            ]
            for s in state.steps
        ],
        "finished_at": _ts(state.finished_at),
        "ended_at": _ts(state.ended_at),
    }


# Parsed states by identity of the record's ``state`` dict (kept alive here, so the id cannot
# be reused while the entry exists). A record is never changed in place (track() builds a new
# one), so the same dict object always means the same state: parsing it again for the alert
# scheduler, the next event and the counts was a visible share of the per-event work.
_STATES: dict[int, tuple[dict[str, Any], DossierState]] = {}
_MEMO_LIMIT = 50_000


def _remember(s: dict[str, Any], state: DossierState) -> None:
    if len(_STATES) >= _MEMO_LIMIT:
        _STATES.clear()
    _STATES[id(s)] = (s, state)


def state_of(record: Record) -> DossierState:
    """The lifecycle state stored in a tracker record."""
    s = record["state"]
    hit = _STATES.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    state = _parse_state(record["id"], s)
    _remember(s, state)
    return state


def _parse_state(dossier_id: str, s: dict[str, Any]) -> DossierState:
    return DossierState(
        dossier_id=dossier_id,
        status=DossierStatus(s["status"]),
        channel=Channel(s["channel"]) if s["channel"] is not None else None,
        resume_status=DossierStatus(s["resume"]) if s["resume"] else None,
        received_at=_dt(s["received_at"]),
        due=_dt(s["due"]),
        supplement_requests=s["supplements"],
        steps=tuple(
            StepState(
                step=st[0],
                agency=st[1],
                status=StepStatus(st[2]),
                sent_at=_dt(st[3]),  # type: ignore[arg-type]
                accepted_at=_dt(st[4]),
                returned_at=_dt(st[5]),
                due=_dt(st[6]),
                outcome=st[7],
            )
            for st in s["steps"]
        ),
        finished_at=_dt(s["finished_at"]),
        ended_at=_dt(s["ended_at"]),
    )


def pauses_of(record: Record, until: datetime | None = None) -> list[Pause]:
    """Supplement pauses; an open one runs to ``until`` (or is left out without it)."""
    result = []
    for start, end in record["pauses"]:
        s = datetime.fromisoformat(start)
        if end is not None:
            result.append(Pause(s, datetime.fromisoformat(end)))
        elif until is not None and until > s:
            result.append(Pause(s, until))
    return result


def effective_due(record: Record, until: datetime | None = None) -> datetime | None:
    """The appointment pushed back by the supplement pauses (closed ones, or up to ``until``)."""
    due = record["state"]["due"]
    if due is None:
        return None
    return extend_for_pauses(datetime.fromisoformat(due), pauses_of(record, until))


def new_record(dossier_id: str, partition: int) -> Record:
    return {
        "id": dossier_id,
        "partition": partition,
        "state": _state_dict(DossierState(dossier_id=dossier_id)),
        "procedure": None,
        "receiving_agency": None,
        "last_at": None,
        "seen": {},
        "history": [],
        "pauses": [],
        "handoffs": {},
        "sent_alerts": [],
        "returned_by_post_at": None,
        "withdrawn_at": None,
        "refused_at": None,
        "holder": None,
        "outcome": None,
    }


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
    catalogue: _Catalogue, record: Record | None, facts: Facts, *, partition: int, offset: int
) -> Applied | Duplicate | Rejected:
    """:func:`track` with the dossier's procedure looked up in ``catalogue``: the event's own
    code (a receipt) or the one on the record. Its duration checks the appointment, its
    cut-off time decides the receipt's day; an unknown code checks neither."""
    proc = catalogue.get(facts.procedure or (record or {}).get("procedure") or "")
    return track_for(proc, record, facts, partition=partition, offset=offset)


def track_for(
    procedure: Procedure | None,
    record: Record | None,
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


def track(
    record: Record | None,
    facts: Facts,
    *,
    partition: int,
    offset: int,
    procedure_duration: Duration | None = None,
    cutoff: time | None = None,
) -> Applied | Duplicate | Rejected:
    """Apply one event to a dossier's record (pure: returns a new record, never mutates)."""
    if record is not None:
        seen = record["seen"].get(facts.event_id)
        if seen is not None:
            return Duplicate(history_index=seen[1], same_record=seen[0] == [partition, offset])
    if record is None:
        if facts.kind not in (EventKind.DOSSIER_SUBMITTED, EventKind.DOSSIER_RECEIVED):
            if facts.kind is not EventKind.INTAKE_REFUSED:
                return Rejected(
                    RejectReason.UNKNOWN_DOSSIER,
                    f"dossier {facts.dossier_id}: {facts.kind.value} for a dossier the bus "
                    "has never seen received or submitted",
                )
        record = new_record(facts.dossier_id, partition)
    last_at = _dt(record["last_at"])
    if last_at is not None and facts.at < last_at:
        return Rejected(
            RejectReason.STALE_EVENT,
            f"dossier {facts.dossier_id}: {facts.kind.value} at {facts.at.isoformat()} is older "
            f"than the dossier's newest applied event ({last_at.isoformat()})",
        )
    due = None
    if facts.kind is EventKind.DOSSIER_RECEIVED:
        due = _appointment(facts, procedure_duration, cutoff)
    elif facts.kind is EventKind.HANDOFF_SENT:
        due = facts.due
    domain_event = DossierEvent(
        kind=facts.kind,
        dossier_id=facts.dossier_id,
        at=facts.at,
        agency=facts.agency,
        to_agency=facts.to_agency,
        step=facts.step,
        channel=facts.channel,
        due=due,
        outcome=facts.outcome,
        reason=facts.reason,
    )
    try:
        state = apply(state_of(record), domain_event)
    except (IllegalTransition, LifecycleError) as exc:
        return Rejected(RejectReason.ILLEGAL_TRANSITION, str(exc))

    new = dict(record)
    new["state"] = _state_dict(state)
    _remember(new["state"], state)
    new["last_at"] = facts.at.isoformat()
    kind = facts.kind
    if kind in (EventKind.DOSSIER_RECEIVED, EventKind.DOSSIER_SUBMITTED):
        new["procedure"] = facts.procedure or record["procedure"]
        new["receiving_agency"] = facts.agency
        new["holder"] = facts.agency
    if kind is EventKind.SUPPLEMENT_REQUESTED:
        new["pauses"] = [*record["pauses"], [facts.at.isoformat(), None]]
    elif kind is EventKind.SUPPLEMENT_RECEIVED and record["pauses"]:
        start, _ = record["pauses"][-1]
        new["pauses"] = [*record["pauses"][:-1], [start, facts.at.isoformat()]]
    if kind is EventKind.HANDOFF_SENT and facts.step is not None:
        handoffs = dict(record["handoffs"])
        handoffs[str(facts.step)] = [facts.handoff_id, facts.agency, facts.to_agency]
        new["handoffs"] = handoffs
        new["holder"] = facts.to_agency
    elif kind is EventKind.HANDOFF_RETURNED:
        new["holder"] = facts.to_agency
    if kind is EventKind.RESULT_RETURNED and facts.return_method == "post":
        new["returned_by_post_at"] = facts.at.isoformat()
    if kind is EventKind.DOSSIER_WITHDRAWN:
        new["withdrawn_at"] = facts.at.isoformat()
    if kind is EventKind.INTAKE_REFUSED:
        new["refused_at"] = facts.at.isoformat()

    if state.ended_at is not None and record["state"]["ended_at"] is None:
        new["outcome"] = _outcome(new, state, procedure_duration)

    entry = {
        "event": [
            kind.value,
            facts.agency,
            facts.to_agency,
            facts.step,
            _ts(due),
            facts.outcome,
            int(facts.channel) if facts.channel is not None else None,
        ],
        "event_id": facts.event_id,
        "status": state.portal_status,
        "at": facts.at.isoformat(),
        "agency": facts.agency,
        "note": _NOTES[kind] + (f": {facts.reason}" if facts.reason else ""),
        "due": _ts(effective_due(new)),
        "finished_at": _ts(state.finished_at),
        "returned_at": facts.at.isoformat() if kind is EventKind.RESULT_RETURNED else None,
    }
    if entry["returned_at"] is None and record["history"]:
        entry["returned_at"] = record["history"][-1]["returned_at"]
    new["history"] = [*record["history"], entry]
    index = len(new["history"]) - 1
    new["seen"] = {**record["seen"], facts.event_id: [[partition, offset], index]}
    return Applied(record=new, history_index=index)


def _outcome(
    record: Record, state: DossierState, procedure_duration: Duration | None
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


def events_of(record: Record) -> list[DossierEvent]:
    """The dossier's applied events, rebuilt from the history (for the slip and apology)."""
    events = []
    for entry in record["history"]:
        kind, agency, to_agency, step, due, outcome, channel = entry["event"]
        events.append(
            DossierEvent(
                kind=EventKind(kind),
                dossier_id=record["id"],
                at=datetime.fromisoformat(entry["at"]),
                agency=agency,
                to_agency=to_agency,
                step=step,
                channel=Channel(channel) if channel is not None else None,
                due=_dt(due),
                outcome=outcome,
            )
        )
    return events


def working_minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


@dataclass
class PortalView:
    """Fields of one portal status record (names as the portal spells them)."""

    fields: dict[str, Any] = field(default_factory=dict)


def portal_view(record: Record, index: int, *, progress: bool = True) -> dict[str, Any]:
    """The portal record for history entry ``index``: deterministic, so a re-emission after a
    crash carries exactly the same content as the first emission. ``progress=False`` leaves
    out QuaTrinhXuLy (the history entries up to ``index``) for a caller that builds its lines
    from ``record["history"]`` itself."""
    history = record["history"]
    entry = history[index]
    state = record["state"]
    received, channel = state["received_at"], state["channel"]
    if index != len(history) - 1:
        # Re-emission of an earlier event: intake date and channel as they were then (a
        # dossier submitted online is received later), not as the record has them now.
        received = channel = None
        for e in history[: index + 1]:
            if e["event"][0] == "dossier_received":
                received = e["at"]
            if e["event"][6] is not None:
                channel = e["event"][6]
    return {
        "MaHoSo": record["id"],
        "MaTTHC": record["procedure"] or "unknown",
        "NgayTiepNhan": received or history[0]["at"],
        "NgayHenTra": entry["due"],
        "TrangThaiHoSo": entry["status"],
        "KenhThucHien": channel or 2,
        "NgayKetThucXuLy": entry["finished_at"],
        "NgayTra": entry["returned_at"],
        "DonViXuLy": entry["agency"],
        "QuaTrinhXuLy": [
            {
                "NguoiXuLy": e["agency"],
                "DonViXuLy": e["agency"],
                "ThoiDiemXuLy": e["at"],
                "NoiDungXuLy": e["note"],
                "TrangThaiHoSo": e["status"],
            }
            for e in history[: index + 1]
        ]
        if progress
        else [],
        "event_id": entry["event_id"],
        "at": entry["at"],
    }
