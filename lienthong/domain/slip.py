"""Process control slip (Phiếu kiểm soát quá trình giải quyết hồ sơ) and apology record.

The slip follows a dossier from agency to agency and records, for every step, who had it,
when it arrived, when it was handed on, when it was due and whether that step was on time. It
is how a late dossier is attributed to the agency that made it late — the seed reports show
provinces publishing late counts without being able to say *where* the time was lost.

When a result will be late, the agency at fault issues an apology with a reason and a new
appointment (Phiếu xin lỗi và hẹn lại ngày trả kết quả); :func:`build_apology` drafts it from
the slip. Both builders are pure: the current time is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lienthong.domain.agencies import AgencyRegistry, load_agencies
from lienthong.domain.calendar import WorkingCalendar, default_calendar, ensure_aware
from lienthong.domain.classification import Classification, Outcome, classify
from lienthong.domain.deadlines import Pause, compute_appointment, extend_for_pauses
from lienthong.domain.lifecycle import (
    Channel,
    DossierEvent,
    DossierState,
    EventKind,
    fold,
)
from lienthong.domain.procedures import Procedure
from lienthong.domain.record import DossierRecord, pauses_of

__all__ = [
    "ApologyRecord",
    "ProcessControlSlip",
    "SlipStep",
    "build_apology",
    "build_slip",
    "record_slip",
    "slip_of",
    "supplement_pauses",
]

_ZERO = timedelta(0)


@dataclass(frozen=True)
class SlipStep:
    step: int
    agency: str
    agency_name: str
    task: str | None
    received_at: datetime  # handed to this agency (giao)
    accepted_at: datetime | None  # the agency confirmed receipt (nhận)
    handed_on_at: datetime | None  # the agency returned its result (chuyển tiếp / trả)
    due: datetime | None  # step deadline, pauses included
    outcome: str | None
    on_time: bool | None  # None: still open and not yet due
    late_by: timedelta  # working time past the step's due (as of hand-on or ``now``)


@dataclass(frozen=True)
class ProcessControlSlip:
    dossier_id: str
    procedure_code: str | None
    channel: Channel | None
    received_at: datetime | None
    receiving_agency: str | None
    appointment: datetime | None  # ngày hẹn trả on the receipt
    effective_due: datetime | None  # appointment pushed back by supplement pauses
    supplement_requests: int
    steps: tuple[SlipStep, ...]
    ended_at: datetime | None
    classification: Classification | None  # None while the dossier is still open
    late: bool  # finished late, or open and past its due at ``now``
    responsible_agencies: tuple[str, ...]  # who made it late (empty when not late)
    status: str


@dataclass(frozen=True)
class ApologyRecord:
    """Phiếu xin lỗi và hẹn lại ngày trả kết quả (draft)."""

    dossier_id: str
    issued_at: datetime
    reason: str
    responsible_agencies: tuple[str, ...]
    responsible_names: tuple[str, ...]
    original_appointment: datetime | None
    proposed_appointment: datetime


def supplement_pauses(events: Iterable[DossierEvent], now: datetime | None = None) -> list[Pause]:
    """Pauses from supplement_requested → supplement_received pairs; an open one runs to ``now``."""
    pauses: list[Pause] = []
    open_at: datetime | None = None
    for e in events:
        if e.kind is EventKind.SUPPLEMENT_REQUESTED and open_at is None:
            open_at = e.at
        elif e.kind is EventKind.SUPPLEMENT_RECEIVED and open_at is not None:
            pauses.append(Pause(open_at, e.at))
            open_at = None
    if open_at is not None and now is not None and now > open_at:
        pauses.append(Pause(open_at, now))
    return pauses


def _pauses_from(pauses: Sequence[Pause], start: datetime) -> list[Pause]:
    return [Pause(max(p.start, start), p.end) for p in pauses if p.end > start]


def build_slip(
    events: Sequence[DossierEvent],
    *,
    procedure: Procedure | None = None,
    agencies: AgencyRegistry | None = None,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
) -> ProcessControlSlip:
    """Build the slip from a dossier's events (in order); validates them via the lifecycle.

    Step due times come from the handoff event when it carries one, else from the procedure's
    step share counted from when the step was handed over. ``now`` decides whether open steps
    are already overdue; without it, open steps are never judged.
    """
    state: DossierState = fold(events)
    now_vn = ensure_aware(now, "now") if now is not None else None
    received = next((e for e in events if e.kind is EventKind.DOSSIER_RECEIVED), None)
    requests = [e.agency for e in events if e.kind is EventKind.SUPPLEMENT_REQUESTED]
    return slip_of(
        state,
        pauses=supplement_pauses(events, now_vn),
        receiving_agency=received.agency if received else None,
        supplement_agencies=requests,
        procedure=procedure,
        agencies=agencies,
        calendar=calendar,
        now=now_vn,
    )


def record_slip(
    record: DossierRecord,
    *,
    procedure: Procedure | None = None,
    agencies: AgencyRegistry | None = None,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
) -> ProcessControlSlip:
    """The slip of a tracker record: what :func:`build_slip` gives for the dossier's events,
    from what the record keeps of them (state, pauses, who received and who asked)."""
    now_vn = ensure_aware(now, "now") if now is not None else None
    received = record.state.received_at is not None
    return slip_of(
        record.state,
        pauses=pauses_of(record, now_vn),
        receiving_agency=record.receiving_agency if received else None,
        supplement_agencies=record.supplement_agencies,
        procedure=procedure,
        agencies=agencies,
        calendar=calendar,
        now=now_vn,
    )


def slip_of(
    state: DossierState,
    *,
    pauses: Sequence[Pause],
    receiving_agency: str | None,
    supplement_agencies: Sequence[str],
    procedure: Procedure | None = None,
    agencies: AgencyRegistry | None = None,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
) -> ProcessControlSlip:
    """The slip rules over a dossier's state: the supplement ``pauses`` (an open one up to
    ``now``), the agency that received it and the agency of each supplement request."""
    cal = calendar or default_calendar()
    reg = agencies or load_agencies()
    now_vn = ensure_aware(now, "now") if now is not None else None
    appointment = state.due
    if appointment is None and procedure is not None and state.received_at is not None:
        appointment = compute_appointment(
            state.received_at, procedure.duration, cutoff=procedure.cutoff, calendar=cal
        ).due
    effective_due = extend_for_pauses(appointment, pauses, cal) if appointment else None

    steps: list[SlipStep] = []
    for s in state.steps:
        due = s.due
        task = None
        if procedure is not None and any(p.order == s.step for p in procedure.steps):
            task = procedure.step(s.step).task
            if due is None:
                due = compute_appointment(
                    s.sent_at,
                    procedure.step_working_time(s.step, cal),
                    calendar=cal,
                ).due
        if due is not None:
            due = extend_for_pauses(due, _pauses_from(pauses, s.sent_at), cal)
        end = s.returned_at if s.returned_at is not None else now_vn
        on_time: bool | None = None
        late_by = _ZERO
        if due is not None and end is not None:
            if end > due:
                on_time = False
                late_by = cal.working_time_between(due, end)
            elif s.returned_at is not None:
                on_time = True
        agency = s.agency or "?"
        steps.append(
            SlipStep(
                step=s.step,
                agency=agency,
                agency_name=reg.name_of(agency),
                task=task,
                received_at=s.sent_at,
                accepted_at=s.accepted_at,
                handed_on_at=s.returned_at,
                due=due,
                outcome=s.outcome,
                on_time=on_time,
                late_by=late_by,
            )
        )

    classification: Classification | None = None
    if state.ended_at is not None and state.received_at is not None:
        legal_max = procedure.working_time(cal) if procedure is not None else None
        if appointment is not None or legal_max is not None:
            classification = classify(
                received=state.received_at,
                finished=state.ended_at,
                due=appointment,
                legal_max=legal_max,
                pauses=pauses,
                supplement_requests=state.supplement_requests,
                cutoff=procedure.cutoff if procedure and appointment is None else None,
                calendar=cal,
            )
    if classification is not None:
        late = classification.outcome is Outcome.LATE
    else:
        late = (
            state.supplement_requests > 1
            or (effective_due is not None and now_vn is not None and now_vn > effective_due)
            or any(st.on_time is False for st in steps)
        )

    responsible: list[str] = []
    if late:
        for st in steps:
            if st.on_time is False and st.agency not in responsible:
                responsible.append(st.agency)
        if state.supplement_requests > 1:
            for agency in supplement_agencies[1:]:
                if agency and agency not in responsible:
                    responsible.append(agency)
        if not responsible:
            # No step overran its share: the time was lost outside the handoffs (intake,
            # return, or an agency that still holds the dossier).
            holder = next((st.agency for st in reversed(steps) if st.handed_on_at is None), None)
            fallback = holder or receiving_agency
            if fallback:
                responsible.append(fallback)

    return ProcessControlSlip(
        dossier_id=state.dossier_id,
        procedure_code=procedure.code if procedure else None,
        channel=state.channel,
        received_at=state.received_at,
        receiving_agency=receiving_agency,
        appointment=appointment,
        effective_due=effective_due,
        supplement_requests=state.supplement_requests,
        steps=tuple(steps),
        ended_at=state.ended_at,
        classification=classification,
        late=late,
        responsible_agencies=tuple(responsible),
        status=state.status.value,
    )


def build_apology(
    slip: ProcessControlSlip,
    *,
    now: datetime,
    reason: str | None = None,
    extension: timedelta | None = None,
    procedure: Procedure | None = None,
    agencies: AgencyRegistry | None = None,
    calendar: WorkingCalendar | None = None,
) -> ApologyRecord:
    """Draft the apology and new appointment for a late or about-to-be-late dossier.

    The new appointment is counted from the later of ``now`` and the current due instant:
    ``extension`` if given, else the allotments of the procedure steps not yet handed on,
    else one working day.
    """
    cal = calendar or default_calendar()
    reg = agencies or load_agencies()
    now_vn = ensure_aware(now, "now")
    if slip.classification is not None and slip.classification.outcome is not Outcome.LATE:
        raise ValueError(f"dossier {slip.dossier_id} ended on time; no apology is due")

    responsible = slip.responsible_agencies
    if not responsible:
        holder = next((s.agency for s in reversed(slip.steps) if s.handed_on_at is None), None)
        responsible = tuple(a for a in (holder or slip.receiving_agency,) if a)

    if reason is None:
        late_steps = [s for s in slip.steps if s.on_time is False]
        if late_steps:
            parts = [
                f"step {s.step} at {s.agency_name} overran its due time by "
                f"{s.late_by.total_seconds() / 3600:g} working hours"
                for s in late_steps
            ]
            reason = "; ".join(parts)
        elif slip.supplement_requests > 1:
            reason = f"{slip.supplement_requests} supplement requests were needed"
        else:
            reason = "the result cannot be returned by the appointment"

    if extension is None:
        extension = _ZERO
        if procedure is not None:
            done = {s.step for s in slip.steps if s.handed_on_at is not None}
            extension = sum(
                (
                    procedure.step_working_time(s.order, cal)
                    for s in procedure.steps
                    if s.order not in done
                ),
                _ZERO,
            )
        if extension <= _ZERO:
            extension = cal.day_length
    base = slip.effective_due or slip.appointment
    start = max(now_vn, base) if base is not None else now_vn
    proposed = cal.add_working_time(start, extension)
    return ApologyRecord(
        dossier_id=slip.dossier_id,
        issued_at=now_vn,
        reason=reason,
        responsible_agencies=tuple(responsible),
        responsible_names=tuple(reg.name_of(a) for a in responsible),
        original_appointment=slip.appointment,
        proposed_appointment=proposed,
    )
