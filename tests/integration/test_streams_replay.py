"""Replay mode over a simulated month equals the rules computed directly.

A seeded generator (domain rules only: working calendar, appointments, procedure steps)
produces a month of dossiers across procedures, channels and paths (straight, supplements,
inter-agency handoffs with late steps and unaccepted handoffs, refusals, withdrawals, open at
month end). The worker replays it with the event-time clock; the counts and the alerts must
equal what the domain functions give when applied dossier by dossier without Kafka.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from lienthong.domain.alerts import AlertRules, due_alerts
from lienthong.domain.calendar import default_calendar
from lienthong.domain.deadlines import compute_appointment
from lienthong.domain.procedures import load_procedures
from lienthong.domain.stats import FIGURES, figures, period_of, rates, stats_key
from lienthong.domain.tracking import Applied, track_in
from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.models import (
    DossierReceived,
    DossierSubmitted,
    DossierWithdrawn,
    HandoffAccepted,
    HandoffReturned,
    HandoffSent,
    IntakeRefused,
    ProcessingFinished,
    ResultReturned,
    SupplementReceived,
    SupplementRequested,
)
from lienthong.schemas.registry import registry_from_settings
from lienthong.streams.facts import facts_of as facts_from
from tests.integration.test_streams_scenarios import (
    CENTER,
    REPLAY,
    SUBJECT,
    Script,
    alert_set,
    consume,
    publish,
    t,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def codec(bus_settings) -> AvroCodec:
    return AvroCodec(registry_from_settings(bus_settings))


PROCEDURES = ("1.004227", "1.004238", "2.000488")
MONTH_END = t(1, 0, month=4)
TICK_AT = t(2, 9, month=4)


def generate_month(n: int, seed: int = 7) -> Script:
    cal = default_calendar()
    catalogue = load_procedures()
    rng = random.Random(seed)
    s = Script()

    def later(at: datetime, hours: float) -> datetime:
        return cal.add_working_time(at, timedelta(hours=hours))

    for i in range(n):
        dossier = f"HS-M{i:05d}"
        proc = catalogue[rng.choice(PROCEDURES)]
        day = rng.randint(3, 28)
        at = cal.next_working_instant(t(day, rng.randint(7, 16), rng.randint(0, 59)))
        channel = rng.choices(["counter", "postal", "online"], [80, 12, 8])[0]
        path = rng.random()
        if channel == "online" and path < 0.05:
            s.add(
                DossierSubmitted,
                dossier,
                at,
                procedure_code=proc.code,
                receiving_agency=CENTER,
                subject=SUBJECT,
            )
            s.add(IntakeRefused, dossier, later(at, 2), agency=CENTER, reason="thiếu hồ sơ")
            continue
        appointment = None
        if rng.random() < 0.5:
            appointment = compute_appointment(at, proc.duration, cutoff=proc.cutoff).due
        s.add(
            DossierReceived,
            dossier,
            at,
            channel=channel,
            procedure_code=proc.code,
            receiving_agency=CENTER,
            subject=SUBJECT,
            received_at=at,
            appointment_at=appointment,
        )
        cursor = at
        if path < 0.08:
            s.add(DossierWithdrawn, dossier, later(cursor, rng.uniform(1, 20)), agency=CENTER)
            continue
        supplements = 2 if path > 0.95 else 1 if path > 0.8 else 0
        total = proc.working_time(cal)
        for order, step in enumerate(proc.steps[1:], start=1):
            if step.agency == CENTER:
                continue
            sent = later(cursor, rng.uniform(0.5, 3))
            share = total * step.share / 100
            due = cal.add_working_time(sent, share)
            hid = f"{dossier}-{order}"
            common = {
                "handoff_id": hid,
                "from_agency": CENTER,
                "to_agency": step.agency,
                "step": order,
            }
            s.add(HandoffSent, dossier, sent, step_due_at=due, **common)
            accept = later(sent, rng.choice([0.5, 1, 2, 6, 12]))
            if rng.random() < 0.03:
                cursor = sent
                break  # never accepted: escalation, then overdue
            s.add(HandoffAccepted, dossier, accept, producer=step.agency, **common)
            if supplements:
                asked = later(accept, 1)
                got = later(asked, rng.uniform(2, 16))
                s.add(
                    SupplementRequested,
                    dossier,
                    asked,
                    producer=step.agency,
                    requesting_agency=step.agency,
                    reason="bổ sung",
                    documents=["x"],
                )
                s.add(SupplementReceived, dossier, got, receiving_agency=CENTER, documents=["x"])
                supplements -= 1
                accept = got
            done = later(accept, share.total_seconds() / 3600 * rng.uniform(0.3, 1.5))
            s.add(
                HandoffReturned, dossier, done, producer=step.agency, outcome="completed", **common
            )
            cursor = done
        else:
            finished = later(cursor, rng.uniform(0.5, 8))
            s.add(ProcessingFinished, dossier, finished, agency=CENTER, outcome="approved")
            method = "post" if channel == "postal" else "counter"
            s.add(
                ResultReturned,
                dossier,
                later(finished, rng.uniform(1, 8)),
                agency=CENTER,
                method=method,
            )
    # The month ends on March 31: whatever would happen later has not happened yet.
    s.events = [(e, p) for e, p in s.events if e.envelope.occurred_at < MONTH_END]
    for p in range(6):
        s.received(f"TICK-{p}", TICK_AT, t(30, 16, month=5), partition=p)
    return s


def direct(script: Script) -> tuple[dict[str, dict[str, int]], set[tuple]]:
    """Counts per key for March and the alerts, from the domain functions alone."""
    catalogue = load_procedures()
    rules = AlertRules()
    by_dossier: dict[str, list] = defaultdict(list)
    for event, _ in script.ordered():
        by_dossier[event.envelope.dossier_id].append(event)
    records: dict[str, Any] = {}
    alerts: set[tuple] = set()

    def fire(record: Any, now: datetime) -> Any:
        due = due_alerts(record, now, rules)
        for a in due:
            kind = {
                "warning": "deadline_warning",
                "overdue": "deadline_overdue",
                "apology": "apology_issued",
                "escalation": "handoff_escalated",
            }[a.kind]
            scope = a.scope if a.kind in ("warning", "overdue") else None
            alerts.add((record.id, kind, scope, a.step))
        return record.with_alerts([a.key for a in due])

    for dossier, events in by_dossier.items():
        record = None
        for offset, event in enumerate(events):
            facts = facts_from(event)
            if record is not None:
                record = fire(record, facts.at)
            result = track_in(catalogue, record, facts, partition=0, offset=offset)
            assert isinstance(result, Applied), (dossier, result)
            record = fire(result.record, facts.at)
        records[dossier] = fire(record, TICK_AT)
    per_key: dict[str, list] = defaultdict(list)
    for record in records.values():
        key = stats_key(record)
        if key:
            per_key[key].append(record)
    march = period_of("month", t(15, 12))
    counts = {k: figures(rs, march, TICK_AT) for k, rs in per_key.items()}
    return counts, alerts


def test_replayed_month_equals_the_rules_computed_directly(
    kafka_bootstrap,
    catalogue_topics,
    codec,
    start_worker,
):
    script = generate_month(250)
    expected_by_key, expected_alerts = direct(script)
    expected_total = dict.fromkeys(FIGURES, 0)
    for f in expected_by_key.values():
        expected_total = {k: expected_total[k] + f[k] for k in FIGURES}
    expected_total |= rates(expected_total)
    assert expected_total["finished_late"] > 0 and expected_total["in_progress_overdue"] > 0
    assert expected_total["waiting_supplement"] > 0 and expected_total["withdrawn"] > 0

    publish(kafka_bootstrap, catalogue_topics, codec, script.ordered())
    worker = start_worker(REPLAY)
    deadline = time.monotonic() + 90
    body: dict = {}
    while time.monotonic() < deadline:
        body = worker.get_json("/stats?period=month:2025-03")
        if body["totals"] == expected_total:
            break
        time.sleep(0.5)
    worker.wait_caught_up()  # all consumed and committed: any double count shows now
    body = worker.get_json("/stats?period=month:2025-03")
    assert body["totals"] == expected_total, worker.log_tail()
    got_by_key = {
        f"{r['agency']}|{r['procedure']}|{r['channel']}": {k: r[k] for k in FIGURES}
        for r in body["rows"]
    }
    assert got_by_key == expected_by_key
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    assert alert_set(alerts) == expected_alerts
    assert len({a.envelope.event_id for a in alerts}) == len(expected_alerts)
