"""Which deadline alerts a dossier has pending, and when each fires (pure scheduling rules).

Alerts per dossier: a warning ``lead`` working time before the effective due instant, an
overdue notice at it and, with the overdue notice, an apology (Phiếu xin lỗi và hẹn lại) naming
the agency holding the dossier and a proposed new appointment. Per handoff step: a warning and
an overdue notice on the step's due instant, and an escalation when the receiving agency has
not accepted within ``accept_within`` working time. Everything is computed from the tracker
record, so it moves when a supplement pause shifts the due instant and disappears when the
dossier or step finishes first.

"Exactly once": an alert is identified by its key (``dossier:overdue``, ``step:2:warning``…),
the record remembers the keys already emitted, and the event id is uuid5 of dossier and key,
so a re-emission after a crash (emitted, then killed before the record was saved) carries the
same id and Kafka key and is recognisable as the same alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lienthong.domain.calendar import VN_TZ, WorkingCalendar, default_calendar
from lienthong.domain.deadlines import Pause, extend_for_pauses
from lienthong.domain.lifecycle import DossierEvent, DossierStatus, StepStatus
from lienthong.domain.procedures import Procedure
from lienthong.domain.record import DossierRecord, effective_due, pauses_of
from lienthong.domain.slip import ProcessControlSlip, build_apology, build_slip, record_slip

__all__ = [
    "Alert",
    "AlertRules",
    "alert_id",
    "apology_for",
    "apology_terms",
    "due_alerts",
    "next_fire",
    "pending_alerts",
    "subtract_working_time",
]

ALERT_NAMESPACE = uuid.UUID("4f6a3c0e-6b1d-5b8e-9a57-6c69656e7468")

_OPEN = (DossierStatus.RECEIVED, DossierStatus.PROCESSING, DossierStatus.AWAITING_FEE)


@dataclass(frozen=True)
class AlertRules:
    warning_lead: timedelta = timedelta(hours=8)  # one working day
    accept_within: timedelta = timedelta(hours=4)  # working time to accept a handoff
    apology_extension: timedelta | None = None  # default: steps left, else one working day


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str  # warning | overdue | apology | escalation
    fire_at: datetime
    scope: str  # dossier | step
    due_at: datetime
    responsible: str
    step: int | None = None
    handoff: tuple[str, str, str] | None = None  # handoff id, from, to
    sent_at: datetime | None = None
    new_appointment: datetime | None = None
    reason: str | None = None
    # When the deadline became known (receipt, or the step's handover): a warning or overdue
    # notice can only be issued from then on, which matters when its instant is already past.
    since: datetime | None = None

    @property
    def issued_at(self) -> datetime:
        """When the alert is really issued: its instant, or when the deadline became known."""
        if self.since is not None and self.since > self.fire_at:
            return self.since
        return self.fire_at


def minutes_left(alert: Alert, calendar: WorkingCalendar | None = None) -> int:
    """Working minutes from a warning's issue to the due instant: the configured lead, or less
    when the deadline became known inside the lead (a 4-hour procedure received at 14:00)."""
    cal = calendar or default_calendar()
    return int(cal.working_time_between(alert.issued_at, alert.due_at).total_seconds() // 60)


def minutes_overdue(alert: Alert, calendar: WorkingCalendar | None = None) -> int:
    """Working minutes past due when an overdue notice is issued: zero, unless the step was
    handed over after its own due instant had already passed."""
    cal = calendar or default_calendar()
    return int(cal.working_time_between(alert.due_at, alert.issued_at).total_seconds() // 60)


def alert_id(dossier_id: str, key: str) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{dossier_id}/{key}")


def subtract_working_time(
    end: datetime, duration: timedelta, calendar: WorkingCalendar | None = None
) -> datetime:
    """The latest instant from which ``duration`` of working time runs out at ``end``.

    Walks sessions backwards (O(days spanned)); the mirror of ``add_working_time``: when the
    time is used up exactly at a session's start, that start is the answer.
    """
    cal = calendar or default_calendar()
    if duration <= timedelta(0):
        return end
    remaining = duration
    t = end.astimezone(VN_TZ)
    day = t.date()
    for _ in range(3660):
        if cal.is_working_day(day):
            for start, stop in reversed(cal.hours.sessions):
                s = datetime.combine(day, start, VN_TZ)
                e = min(datetime.combine(day, stop, VN_TZ), t)
                if e <= s:
                    continue
                available = e - s
                if remaining <= available:
                    return e - remaining
                remaining -= available
        day -= timedelta(days=1)
    raise RuntimeError(f"no working time found in ten years before {end.isoformat()}")


def _candidates(record: DossierRecord, rules: AlertRules, cal: WorkingCalendar) -> list[Alert]:
    sent = record.sent_alerts
    out = _all_candidates(record, rules, cal)
    return [a for a in out if a.key not in sent] if sent else out


def _all_candidates(record: DossierRecord, rules: AlertRules, cal: WorkingCalendar) -> list[Alert]:
    state = record.state
    out: list[Alert] = []
    if state.status not in _OPEN:
        return out  # finished, ended, or paused for a supplement: nothing pending
    due = effective_due(record)
    holder = record.holder or record.receiving_agency
    if due is not None and holder:
        warn_at = subtract_working_time(due, rules.warning_lead, cal)
        known = state.received_at
        out.append(
            Alert("dossier:warning", "warning", warn_at, "dossier", due, holder, since=known)
        )
        out.append(Alert("dossier:overdue", "overdue", due, "dossier", due, holder, since=known))
        out.append(Alert("dossier:apology", "apology", due, "dossier", due, holder))
    for step in state.steps:
        if step.status is StepStatus.RETURNED or not step.agency:
            continue
        handoff = record.handoff(step.step)
        if step.status is StepStatus.SENT and handoff:
            accept_due = cal.add_working_time(step.sent_at, rules.accept_within)
            out.append(
                Alert(
                    f"step:{step.step}:{handoff.handoff_id}:escalation",
                    "escalation",
                    accept_due,
                    "step",
                    accept_due,
                    step.agency,
                    step=step.step,
                    handoff=(handoff.handoff_id, handoff.from_agency, handoff.to_agency),
                    sent_at=step.sent_at,
                )
            )
        if step.due is not None:
            sdue = _step_due(record, step.due, step.sent_at)
            out.append(
                Alert(
                    f"step:{step.step}:warning",
                    "warning",
                    subtract_working_time(sdue, rules.warning_lead, cal),
                    "step",
                    sdue,
                    step.agency,
                    step=step.step,
                    since=step.sent_at,
                )
            )
            out.append(
                Alert(
                    f"step:{step.step}:overdue",
                    "overdue",
                    sdue,
                    "step",
                    sdue,
                    step.agency,
                    step=step.step,
                    since=step.sent_at,
                )
            )
    return out


def _step_due(record: DossierRecord, due: datetime, sent_at: datetime) -> datetime:
    """A step's due pushed back by the pauses after it was handed over (as on the slip)."""
    if not record.pauses:
        return due.astimezone(VN_TZ)  # what extend_for_pauses gives without pauses
    pauses = [Pause(max(p.start, sent_at), p.end) for p in pauses_of(record) if p.end > sent_at]
    return extend_for_pauses(due, pauses)


def apology_terms(
    events: Sequence[DossierEvent],
    *,
    at: datetime,
    fallback: str,
    procedure: Procedure | None,
    rules: AlertRules,
    calendar: WorkingCalendar | None = None,
) -> tuple[str, datetime, str]:
    """Responsible agency, proposed new appointment and reason of the apology (phiếu xin lỗi
    và hẹn lại) for a dossier with ``events`` applied, as of the overdue instant ``at``, by the
    slip rules (:func:`lienthong.domain.slip.build_apology`); ``fallback`` when the slip names
    no agency. The simulator's ground truth calls it; the tracker, from its record, calls
    :func:`apology_for`, which applies the same rules to the same slip."""
    slip = build_slip(events, procedure=procedure, calendar=calendar, now=at)
    return _terms(slip, at, fallback, procedure, rules, calendar)


def _terms(
    slip: ProcessControlSlip,
    at: datetime,
    fallback: str,
    procedure: Procedure | None,
    rules: AlertRules,
    calendar: WorkingCalendar | None,
) -> tuple[str, datetime, str]:
    apology = build_apology(
        slip,
        now=at,
        extension=rules.apology_extension,
        procedure=procedure,
        calendar=calendar,
    )
    responsible = apology.responsible_agencies[0] if apology.responsible_agencies else None
    return responsible or fallback, apology.proposed_appointment, apology.reason


def apology_for(
    alert: Alert,
    record: DossierRecord,
    procedure: Procedure | None,
    rules: AlertRules,
    calendar: WorkingCalendar | None = None,
) -> Alert:
    """The apology alert with its responsible agency, new appointment and reason filled in."""
    slip = record_slip(record, procedure=procedure, calendar=calendar, now=alert.fire_at)
    responsible, new_appointment, reason = _terms(
        slip, alert.fire_at, alert.responsible, procedure, rules, calendar
    )
    return replace(alert, responsible=responsible, new_appointment=new_appointment, reason=reason)


def due_alerts(
    record: DossierRecord,
    now: datetime,
    rules: AlertRules,
    *,
    calendar: WorkingCalendar | None = None,
    pending: Sequence[Alert] | None = None,
) -> list[Alert]:
    """Alerts whose instant has come (``fire_at <= now``) and that were not yet emitted.

    A warning whose overdue notice is also due is still emitted (once), so consumers always
    see warning → overdue for a dossier, even after a long outage or a replay jump.
    """
    if pending is None:
        pending = _candidates(record, rules, calendar or default_calendar())
    due = [a for a in pending if a.fire_at <= now]
    return sorted(due, key=lambda a: (a.fire_at, a.key))


def pending_alerts(
    record: DossierRecord,
    rules: AlertRules,
    *,
    calendar: WorkingCalendar | None = None,
) -> list[Alert]:
    """Every alert the record still has to emit, whenever it fires."""
    return list(_candidates(record, rules, calendar or default_calendar()))


def next_fire(
    record: DossierRecord,
    rules: AlertRules,
    *,
    calendar: WorkingCalendar | None = None,
) -> datetime | None:
    pending = _candidates(record, rules, calendar or default_calendar())
    return min((a.fire_at for a in pending), default=None)
