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
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from lienthong.domain.calendar import default_calendar
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
    apply,
    portal_status,
)
from lienthong.domain.stats import FIGURES
from lienthong.schemas import models as m
from lienthong.simulators.province import Period

TRUTH_VERSION = 1
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


def to_domain(event: m.Event) -> DossierEvent | None:
    """The lifecycle view of a wire event (None for events outside the dossier lifecycle)."""
    env = event.envelope
    kind_name = event.EVENT_TYPE
    try:
        kind = EventKind(kind_name)
    except ValueError:
        return None
    assert env.dossier_id is not None
    base: dict[str, Any] = {"kind": kind, "dossier_id": env.dossier_id, "at": env.occurred_at}
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
        base["agency"] = getattr(event, "agency", None) or env.producer_agency
    return DossierEvent(**base)


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

    def status_at(self, instant: datetime) -> int | None:
        i = bisect.bisect_right([t for t, _ in self.transitions], instant)
        return self.transitions[i - 1][1] if i else None

    def closed_pauses(self, until: datetime) -> list[Pause]:
        return [Pause(s, min(e or until, until)) for s, e in self.pauses if s < until]


def fold_dossier(dossier_id: str, delivered: Iterable[m.Event]) -> DossierTruth:
    """Fold one dossier's accepted records in delivery order (dedupe, skip illegal)."""
    t = DossierTruth(dossier_id)
    seen: set[Any] = set()
    for event in delivered:
        if event.envelope.event_id in seen:
            continue  # duplicate delivery: absorbed
        seen.add(event.envelope.event_id)
        dom = to_domain(event)
        if dom is None:
            continue
        try:
            state = apply(t.state, dom)
        except IllegalTransition:
            t.dead_letters["IllegalTransition"] += 1
            continue
        t.state = state
        at = event.envelope.occurred_at
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
        elif isinstance(event, m.DossierReceived):
            t.procedure, t.agency = event.procedure_code, event.receiving_agency
            t.channel, t.received_at, t.appointment = (
                event.channel.value,
                event.received_at,
                event.appointment_at,
            )
        elif isinstance(event, m.SupplementRequested):
            t.pauses.append((at, None))
        elif isinstance(event, m.SupplementReceived):
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
        elif isinstance(event, m.HandoffReturned):
            t.steps[event.step]["returned"] = at
    return t


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


class TruthBuilder:
    """Accumulates dossier truths into the figures the bus must publish."""

    def __init__(self, window: Period, period_kinds: Iterable[str] = ("month",)) -> None:
        self.window = window
        self.periods = [(k, p) for k in period_kinds for p in periods_in(window, k)]
        self.cal = default_calendar()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_FIELDS, 0))
        self.outcomes: Counter[str] = Counter()
        self.overdue_dossiers: list[str] = []
        self.overdue_steps: list[str] = []
        self.portal: dict[str, dict[str, Any]] = {}
        self.dead_letters: Counter[str] = Counter()
        self.absorbed: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.dossiers = 0
        self.events = 0

    def add(self, t: DossierTruth) -> None:
        self.dossiers += 1
        self.dead_letters.update(t.dead_letters)
        if t.state is None or t.agency is None:
            return
        end = self.window.end
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
        # Alerts: the dossier's (pause-extended) appointment passed before it ended.
        if t.appointment is not None:
            stop = min(x for x in (t.finished_at, t.refused_at, t.withdrawn_at, end) if x)
            due = extend_for_pauses(t.appointment, t.closed_pauses(stop), self.cal)
            waiting_since = t.pauses[-1][0] if t.pauses and t.pauses[-1][1] is None else None
            if due < stop and not (waiting_since and waiting_since <= due):
                self.overdue_dossiers.append(t.dossier_id)
        for number, step in sorted(t.steps.items()):
            if step["due"] < min(step["returned"] or end, end):
                self.overdue_steps.append(f"{t.dossier_id}#{number}")
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

    def to_json(self, meta: dict[str, Any]) -> dict[str, Any]:
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
            "alerts": {
                "overdue_dossiers": sorted(self.overdue_dossiers),
                "overdue_steps": sorted(self.overdue_steps),
            },
            "portal": self.portal,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "absorbed": dict(sorted(self.absorbed.items())),
            "flagged": dict(sorted(self.flagged.items())),
        }


_OPEN_CODES = frozenset(portal_status(s) for s in _OPEN)


def write_truth(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False))
    tmp.replace(path)
