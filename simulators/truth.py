"""Ground truth: what the bus must report, computed from the delivered stream with domain rules.

Why from the *delivered* stream and not from the generator's intentions: faults change what a
consumer sees. The truth folds each dossier's records in delivery (offset) order exactly as the
contracts say a consumer must: records the gate rejects (malformed, unknown agency, future) are
dead letters, a repeated ``event_id`` is absorbed, an event the lifecycle forbids is a dead
letter (``IllegalTransition``) and the dossier carries on. Everything else — appointments,
pauses, early/on time/late — comes from ``lienthong.domain``, never from the stream processors.

Counting rules (BRIEF §6), for a period [start, end) and key agency × procedure × channel:
``received`` = receipts (``dossier_received``) in the period, also of dossiers refused after
the receipt; ``carried_over`` = received before the start and still open at the start;
``finished_*`` = classified at processing finished inside the period;
``in_progress_*`` / ``waiting_supplement`` = open at the end of the period (or at the end of the
replay window when that is earlier); ``refused`` / ``withdrawn`` / ``returned_by_post`` = those
events inside the period. The agency is the dossier's ``receiving_agency``.

Deadline alerts (issue 5 §3), as a replay-mode worker must emit them: its "now" is the
event-time watermark of each ``dossier-events`` partition, so the truth cuts every dossier's
life into stretches between applied events, lists what the rules hold pending in each
(warning, overdue, apology, escalation; due instants moved by closed supplement pauses) and
fires those whose instant the partition's watermark reaches before the stretch ends — at the
next applied event of the dossier, or, for the last stretch, at the partition's last record
(partition = Kafka's default partitioner on the dossier id). Ids are the worker's uuid5 of
dossier and alert key, so the verifier compares them one by one.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from lienthong.domain.alerts import AlertRules, alert_id, apology_terms, subtract_working_time
from lienthong.domain.calendar import WorkingCalendar, default_calendar
from lienthong.domain.classification import classify
from lienthong.domain.deadlines import Pause, extend_for_pauses
from lienthong.domain.lifecycle import (
    Channel as DomainChannel,
)
from lienthong.domain.lifecycle import (
    DossierEvent,
    DossierState,
    DossierStatus,
    EventKind,
    IllegalTransition,
    LifecycleError,
    StepStatus,
    apply,
    portal_status,
)
from lienthong.domain.procedures import Procedure, ProcedureCatalogue, load_procedures
from lienthong.domain.stats import FIGURES
from lienthong.schemas import models as m
from lienthong.simulators.province import Period

TRUTH_VERSION = 1
# Version 2 of the "alerts" section: every alert kind by event id (warnings, overdue,
# apologies, escalations). Truth files without it still verify their overdue lists.
ALERTS_VERSION = 2
# Live mode: how long after a stretch's closing record an alert of that stretch may still
# fire, because a live worker judges that record on the wall clock, a little after its event
# time (processing lag); such alerts are listed as ones that *may* appear.
LIVE_GRACE = timedelta(seconds=60)
ALERT_KINDS = ("warnings", "overdue", "apologies", "escalations")
# The BRIEF §6 figures, named as in the live-stats contract (the per-channel received counts
# are derived, so the truth keeps only the base figures).
COUNT_FIELDS = tuple(f for f in FIGURES if f not in ("received_online", "received_postal"))
_OPEN = frozenset(
    {
        DossierStatus.REGISTERED,
        DossierStatus.RECEIVED,
        DossierStatus.PROCESSING,
        DossierStatus.AWAITING_SUPPLEMENT,
        DossierStatus.AWAITING_FEE,
    }
)
_CHANNEL = {"counter": DomainChannel.COUNTER, "online": DomainChannel.ONLINE}
_CHANNEL["postal"] = DomainChannel.POSTAL


def fact_at(event: m.Event) -> datetime:
    """The instant a consumer files the event under: the receipt's ``received_at``, else
    ``occurred_at`` (what the tracker's clock observes, so the watermark is the same)."""
    if isinstance(event, m.DossierReceived):
        return event.received_at
    return event.envelope.occurred_at


def to_domain(event: m.Event) -> DossierEvent | None:
    """The lifecycle view of a wire event (None for events outside the dossier lifecycle)."""
    env = event.envelope
    kind_name = event.EVENT_TYPE
    try:
        kind = EventKind(kind_name)
    except ValueError:
        return None
    assert env.dossier_id is not None
    base: dict[str, Any] = {"kind": kind, "dossier_id": env.dossier_id, "at": fact_at(event)}
    if isinstance(event, m.DossierReceived):
        base.update(
            agency=event.receiving_agency,
            channel=_CHANNEL[event.channel.value],
            due=event.appointment_at,
        )
    elif isinstance(event, m.DossierSubmitted):
        base.update(agency=event.receiving_agency, channel=DomainChannel.ONLINE)
    elif isinstance(event, m.HandoffSent):
        base.update(
            agency=event.from_agency,
            to_agency=event.to_agency,
            step=event.step,
            due=event.step_due_at,
        )
    elif isinstance(event, m.HandoffAccepted | m.HandoffReturned):
        base.update(agency=event.to_agency, step=event.step)
        if isinstance(event, m.HandoffReturned):
            base["outcome"] = event.outcome.value
    else:
        # The acting agency as the contract names it (a supplement request's requesting
        # agency matters: a second request makes its agency responsible for the delay).
        base["agency"] = (
            getattr(event, "agency", None)
            or getattr(event, "receiving_agency", None)
            or getattr(event, "requesting_agency", None)
            or env.producer_agency
        )
    return DossierEvent(**base)


@dataclass(frozen=True)
class Segment:
    """The dossier between two applied events: what the deadline rules see in that stretch.

    ``until`` is the watermark of the dossier's partition when the next applied event came
    (the bus fires every alert due by then against *this* state before applying it); None
    for the last stretch, which lasts to the end of the stream.
    """

    state: DossierState
    holder: str | None
    pauses: tuple[Pause, ...]  # closed supplement pauses so far
    handoffs: tuple[tuple[int, str, str, str], ...]  # step, handoff id, from, to
    events: int  # how many applied events (prefix of ``DossierTruth.applied``)
    until: datetime | None = None


@dataclass
class DossierTruth:
    """A dossier as a correct consumer sees it after the whole delivered stream."""

    dossier_id: str
    procedure: str | None = None
    agency: str | None = None
    channel: str | None = None
    state: DossierState | None = None
    transitions: list[tuple[datetime, int]] = field(default_factory=list)  # (at, portal code)
    received_at: datetime | None = None
    submitted_at: datetime | None = None
    appointment: datetime | None = None
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    finished_at: datetime | None = None
    refused_at: datetime | None = None
    withdrawn_at: datetime | None = None
    returned_by_post_at: datetime | None = None
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    dead_letters: Counter[str] = field(default_factory=Counter)
    applied: list[DossierEvent] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    watermark: datetime | None = None  # newest instant among the records the bus observed

    def status_at(self, instant: datetime) -> int | None:
        i = bisect.bisect_right([t for t, _ in self.transitions], instant)
        return self.transitions[i - 1][1] if i else None

    def closed_pauses(self, until: datetime) -> list[Pause]:
        return [Pause(s, min(e or until, until)) for s, e in self.pauses if s < until]


_STARTS = frozenset({EventKind.DOSSIER_SUBMITTED, EventKind.DOSSIER_RECEIVED})


def fold_dossier(dossier_id: str, delivered: Iterable[m.Event]) -> DossierTruth:
    """Fold one dossier's accepted records in delivery order (dedupe, skip rejected).

    Rejections follow the tracker contract (issue 5): an event for a dossier never received
    or submitted is ``UnknownDossier``, one older than the dossier's newest applied event is
    ``StaleEvent``, one the lifecycle forbids is ``IllegalTransition``. Every lifecycle
    record — rejected or repeated too — moves the partition's event-time watermark, which is
    when the bus evaluates deadlines in replay mode.
    """
    t = DossierTruth(dossier_id)
    seen: set[Any] = set()
    holder: str | None = None
    handoffs: dict[int, tuple[str, str, str]] = {}
    last_at: datetime | None = None
    for event in delivered:
        dom = to_domain(event)
        if dom is None:
            continue
        at = dom.at
        t.watermark = at if t.watermark is None or at > t.watermark else t.watermark
        if event.envelope.event_id in seen:
            continue  # duplicate delivery: absorbed
        if t.state is None and dom.kind not in _STARTS and dom.kind is not EventKind.INTAKE_REFUSED:
            t.dead_letters["UnknownDossier"] += 1
            continue
        if last_at is not None and at < last_at:
            t.dead_letters["StaleEvent"] += 1
            continue
        try:
            state = apply(t.state, dom)
        except (IllegalTransition, LifecycleError):
            t.dead_letters["IllegalTransition"] += 1
            continue
        seen.add(event.envelope.event_id)
        last_at = at
        t.state = state
        t.applied.append(dom)
        code = portal_status(state.status)
        if not t.transitions or t.transitions[-1][1] != code:
            t.transitions.append((at, code))
        if isinstance(event, m.DossierSubmitted):
            t.procedure, t.agency, t.channel = (
                event.procedure_code,
                event.receiving_agency,
                "online",
            )
            t.submitted_at = at
            holder = event.receiving_agency
        elif isinstance(event, m.DossierReceived):
            t.procedure, t.agency = event.procedure_code, event.receiving_agency
            t.channel, t.received_at, t.appointment = (
                event.channel.value,
                event.received_at,
                event.appointment_at,
            )
            holder = event.receiving_agency
        elif isinstance(event, m.SupplementRequested):
            t.pauses.append((at, None))
        elif isinstance(event, m.SupplementReceived) and t.pauses:
            start, _ = t.pauses[-1]
            t.pauses[-1] = (start, at)
        elif isinstance(event, m.ProcessingFinished):
            t.finished_at = at
        elif isinstance(event, m.IntakeRefused):
            t.refused_at = at
        elif isinstance(event, m.DossierWithdrawn):
            t.withdrawn_at = at
        elif isinstance(event, m.ResultReturned) and event.method.value == "post":
            t.returned_by_post_at = at
        elif isinstance(event, m.HandoffSent):
            t.steps[event.step] = {
                "agency": event.to_agency,
                "due": event.step_due_at,
                "returned": None,
            }
            handoffs[event.step] = (event.handoff_id, event.from_agency, event.to_agency)
            holder = event.to_agency
        elif isinstance(event, m.HandoffReturned):
            t.steps[event.step]["returned"] = at
            holder = event.from_agency  # back with the agency that handed it over
        if t.segments:
            t.segments[-1] = replace(t.segments[-1], until=t.watermark)
        t.segments.append(
            Segment(
                state=state,
                holder=holder or t.agency,
                pauses=tuple(Pause(a, b) for a, b in t.pauses if b is not None),
                handoffs=tuple((k, *v) for k, v in sorted(handoffs.items())),
                events=len(t.applied),
            )
        )
    return t


# -- deadline alerts -----------------------------------------------------------------------

# Alerts are pending only while somebody must act: not before receipt, not while the dossier
# waits for the citizen's supplement (the clock is stopped), not once it has ended.
_ALERTING = frozenset(
    {DossierStatus.RECEIVED, DossierStatus.PROCESSING, DossierStatus.AWAITING_FEE}
)


@dataclass(frozen=True)
class AlertTruth:
    """One alert the bus must emit: ``key`` as the worker names it, the instant it falls due."""

    dossier_id: str
    key: str
    kind: str  # warning | overdue | apology | escalation
    fire_at: datetime
    due_at: datetime
    responsible: str | None
    step: int | None = None
    handoff: tuple[str, str, str] | None = None  # handoff id, from, to
    events: int = 0  # applied events known when it fell due (for the apology's slip)

    @property
    def id(self) -> str:
        return str(alert_id(self.dossier_id, self.key))

    @property
    def scope(self) -> str:
        return "dossier" if self.key.startswith("dossier:") else "step"


# The same due instants come back in every stretch of a dossier (and across dossiers): the
# calendar walks are cached, which keeps a province-year's truth affordable.
@lru_cache(maxsize=1 << 16)
def _before(due: datetime, lead: timedelta, cal: WorkingCalendar) -> datetime:
    return subtract_working_time(due, lead, cal)


@lru_cache(maxsize=1 << 16)
def _after(start: datetime, span: timedelta, cal: WorkingCalendar) -> datetime:
    return cal.add_working_time(start, span)


@lru_cache(maxsize=1 << 16)
def _extended(due: datetime, pauses: tuple[Pause, ...], cal: WorkingCalendar) -> datetime:
    return extend_for_pauses(due, pauses, cal) if pauses else due


def _candidates(
    dossier_id: str,
    seg: Segment,
    rules: AlertRules,
    cal: WorkingCalendar,
    bound: datetime | None = None,
) -> list[AlertTruth]:
    """What the deadline rules hold pending for one stretch of a dossier's life (only those
    due by ``bound`` when given: the others cannot fire in it).

    Written from the rules of issue 5 (warning a lead before each due instant, overdue at it,
    apology with the dossier's overdue notice, escalation when a handoff is not accepted in
    time; due instants moved back by the supplement pauses), not from the stream worker.
    """
    st = seg.state
    if st.status not in _ALERTING:
        return []
    out: list[AlertTruth] = []
    n = seg.events
    if st.due is not None and seg.holder:
        due = _extended(st.due, seg.pauses, cal)
        warn = _before(due, rules.warning_lead, cal)
        for key, kind, at in (
            ("dossier:warning", "warning", warn),
            ("dossier:overdue", "overdue", due),
            ("dossier:apology", "apology", due),
        ):
            if bound is None or at <= bound:
                out.append(AlertTruth(dossier_id, key, kind, at, due, seg.holder, events=n))
    handoffs = {h[0]: h[1:] for h in seg.handoffs}
    for step in st.steps:
        if step.status is StepStatus.RETURNED or not step.agency:
            continue
        handoff = handoffs.get(step.step)
        accept_due = None
        if step.status is StepStatus.SENT and handoff is not None:
            accept_due = _after(step.sent_at, rules.accept_within, cal)
        if (
            accept_due is not None
            and handoff is not None
            and (bound is None or accept_due <= bound)
        ):
            out.append(
                AlertTruth(
                    dossier_id,
                    f"step:{step.step}:{handoff[0]}:escalation",
                    "escalation",
                    accept_due,
                    accept_due,
                    step.agency,
                    step=step.step,
                    handoff=handoff,
                    events=n,
                )
            )
        if step.due is not None:
            # Only the part of a pause after the handover stops the step's clock.
            after = tuple(
                Pause(max(p.start, step.sent_at), p.end) for p in seg.pauses if p.end > step.sent_at
            )
            sdue = _extended(step.due, after, cal)
            warn = _before(sdue, rules.warning_lead, cal)
            for key, kind, at in (
                (f"step:{step.step}:warning", "warning", warn),
                (f"step:{step.step}:overdue", "overdue", sdue),
            ):
                if bound is not None and at > bound:
                    continue
                out.append(
                    AlertTruth(
                        dossier_id, key, kind, at, sdue, step.agency, step=step.step, events=n
                    )
                )
    return out


def predict_alerts(
    t: DossierTruth,
    end_watermark: datetime | None,
    rules: AlertRules | None = None,
    calendar: WorkingCalendar | None = None,
) -> list[AlertTruth]:
    """Every alert the bus emits for this dossier, each once, as its event-time clock sees it.

    In replay mode the bus's "now" is the watermark of the dossier's partition, and it fires an
    alert whenever that watermark reaches the alert's instant while the alert is still
    pending. Inside a stretch of the dossier's life the watermark ends at ``Segment.until``;
    the last stretch ends at ``end_watermark`` (the partition's last instant). So an alert of
    a stretch fires iff its instant is at or before that bound, with the stretch's content —
    a finish, a return or a pause that comes first cancels or moves it.
    """
    rules = rules or AlertRules()
    cal = calendar or default_calendar()
    fired: dict[str, AlertTruth] = {}
    for seg in t.segments:
        bound = seg.until if seg.until is not None else end_watermark
        if bound is None:
            continue
        for a in _candidates(t.dossier_id, seg, rules, cal, bound):
            if a.key not in fired:
                fired[a.key] = a
    return sorted(fired.values(), key=lambda a: (a.fire_at, a.key))


def apology_content(
    alert: AlertTruth,
    applied: list[DossierEvent],
    procedure: Procedure | None,
    rules: AlertRules | None = None,
    calendar: WorkingCalendar | None = None,
) -> dict[str, Any]:
    """Responsible agency and proposed new appointment (phiếu xin lỗi và hẹn lại) with the slip
    rules, as of the overdue instant and the events applied by then."""
    responsible, new_appointment, _ = apology_terms(
        applied[: alert.events],
        at=alert.fire_at,
        fallback=alert.responsible,
        procedure=procedure,
        rules=rules or AlertRules(),
        calendar=calendar,
    )
    return {
        "dossier": alert.dossier_id,
        "responsible": responsible,
        "new_appointment": new_appointment.isoformat(),
        "previous_appointment": alert.due_at.isoformat(),
    }


def partition_of(dossier_id: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), as the simulator's producer uses."""
    from kafka.partitioner.default import murmur2

    return (murmur2(dossier_id.encode()) & 0x7FFFFFFF) % partitions


def settings_defaults() -> tuple[AlertRules, int | None]:
    """The alert rules and dossier-events partition count the bus runs with (configuration)."""
    from lienthong.config import load_settings
    from lienthong.runtime.topics import load_catalogue

    settings = load_settings()
    rules = AlertRules(
        warning_lead=timedelta(hours=settings.streams.warning_lead_hours),
        accept_within=timedelta(hours=settings.streams.handoff_accept_hours),
    )
    try:
        partitions: int | None = (
            load_catalogue(settings.topics_file).get("dossier-events").partitions
        )
    except Exception:  # no catalogue: one clock, the stream's last instant
        partitions = None
    return rules, partitions


def _period_of(kind: str, d: date) -> str:
    if kind == "day":
        return d.isoformat()
    if kind == "month":
        return f"{d:%Y-%m}"
    if kind == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year}"


def periods_in(window: Period, kind: str) -> list[Period]:
    """The periods of ``kind`` that overlap the window (clipped to nothing: full periods)."""
    out: dict[str, Period] = {}
    d = window.start.date()
    while d < window.end.date():
        key = _period_of(kind, d)
        if key not in out:
            out[key] = Period.parse(key)
        d += timedelta(days=1)
    return list(out.values())


def overdue_label(entry: str) -> str:
    """The version-1 name of an overdue entry ``dossier|key``: the dossier for the dossier's
    notice, ``dossier#N`` for step N's."""
    dossier, key = entry.split("|", 1)
    return dossier if key == "dossier:overdue" else f"{dossier}#{key.split(':')[1]}"


def overdue_lists(entries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The version-1 ``overdue_dossiers`` and ``overdue_steps`` of these overdue entries."""
    dossiers: list[str] = []
    steps: list[str] = []
    for entry in entries:
        step = entry.split("|", 1)[1].startswith("step:")
        (steps if step else dossiers).append(overdue_label(entry))
    return sorted(dossiers), sorted(steps)


class TruthBuilder:
    """Accumulates dossier truths into the figures the bus must publish."""

    def __init__(
        self,
        window: Period,
        period_kinds: Iterable[str] = ("month",),
        *,
        rules: AlertRules | None = None,
        dossier_partitions: int | None = None,
        procedures: ProcedureCatalogue | None = None,
        from_settings: bool = True,
        live: bool | None = None,
    ) -> None:
        """``rules`` and ``dossier_partitions`` must be what the bus runs with (the warning
        lead, the handoff acceptance time, the partition count that decides which dossiers
        share an event-time clock); missing ones come from the settings unless
        ``from_settings`` is off (then: default rules, one clock for the whole stream).
        ``live`` (default: a ``live:`` window) means the workers run on the wall clock, which
        reaches the window's end whatever the partition: last stretches run to it."""
        if from_settings and (rules is None or dossier_partitions is None):
            s_rules, s_parts = settings_defaults()
            rules = rules or s_rules
            dossier_partitions = dossier_partitions or s_parts
        self.window = window
        self.live = window.key.startswith("live:") if live is None else live
        self.periods = [(k, p) for k in period_kinds for p in periods_in(window, k)]
        self.cal = default_calendar()
        self.rules = rules or AlertRules()
        self.dossier_partitions = dossier_partitions
        self.procedures = procedures or load_procedures()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_FIELDS, 0))
        self.outcomes: Counter[str] = Counter()
        self.alerts: dict[str, dict[str, Any]] = {k: {} for k in ALERT_KINDS}
        # Alerts of the dossiers' last stretch wait for their partition's final watermark.
        # (partition, applied events if an apology is among them, procedure, alerts): kept
        # slim, a province-year has tens of thousands of dossiers open at the end.
        self._pending: list[
            tuple[int, list[DossierEvent] | None, str | None, list[AlertTruth]]
        ] = []
        self._watermarks: dict[int, datetime] = {}
        self._resolved = False
        # Live only: alerts the wall clock may fire after the window (id -> kind, fire
        # instant, the entry it will be, and "may" for those only a processing lag can fire).
        self.later: dict[str, dict[str, Any]] = {}
        self.portal: dict[str, dict[str, Any]] = {}
        self.dead_letters: Counter[str] = Counter()
        self.absorbed: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.dossiers = 0
        self.events = 0
        # "connector": the post's delays and failures are not the simulator's to know; the
        # dossiers given to the post for delivery are listed so the verifier leaves their
        # return (returned_by_post, TrangThaiHoSo 10) unchecked.
        self.postal = "simulated"
        self.postal_orders: dict[str, set[str]] = {"pickup": set(), "delivery": set()}

    def _partition(self, dossier_id: str) -> int:
        if not self.dossier_partitions:
            return 0
        return partition_of(dossier_id, self.dossier_partitions)

    def _alert_entry(
        self, a: AlertTruth, applied: list[DossierEvent] | None, procedure: str | None
    ) -> tuple[str, Any]:
        """The alert's kind (section of ``alerts``) and what the truth says of it there."""
        if a.kind == "warning":
            return "warnings", f"{a.dossier_id}|{a.key}"
        if a.kind == "overdue":
            return "overdue", f"{a.dossier_id}|{a.key}"
        if a.kind == "apology":
            assert applied is not None
            proc = self.procedures.get(procedure or "")
            return "apologies", apology_content(a, applied, proc, self.rules, self.cal)
        assert a.handoff is not None
        return "escalations", {
            "dossier": a.dossier_id,
            "step": a.step,
            "handoff_id": a.handoff[0],
            "from": a.handoff[1],
            "to": a.handoff[2],
        }

    def _record_alert(
        self, a: AlertTruth, applied: list[DossierEvent] | None, procedure: str | None
    ) -> None:
        kind, entry = self._alert_entry(a, applied, procedure)
        self.alerts[kind][a.id] = entry

    def _record_later(
        self,
        a: AlertTruth,
        applied: list[DossierEvent] | None,
        procedure: str | None,
        may: bool = False,
    ) -> None:
        kind, entry = self._alert_entry(a, applied, procedure)
        self.later[a.id] = {
            "kind": kind,
            "fire_at": a.fire_at.isoformat(),
            "entry": entry,
            **({"may": True} if may else {}),
        }

    def _observe(self, t: DossierTruth) -> int:
        """Note the dossier's records on its partition's clock (rejected ones move it too)."""
        partition = self._partition(t.dossier_id)
        if t.watermark is not None:
            wm = self._watermarks.get(partition)
            if wm is None or t.watermark > wm:
                self._watermarks[partition] = t.watermark
        return partition

    def _add_alerts(self, t: DossierTruth, partition: int) -> None:
        fired = predict_alerts(t, None, self.rules, self.cal)  # closed stretches only
        for a in fired:
            self._record_alert(a, t.applied, t.procedure)
        if t.segments:
            done = {a.key for a in fired}
            last = [
                a
                for a in _candidates(t.dossier_id, t.segments[-1], self.rules, self.cal)
                if a.key not in done
            ]
            if last:
                apology = any(a.kind == "apology" for a in last)
                self._pending.append((partition, t.applied if apology else None, t.procedure, last))
        if self.live:
            self._add_lag_alerts(t, {a.key for a in fired})

    def _add_lag_alerts(self, t: DossierTruth, fired: set[str]) -> None:
        """Live: alerts falling due just after a stretch's closing record. The worker applies
        that record a little after its event time and fires what is due by then first, so
        these may or may not exist (see ``LIVE_GRACE``)."""
        for seg in t.segments:
            if seg.until is None:
                continue
            for a in _candidates(t.dossier_id, seg, self.rules, self.cal, seg.until + LIVE_GRACE):
                if a.fire_at > seg.until and a.key not in fired and a.id not in self.later:
                    self._record_later(a, t.applied, t.procedure, may=True)

    def resolve_alerts(self) -> None:
        """Fire the last stretches' alerts up to their partition's final watermark."""
        if self._resolved:
            return
        self._resolved = True
        for partition, applied, procedure, candidates in self._pending:
            bound = self.window.end if self.live else self._watermarks[partition]
            for a in sorted(candidates, key=lambda a: (a.fire_at, a.key)):
                if a.fire_at <= bound:
                    self._record_alert(a, applied, procedure)
                elif self.live:
                    # Nothing more is sent after the window: the wall clock fires it then.
                    self._record_later(a, applied, procedure)
        self._pending = []

    def add(self, t: DossierTruth) -> None:
        self.dossiers += 1
        self.dead_letters.update(t.dead_letters)
        partition = self._observe(t)
        if t.state is None or t.agency is None:
            return
        outcome = None
        if t.finished_at is not None and t.received_at is not None and t.appointment:
            pauses = t.closed_pauses(t.finished_at)
            outcome = classify(
                received=t.received_at,
                finished=t.finished_at,
                due=t.appointment,
                pauses=pauses,
                supplement_requests=len(t.pauses),
                calendar=self.cal,
            ).outcome.value
            self.outcomes[outcome] += 1
        self._add_alerts(t, partition)
        # Portal: the last status of each dossier.
        self.portal[t.dossier_id] = {
            "TrangThaiHoSo": t.transitions[-1][1],
            "KenhThucHien": {"counter": 1, "online": 2, "postal": 3}[t.channel or "online"],
            "MaTTHC": t.procedure,
            # The appointment moved back by the supplement pauses that have ended (a portal
            # record shows the current appointment, not the one on the first receipt).
            "NgayHenTra": (
                m.to_portal_date(
                    extend_for_pauses(
                        t.appointment, [Pause(a, b) for a, b in t.pauses if b], self.cal
                    )
                )
                if t.appointment
                else None
            ),
            "changes": len(t.transitions),
        }
        for kind, p in self.periods:
            self._count(t, kind, p, outcome)

    def _count(self, t: DossierTruth, kind: str, p: Period, outcome: str | None) -> None:
        def inside(x: datetime | None) -> bool:
            return x is not None and p.start <= x < p.end

        c: dict[str, int] = {}
        if inside(t.received_at):  # a receipt counts even if the dossier is refused afterwards
            c["received"] = 1
        start_status = t.status_at(p.start - timedelta(microseconds=1))
        if t.received_at and t.received_at < p.start and start_status in _OPEN_CODES:
            c["carried_over"] = 1
        if outcome and inside(t.finished_at):
            c[f"finished_{outcome}"] = 1
        cut = min(p.end, self.window.end)
        end_status = t.status_at(cut - timedelta(microseconds=1))
        if t.received_at and t.received_at < cut and end_status in _OPEN_CODES:
            if end_status == 5:
                c["waiting_supplement"] = 1
            else:
                due = extend_for_pauses(t.appointment, t.closed_pauses(cut), self.cal)
                c["in_progress_overdue" if due < cut else "in_progress_on_time"] = 1
        if inside(t.refused_at):
            c["refused"] = 1
        if inside(t.withdrawn_at):
            c["withdrawn"] = 1
        if inside(t.returned_by_post_at):
            c["returned_by_post"] = 1
        if c:
            key = f"{t.agency}|{t.procedure}|{t.channel}|{kind}:{p.key}"
            row = self.counts[key]
            for name, value in c.items():
                row[name] += value

    def alerts_json(self) -> dict[str, Any]:
        """Version-1 lists (overdue dossiers and steps) plus, from ``ALERTS_VERSION`` 2, every
        alert by event id, per kind, and the assumptions it rests on."""
        self.resolve_alerts()
        dossiers, steps = overdue_lists(self.alerts["overdue"].values())
        return {
            "overdue_dossiers": dossiers,
            "overdue_steps": steps,
            "version": ALERTS_VERSION,
            "rules": {
                "warning_lead_hours": self.rules.warning_lead.total_seconds() / 3600,
                "handoff_accept_hours": self.rules.accept_within.total_seconds() / 3600,
                "dossier_partitions": self.dossier_partitions,
                "clock": (
                    "live (wall clock, to the window's end)"
                    if self.live
                    else "replay (event-time watermark per dossier-events partition)"
                ),
            },
            **{kind: dict(sorted(v.items())) for kind, v in self.alerts.items()},
            **({"after_window": dict(sorted(self.later.items()))} if self.live else {}),
        }

    def postal_json(self) -> dict[str, Any]:
        """What a ``postal: connector`` truth cannot know, and the dossiers it concerns."""
        return {
            "mode": self.postal,
            "pickup_orders": len(self.postal_orders["pickup"]),
            "delivery_orders": sorted(self.postal_orders["delivery"]),
            "unknown": (
                "the post's delays and failures: result_returned by post, returned_by_post "
                "counts and TrangThaiHoSo 10 of the delivery_orders dossiers come from the "
                "postal connector, not from this truth"
            ),
        }

    def to_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        postal = {"postal": self.postal_json()} if self.postal != "simulated" else {}
        return {
            "version": TRUTH_VERSION,
            "meta": meta,
            "window": {
                "key": self.window.key,
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
            },
            "dossiers": self.dossiers,
            "events": self.events,
            "counts": dict(sorted(self.counts.items())),
            "outcomes": dict(self.outcomes),
            "alerts": self.alerts_json(),
            "portal": self.portal,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "absorbed": dict(sorted(self.absorbed.items())),
            "flagged": dict(sorted(self.flagged.items())),
            **postal,
        }


_OPEN_CODES = frozenset(portal_status(s) for s in _OPEN)


def write_truth(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False))
    tmp.replace(path)
