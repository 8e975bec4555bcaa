"""The tracker's decision (lienthong.domain.decide) over the scripted scenarios, no broker.

The scripts are those of tests/integration/test_streams_scenarios.py (imported, not copied),
turned into facts by the adapter's own conversion; a small driver does per partition what the
Faust agent does (clock first, then decide, keep what is saved), so the same expectations hold
here at the domain level: counts, alerts, slip, portal feed, inbox, rejections, duplicates,
a crash with redelivery, and partitions worked independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from kafka.partitioner.default import murmur2

from lienthong.domain.alerts import Alert, AlertRules, alert_id
from lienthong.domain.decide import Decision, PortalStatus, decide, tick
from lienthong.domain.procedures import ProcedureCatalogue, load_procedures
from lienthong.domain.slip import record_slip
from lienthong.domain.stats import figures, parse_period, rates
from lienthong.domain.tracking import Facts, Record, RejectReason
from lienthong.schemas.models import Event
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_scenarios import (
    CENTER,
    EXPECTED_ALERTS,
    EXPECTED_MARCH,
    LAND,
    PROC,
    TAX,
    Script,
    bad_events_script,
    march_script,
    t,
)

RULES = AlertRules(warning_lead=timedelta(hours=8), accept_within=timedelta(hours=4))
PARTITIONS = 6
WIRE_TYPES = {
    "warning": "deadline_warning",
    "overdue": "deadline_overdue",
    "apology": "apology_issued",
    "escalation": "handoff_escalated",
}


@pytest.fixture(scope="module")
def catalogue() -> ProcedureCatalogue:
    return load_procedures()


@dataclass
class Partition:
    """What the tracker agent does with one source partition, minus Kafka: for every record,
    the clock's alerts first (:func:`tick` for each dossier), then :func:`decide`; what a
    decision says to save is kept, what it says to send is collected."""

    catalogue: ProcedureCatalogue
    records: dict[str, Record] = field(default_factory=dict)
    watermark: datetime | None = None
    next_offset: int = 0
    alerts: list[tuple[str, Alert]] = field(default_factory=list)
    portal: list[tuple[str, PortalStatus]] = field(default_factory=list)
    inbox: list[str] = field(default_factory=list)
    rejected: list[tuple[str, RejectReason]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    # (record saved, instant its counts changed at, the partition's clock): what the live
    # counts are told (tests/unit/streams/test_live_counts.py)
    changes: list[tuple[Record, datetime, datetime]] = field(default_factory=list)

    def clock(self, now: datetime) -> None:
        for dossier_id, record in sorted(self.records.items()):
            timers = tick(record, now, self.catalogue.get(record.procedure or ""), RULES)
            assert timers.failed is None, timers.failed
            self.alerts += [(dossier_id, a) for a in timers.alerts]
            self.records[dossier_id] = timers.state
            if timers.alerts:
                self.changes.append((timers.state, min(a.fire_at for a in timers.alerts), now))

    def apply(self, facts: Facts, offset: int | None = None) -> Decision:
        if offset is None:
            offset, self.next_offset = self.next_offset, self.next_offset + 1
        if self.watermark is None or facts.at > self.watermark:
            self.watermark = facts.at
        self.clock(self.watermark)
        record = self.records.get(facts.dossier_id)
        code = facts.procedure or (record.procedure if record else None) or ""
        d = decide(
            record,
            facts,
            self.catalogue.get(code),
            self.watermark,
            partition=0,
            offset=offset,
            rules=RULES,
        )
        self.decisions.append(d)
        if d.rejection is not None:
            self.rejected.append((facts.dossier_id, d.rejection.reason))
            return d
        if d.final is not None:
            self.records[facts.dossier_id] = d.final
            self.changes += [(d.final, at, self.watermark) for at in d.counts_at]
        if d.portal is not None:
            self.portal.append((facts.dossier_id, d.portal))
        if d.inbox is not None:
            self.inbox.append(d.inbox)
        if d.timers is not None:
            self.alerts += [(facts.dossier_id, a) for a in d.timers.alerts]
        return d


def partition_of(dossier_id: str, pinned: int | None) -> int:
    """Kafka's default partitioner (murmur2 of the key), unless the script pins one."""
    if pinned is not None:
        return pinned
    return (murmur2(dossier_id.encode()) & 0x7FFFFFFF) % PARTITIONS


def facts(event: Event) -> Facts:
    result = facts_of(event)
    assert result is not None
    return result


def run(catalogue: ProcedureCatalogue, script: Script, times: int = 1) -> list[Partition]:
    parts = [Partition(catalogue) for _ in range(PARTITIONS)]
    for event, pinned in script.ordered():
        for _ in range(times):
            parts[partition_of(event.envelope.dossier_id or "", pinned)].apply(facts(event))
    return parts


def alert_set(parts: list[Partition]) -> set[tuple]:
    out = set()
    for p in parts:
        for dossier_id, a in p.alerts:
            scope = a.scope if a.kind in ("warning", "overdue") else None
            step = a.step if a.kind != "apology" else None
            out.add((dossier_id, WIRE_TYPES[a.kind], scope, step))
    return out


def march_totals(parts: list[Partition]) -> dict:
    records = [r for p in parts for r in p.records.values() if r.procedure == PROC]
    as_of = max(p.watermark for p in parts if p.watermark is not None)
    totals: dict = dict(figures(records, parse_period("month:2025-03"), as_of))
    totals.update(rates(totals))
    return totals


def record(parts: list[Partition], dossier_id: str) -> Record:
    return next(p.records[dossier_id] for p in parts if dossier_id in p.records)


def test_scripted_month_gives_the_expected_counts_alerts_slip_portal_feed_and_inbox(catalogue):
    script = march_script()
    parts = run(catalogue, script)

    assert march_totals(parts) == EXPECTED_MARCH
    assert alert_set(parts) == EXPECTED_ALERTS
    alerts = [(d, a) for p in parts for d, a in p.alerts]
    assert len({alert_id(d, a.key) for d, a in alerts}) == len(EXPECTED_ALERTS) == len(alerts)
    escalation = next(a for _, a in alerts if a.kind == "escalation")
    assert escalation.handoff is not None and escalation.handoff[1:] == (CENTER, TAX)
    assert escalation.due_at == t(10, 14, 30)  # 09:00 + 4 working hours
    apology = next(a for d, a in alerts if a.kind == "apology" and d == "HS-LATE")
    assert apology.due_at == t(7, 16) and apology.responsible == LAND
    assert apology.new_appointment is not None and apology.new_appointment > t(7, 16)

    late = record_slip(record(parts, "HS-LATE"), procedure=catalogue.get(PROC))
    assert late.classification is not None and late.classification.outcome.value == "late"
    assert list(late.responsible_agencies) == [LAND]
    assert [(s.step, s.agency, s.on_time) for s in late.steps] == [(1, LAND, False)]
    chain = record_slip(record(parts, "HS-CHAIN"), procedure=catalogue.get(PROC))
    assert chain.classification is not None and chain.classification.outcome.value == "early"
    assert [(s.agency, s.on_time) for s in chain.steps] == [(LAND, True), (TAX, True)]

    portal = [(d, s) for p in parts for d, s in p.portal]
    assert len(portal) == len(script.events)
    postal = [s for d, s in portal if d == "HS-POSTAL"]
    # supplement_received resumes where the dossier was (received, 2), not "processing"
    assert [s.view["TrangThaiHoSo"] for s in postal] == [2, 5, 2, 5, 2, 9, 10]
    assert all(s.view["KenhThucHien"] == 3 and s.view["MaTTHC"] == PROC for s in postal)
    assert datetime.fromisoformat(postal[-1].view["NgayTra"]) == t(11, 9)
    assert len(postal[-1].progress) == 7

    assert sorted(a for p in parts for a in p.inbox) == sorted([LAND, TAX, LAND, TAX])


def test_every_event_twice_gives_the_same_counts_and_alerts_and_no_rejection(catalogue):
    parts = run(catalogue, march_script(), times=2)
    assert march_totals(parts) == EXPECTED_MARCH
    assert alert_set(parts) == EXPECTED_ALERTS
    assert sum(len(p.alerts) for p in parts) == len(EXPECTED_ALERTS)
    assert [r for p in parts for r in p.rejected] == []
    retries = [d for p in parts for d in p.decisions[1::2]]
    assert all(d == Decision() for d in retries)  # a producer retry causes nothing


def test_unknown_illegal_and_stale_events_are_rejected_with_their_reasons(catalogue):
    s = bad_events_script()
    part = Partition(catalogue)
    for event, _ in s.events:  # publication order, as the integration test sends them
        part.apply(facts(event))
    assert sorted(reason.value for _, reason in part.rejected) == [
        "IllegalTransition",
        "StaleEvent",
        "UnknownDossier",
    ]
    assert dict((d, r) for d, r in part.rejected)["HS-GHOST"] is RejectReason.UNKNOWN_DOSSIER
    rejected = [d for d in part.decisions if d.rejection is not None]
    assert all(d.state is None and d.portal is None and d.timers is None for d in rejected)
    assert all("HS-" in d.rejection.detail for d in rejected if d.rejection)
    assert part.records["HS-A"].state.status == "finished"
    assert part.records["HS-B"].state.status == "received"
    assert "HS-GHOST" not in part.records


def test_a_crash_redelivers_onto_the_saved_records_and_repeats_outputs_identically(catalogue):
    """The worker dies after saving a third of the records but before the offsets of the last
    batch are committed: the batch is read again (same offsets) onto the saved records."""
    events: list[tuple[Facts, int, int]] = []  # facts, partition, offset in it
    counts = [0] * PARTITIONS
    for event, pinned in march_script().ordered():
        p = partition_of(event.envelope.dossier_id or "", pinned)
        events.append((facts(event), p, counts[p]))
        counts[p] += 1
    crash, committed = len(events) // 3, len(events) // 4
    parts = [Partition(catalogue) for _ in range(PARTITIONS)]
    for f, p, offset in events[:crash]:
        parts[p].apply(f, offset)
    # Restart: the saved records; every record after the last commit is read again.
    restarted = [Partition(catalogue, records=dict(p.records)) for p in parts]
    for i, (f, p, offset) in enumerate(events[committed:], start=committed):
        d = restarted[p].apply(f, offset)
        if i < crash:
            assert d.redelivered and d.timers is None, (i, f.kind)
            first = next(s for _, s in parts[p].portal if s.view["event_id"] == f.event_id)
            assert d.portal == first  # the very same portal record again
        else:
            assert not d.redelivered
    merged = [
        Partition(catalogue, r.records, r.watermark, alerts=[*p.alerts, *r.alerts])
        for p, r in zip(parts, restarted, strict=True)
    ]
    assert march_totals(merged) == EXPECTED_MARCH
    assert alert_set(merged) == EXPECTED_ALERTS
    ids = {alert_id(d, a.key) for m in merged for d, a in m.alerts}
    assert len(ids) == len(EXPECTED_ALERTS)  # a repeat after the crash has the same id


def test_partitions_worked_by_different_workers_give_the_same_results_as_one(catalogue):
    """Two workers = disjoint sets of partitions, each with its own clock: the union of what
    they decide is what one worker decides."""
    apart = run(catalogue, march_script())
    one = Partition(catalogue)
    for event, _ in march_script().ordered():
        one.apply(facts(event))
    assert alert_set(apart) == alert_set([one]) == EXPECTED_ALERTS
    assert march_totals(apart) == march_totals([one]) == EXPECTED_MARCH


def test_finishing_cancels_the_pending_alerts_and_a_late_handoff_fires_at_once(catalogue):
    s = Script()
    s.received("HS-X", t(3, 8), t(14, 16))
    s.handoff("HS-X", 1, LAND, t(3, 9), t(6, 16), t(3, 10), t(5, 10))
    s.finish("HS-X", t(7, 9), t(7, 10))
    s.received("HS-Y", t(3, 8), t(14, 16))
    s.handoff("HS-Y", 1, LAND, t(10, 9), t(6, 16), None, None)  # its step due already past
    part = Partition(catalogue)
    by_kind: dict[tuple[str, str], Decision] = {}
    for event, _ in s.ordered():
        by_kind[(event.envelope.dossier_id or "", event.EVENT_TYPE)] = part.apply(facts(event))
    finished = by_kind[("HS-X", "processing_finished")]
    assert set(finished.cancelled) == {"dossier:warning", "dossier:overdue", "dossier:apology"}
    returned = by_kind[("HS-X", "handoff_returned")]
    assert {"step:1:warning", "step:1:overdue"} <= set(returned.cancelled)
    late = by_kind[("HS-Y", "handoff_sent")]
    assert late.timers is not None
    assert {a.key for a in late.timers.alerts} >= {"step:1:warning", "step:1:overdue"}
    assert late.final is not None and "step:1:overdue" in late.final.sent_alerts
    assert late.counts_at[0] == t(10, 9) and len(late.counts_at) == 2


def test_the_decision_is_a_function_of_its_inputs(catalogue):
    f = facts(march_script().ordered()[0][0])
    proc = catalogue.get(PROC)
    a = decide(None, f, proc, f.at, partition=0, offset=0, rules=RULES)
    b = decide(None, f, proc, f.at, partition=0, offset=0, rules=RULES)
    assert a == b and a.state is not None and a.portal is not None
    assert a.counts_at == (f.at,) and a.inbox is None and a.rejection is None


def test_the_record_a_decision_saves_carries_its_pending_alerts_and_they_are_exact():
    """The next event's decision reads the pending alert keys the last one worked out (see
    DossierRecord.pending_memo) instead of computing them again: they must be the very keys a
    fresh computation gives, and the decisions the same either way."""
    from dataclasses import replace

    from lienthong.domain.alerts import AlertRules, pending_alerts
    from lienthong.domain.decide import pending_alert_keys

    rules = RULES
    part = Partition(load_procedures())
    remembered = 0
    for event, _pinned in march_script().ordered():
        f = facts(event)
        before = part.records.get(f.dossier_id)
        procedure = part.catalogue.get(f.procedure or (before.procedure if before else "") or "")
        now = f.at
        with_memo = decide(before, f, procedure, now, partition=0, offset=0, rules=rules)
        cleared = replace(before) if before is not None else None  # replace() drops the memo
        fresh = decide(cleared, f, procedure, now, partition=0, offset=0, rules=rules)
        assert with_memo.cancelled == fresh.cancelled
        final = with_memo.final
        if final is not None and final.pending_memo is not None:
            keys = frozenset(a.key for a in pending_alerts(final, rules))
            assert final.pending_memo[2] == keys == pending_alert_keys(final, rules)
            assert pending_alert_keys(final, AlertRules()) == keys  # other rules: computed
            remembered += 1
        part.apply(f)
    assert remembered > 10
