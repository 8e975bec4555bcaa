"""The tracker's one decision: a dossier's record + one event (or the clock) → what it causes.

Why one pure function: the stream adapter (``streams/tracker.py``) used to interleave the
rules with decoding, sending and saving, so the rules could only be exercised through a
broker. Here every consequence of an event is computed up front and returned as data: the
new record, the portal status record (Trạng thái hồ sơ gửi Cổng DVC), the agency inbox
entry, the deadline alerts that become due or are cancelled, the instants at which the
dossier's counts change, or a rejection with its reason. The adapter only decodes, calls
:func:`decide` (or :func:`tick` for the clock), sends what it returns and saves the record.

No Kafka, no Faust, no module-level state: the caller passes the record, the procedure, the
alert rules and "now" (the partition's clock), and gets the same answer every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lienthong.domain.alerts import Alert, AlertRules, apology_for, due_alerts, pending_alerts
from lienthong.domain.calendar import WorkingCalendar
from lienthong.domain.lifecycle import EventKind
from lienthong.domain.procedures import Procedure
from lienthong.domain.record import DossierRecord, Entry
from lienthong.domain.tracking import (
    Applied,
    Duplicate,
    Facts,
    Rejected,
    portal_view,
    progress_of,
    track_for,
)

__all__ = [
    "Decision",
    "PortalStatus",
    "Timers",
    "decide",
    "pending_alert_keys",
    "tick",
]


@dataclass(frozen=True)
class PortalStatus:
    """One portal status record: its fields (``view``, as the portal spells them, with the
    source ``event_id`` and ISO instant ``at``) and its progress log lines (QuaTrinhXuLy:
    agency, at, note, status of every event applied up to this one)."""

    view: dict[str, Any]
    progress: Sequence[Entry]


@dataclass(frozen=True)
class Timers:
    """Alerts of one dossier due by "now", already noted as sent in ``state``.

    ``alerts`` must reach the broker before ``state`` reaches the changelog (so a crash can
    only repeat an alert, never lose one). ``next_fire`` is the instant of the dossier's next
    pending alert. ``failed`` says why the alerts could not be computed: the dossier's timer
    is then dropped (``state`` is the record unchanged), and the event being applied is not
    blamed for it."""

    state: DossierRecord
    alerts: tuple[Alert, ...] = ()
    next_fire: datetime | None = None
    failed: str | None = None
    pending: frozenset[str] = frozenset()  # keys still to emit after these


@dataclass(frozen=True)
class Decision:
    """Everything one event causes. Nothing to do at all: ``state`` is None and no rejection
    (a producer retry of an event already applied).

    - ``state``: the record after the event, to save (alerts not yet noted: see ``timers``);
    - ``rejection``: the event is dead-lettered with this reason, the record stays as it was;
    - ``redelivered``: the very source record applied before (crash redelivery): its outputs
      are sent again, identical, and the record saved again, since either may have been lost;
    - ``portal``: the portal status record to publish; ``inbox``: the receiving agency the
      event is forwarded to unchanged (handoff_sent);
    - ``timers``: alerts the event makes due by "now" (e.g. a handoff sent after its step's
      due), noted in ``timers.state``, which is then the record to save;
    - ``cancelled``: keys of alerts pending before the event and no longer after it;
    - ``counts_at``: instants at which the dossier's counts change (the live counts stage
      re-indexes the record and republishes the periods containing them).
    """

    state: DossierRecord | None = None
    rejection: Rejected | None = None
    redelivered: bool = False
    portal: PortalStatus | None = None
    inbox: str | None = None
    timers: Timers | None = None
    cancelled: tuple[str, ...] = ()
    counts_at: tuple[datetime, ...] = field(default=())

    @property
    def final(self) -> DossierRecord | None:
        """The record to save: with the alerts noted, unless they could not be computed."""
        if self.timers is not None and self.timers.failed is None:
            return self.timers.state
        return self.state


def pending_alert_keys(
    record: DossierRecord | None, rules: AlertRules, calendar: WorkingCalendar | None = None
) -> frozenset[str]:
    """Keys of the alerts the record still has to emit, whenever they fire."""
    if record is None:
        return frozenset()
    memo = record.pending_memo
    if memo is not None and memo[0] is rules and memo[1] is calendar:
        return memo[2]
    return frozenset(a.key for a in pending_alerts(record, rules, calendar=calendar))


def _remember_pending(
    record: DossierRecord, rules: AlertRules, calendar: WorkingCalendar | None, keys: frozenset[str]
) -> DossierRecord:
    """``record`` noting its pending alert keys (see DossierRecord.pending_memo)."""
    object.__setattr__(record, "pending_memo", (rules, calendar, keys))
    return record


def tick(
    record: DossierRecord,
    now: datetime,
    procedure: Procedure | None,
    rules: AlertRules,
    calendar: WorkingCalendar | None = None,
) -> Timers:
    """The clock's decision for one dossier: the alerts due by ``now`` (apologies with their
    responsible agency and new appointment filled in) and the record noting them. The
    pending alerts are computed once and serve the due ones, the next instant and the keys."""
    try:
        pending = pending_alerts(record, rules, calendar=calendar)
        due = due_alerts(record, now, rules, calendar=calendar, pending=pending)
        sent = {a.key for a in due}
        rest = [a for a in pending if a.key not in sent]
        next_at = min((a.fire_at for a in rest), default=None)
        keys = frozenset(a.key for a in rest)
        if not due:
            remembered = _remember_pending(record, rules, calendar, keys)
            return Timers(remembered, (), next_at, pending=keys)
        alerts = tuple(
            apology_for(a, record, procedure, rules, calendar) if a.kind == "apology" else a
            for a in due
        )
        noted = _remember_pending(record.with_alerts(sorted(sent)), rules, calendar, keys)
        return Timers(noted, alerts, next_at, pending=keys)
    except Exception as exc:  # reported to the caller: see Timers.failed
        return Timers(record, failed=f"{type(exc).__name__}: {exc}")


def decide(
    record: DossierRecord | None,
    facts: Facts,
    procedure: Procedure | None,
    now: datetime,
    *,
    partition: int,
    offset: int,
    rules: AlertRules,
    calendar: WorkingCalendar | None = None,
) -> Decision:
    """Apply one event (source ``partition``/``offset``) to a dossier's record as of ``now``.

    ``procedure`` is the dossier's (the event's code on a receipt, else the record's; None if
    unknown): its duration checks the appointment and classifies the outcome, its cut-off
    decides the receipt's day. Alerts already due before the event are the clock's business
    (:func:`tick`), called first by the adapter for every dossier of the partition.
    """
    result = track_for(procedure, record, facts, partition=partition, offset=offset)
    if isinstance(result, Rejected):
        return Decision(rejection=result)
    if isinstance(result, Duplicate):
        if (
            not result.same_record
            or record is None
            or result.history_index < 0
            or record.entry(result.history_index) is None
        ):
            # A producer retry (applied already, nothing was lost), or a redelivery of an
            # event older than the entries the record holds (its outputs went out long ago).
            return Decision()
        return Decision(
            state=record,
            redelivered=True,
            portal=_portal(record, result.history_index),
            inbox=_inbox(facts),
            counts_at=(facts.at,),
        )
    assert isinstance(result, Applied)
    new = result.record
    timers = tick(new, now, procedure, rules, calendar)
    counts_at: tuple[datetime, ...] = (facts.at,)
    if timers.alerts:
        counts_at += (min(a.fire_at for a in timers.alerts),)
    before = pending_alert_keys(record, rules, calendar)
    if timers.failed is None:
        after = timers.pending
    else:
        after = pending_alert_keys(new, rules, calendar)
    sent = {a.key for a in timers.alerts}
    return Decision(
        state=new,
        portal=_portal(new, result.history_index),
        inbox=_inbox(facts),
        timers=timers,
        cancelled=tuple(sorted(before - after - sent)),
        counts_at=counts_at,
    )


def _portal(record: DossierRecord, index: int) -> PortalStatus:
    return PortalStatus(
        view=portal_view(record, index, progress=False), progress=progress_of(record, index)
    )


def _inbox(facts: Facts) -> str | None:
    """The receiving agency's inbox gets the handoff itself (hồ sơ chuyển đến)."""
    if facts.kind is EventKind.HANDOFF_SENT and facts.to_agency:
        return facts.to_agency
    return None
