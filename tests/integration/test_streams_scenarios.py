"""Stream processors end to end: kafka-python producer → real worker subprocesses → outputs.

A scripted month (March 2025) of dossiers: counter, online and postal intake; an inter-agency
chain through a central vertical agency (tax); a supplement pause; two supplements; a refusal;
a withdrawal; a late step; an unaccepted handoff; a dossier left waiting for documents; an
open one. Workers run with the event-time clock (replay mode), so every deadline in March
fires once the April "tick" dossiers push each partition's watermark past the month.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.models import (
    VN_TZ,
    DossierReceived,
    DossierSubmitted,
    DossierWithdrawn,
    Event,
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

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công
LAND = "000.01.11.H10"  # Văn phòng Đăng ký đất đai
TAX = "000.00.60.H10"  # Cục Thuế: central vertical agency (ngành dọc)
PROC = "1.004227"
SUBJECT = {"kind": "citizen", "identifier_hash": "ab" * 32}
NS = uuid.UUID("2f1b9a7e-4c1d-5e2a-9b0c-74657374696e")
REPLAY = {"LIENTHONG_STREAMS__CLOCK": "replay", "LIENTHONG_STREAMS__STATS_FLUSH_S": "0.3"}


def t(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VN_TZ)


@dataclass
class Script:
    """Events in publication order (global time order), with deterministic event ids."""

    events: list[tuple[Event, int | None]] = field(default_factory=list)

    def add(
        self,
        cls: type[Event],
        dossier: str,
        at: datetime,
        partition: int | None = None,
        **fields: Any,
    ) -> None:
        n = sum(1 for e, _ in self.events if e.envelope.dossier_id == dossier)
        event = cls.create(
            event_id=uuid.uuid5(NS, f"{dossier}/{n}"),
            dossier_id=dossier,
            producer_agency=fields.pop("producer", CENTER),
            occurred_at=at,
            recorded_at=at,
            **fields,
        )
        self.events.append((event, partition))

    def received(
        self,
        dossier: str,
        at: datetime,
        due: datetime,
        channel: str = "counter",
        partition: int | None = None,
    ) -> None:
        self.add(
            DossierReceived,
            dossier,
            at,
            partition,
            channel=channel,
            procedure_code=PROC,
            receiving_agency=CENTER,
            subject=SUBJECT,
            received_at=at,
            appointment_at=due,
        )

    def handoff(
        self,
        dossier: str,
        step: int,
        to: str,
        sent: datetime,
        due: datetime,
        accepted: datetime | None,
        returned: datetime | None,
    ) -> None:
        hid = f"{dossier}-h{step}"
        common = {"handoff_id": hid, "from_agency": CENTER, "to_agency": to, "step": step}
        self.add(HandoffSent, dossier, sent, step_due_at=due, **common)
        if accepted:
            self.add(HandoffAccepted, dossier, accepted, producer=to, **common)
        if returned:
            # Same from/to as the handoff: ``to_agency`` (the step's agency) returns its result.
            self.add(HandoffReturned, dossier, returned, producer=to, outcome="completed", **common)

    def supplement(
        self, dossier: str, asked: datetime, got: datetime | None, by: str = CENTER
    ) -> None:
        self.add(
            SupplementRequested,
            dossier,
            asked,
            producer=by,
            requesting_agency=by,
            reason="thiếu giấy tờ",
            documents=["so-do"],
        )
        if got:
            self.add(SupplementReceived, dossier, got, receiving_agency=CENTER, documents=["so-do"])

    def finish(
        self, dossier: str, at: datetime, returned: datetime, method: str = "counter"
    ) -> None:
        self.add(ProcessingFinished, dossier, at, agency=CENTER, outcome="approved")
        self.add(ResultReturned, dossier, returned, agency=CENTER, method=method)

    def ordered(self) -> list[tuple[Event, int | None]]:
        return sorted(self.events, key=lambda ep: ep[0].envelope.occurred_at)


def march_script(partitions: int = 6) -> Script:
    s = Script()
    # D1 counter, chain CENTER → LAND → TAX (central), finished early.
    s.received("HS-CHAIN", t(3, 8), t(14, 16))
    s.handoff("HS-CHAIN", 1, LAND, t(3, 9), t(6, 16), t(3, 10), t(5, 10))
    s.handoff("HS-CHAIN", 2, TAX, t(5, 11), t(7, 16), t(5, 14), t(6, 10))
    s.finish("HS-CHAIN", t(7, 9), t(7, 10))
    # D2 online, one supplement pause, finished early.
    s.add(
        DossierSubmitted,
        "HS-ONLINE",
        t(3, 20),
        procedure_code=PROC,
        receiving_agency=CENTER,
        subject=SUBJECT,
    )
    s.received("HS-ONLINE", t(4, 8), t(14, 16), channel="online")
    s.supplement("HS-ONLINE", t(5, 9), t(6, 9))
    s.finish("HS-ONLINE", t(10, 10), t(10, 15))
    # D3 postal, two supplements (late by QĐ 766 whatever the clock), returned by post.
    s.received("HS-POSTAL", t(4, 9), t(12, 16), channel="postal")
    s.supplement("HS-POSTAL", t(4, 10), t(5, 10))
    s.supplement("HS-POSTAL", t(6, 10), t(7, 10))
    s.finish("HS-POSTAL", t(10, 9), t(11, 9), method="post")
    # D4 submitted online, refused at intake.
    s.add(
        DossierSubmitted,
        "HS-REFUSED",
        t(4, 10),
        procedure_code=PROC,
        receiving_agency=CENTER,
        subject=SUBJECT,
    )
    s.add(IntakeRefused, "HS-REFUSED", t(4, 11), agency=CENTER, reason="sai thẩm quyền")
    # D5 withdrawn by the citizen.
    s.received("HS-WITHDRAWN", t(5, 8), t(19, 16))
    s.add(DossierWithdrawn, "HS-WITHDRAWN", t(6, 9), agency=CENTER, reason="rút hồ sơ")
    # D6 late step at LAND, dossier finished late.
    s.received("HS-LATE", t(3, 9), t(7, 16))
    s.handoff("HS-LATE", 1, LAND, t(3, 10), t(5, 16), t(3, 11), t(7, 9))
    s.finish("HS-LATE", t(10, 9), t(10, 10))
    # D7 handoff to the central tax office never accepted: escalation, overdue, apology.
    s.received("HS-ESCALATE", t(10, 8), t(24, 16))
    s.handoff("HS-ESCALATE", 1, TAX, t(10, 9), t(13, 16), None, None)
    # D8 waiting for documents at month end; D9 open and within time.
    s.received("HS-WAITING", t(20, 8), t(10, 16, month=4))
    s.supplement("HS-WAITING", t(25, 9), None)
    s.received("HS-OPEN", t(24, 8), t(15, 16, month=4))
    # April ticks: one dossier per partition pushes every watermark past March.
    for p in range(partitions):
        s.received(f"TICK-{p}", t(2, 9, month=4), t(30, 16, month=5), partition=p)
    return s


EXPECTED_MARCH = {
    "received": 8,
    "carried_over": 0,
    "finished_early": 2,
    "finished_on_time": 0,
    "finished_late": 2,
    "in_progress_on_time": 1,
    "in_progress_overdue": 1,
    "waiting_supplement": 1,
    "refused": 1,
    "withdrawn": 1,
    "returned_by_post": 1,
    "received_online": 1,
    "received_postal": 1,
    "on_time_rate": 0.5,
    "online_rate": 0.125,
    "postal_rate": 0.125,
}
EXPECTED_ALERTS = {
    ("HS-LATE", "deadline_warning", "step", 1),
    ("HS-LATE", "deadline_overdue", "step", 1),
    ("HS-LATE", "deadline_warning", "dossier", None),
    ("HS-LATE", "deadline_overdue", "dossier", None),
    ("HS-LATE", "apology_issued", None, None),
    ("HS-ESCALATE", "handoff_escalated", None, 1),
    ("HS-ESCALATE", "deadline_warning", "step", 1),
    ("HS-ESCALATE", "deadline_overdue", "step", 1),
    ("HS-ESCALATE", "deadline_warning", "dossier", None),
    ("HS-ESCALATE", "deadline_overdue", "dossier", None),
    ("HS-ESCALATE", "apology_issued", None, None),
}


def publish(
    bootstrap: str,
    topics: dict[str, str],
    codec: AvroCodec,
    events: list[tuple[Event, int | None]],
    times: int = 1,
    pace_s: float = 0.0,
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for event, partition in events:
        value = codec.encode(event)
        if pace_s:
            time.sleep(pace_s)
        for _ in range(times):
            producer.send(
                topics["dossier-events"],
                key=event.envelope.dossier_id.encode(),
                value=value,
                partition=partition,
            )
    producer.flush()
    producer.close()


def consume(bootstrap: str, topic: str, codec: AvroCodec | None, idle_s: float = 3.0) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(idle_s * 1000),
        enable_auto_commit=False,
    )
    try:
        return [codec.decode(m.value) if codec else m for m in consumer]
    finally:
        consumer.close()


def wait_stats(worker, expected: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = worker.get_json(f"/stats?procedure={PROC}&period=month:2025-03")
        if body["totals"] == expected:
            worker.wait_caught_up()  # a wrongly double-counting worker has overshot by now
            return worker.get_json(f"/stats?procedure={PROC}&period=month:2025-03")
        time.sleep(0.5)
    return body


def alert_set(alerts: list[Event]) -> set[tuple]:
    out = set()
    for a in alerts:
        scope = getattr(a, "scope", None)
        out.add(
            (a.envelope.dossier_id, a.EVENT_TYPE, scope and scope.value, getattr(a, "step", None))
        )
    return out


@pytest.fixture
def codec(bus_settings) -> AvroCodec:
    return AvroCodec(registry_from_settings(bus_settings))


def test_scripted_month_gives_the_expected_counts_alerts_slip_and_portal_feed(
    kafka_bootstrap, catalogue_topics, codec, start_worker
):
    script = march_script()
    publish(kafka_bootstrap, catalogue_topics, codec, script.ordered())
    worker = start_worker(REPLAY)

    body = wait_stats(worker, EXPECTED_MARCH)
    assert body["totals"] == EXPECTED_MARCH, (body, worker.log_tail())
    by_channel = {r["channel"]: r for r in body["rows"]}
    assert by_channel["postal"]["returned_by_post"] == 1
    assert by_channel["online"]["refused"] == 1 and by_channel["online"]["received"] == 1

    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    assert alert_set(alerts) == EXPECTED_ALERTS
    assert len({a.envelope.event_id for a in alerts}) == len(EXPECTED_ALERTS)
    escalation = next(a for a in alerts if a.EVENT_TYPE == "handoff_escalated")
    assert (escalation.from_agency, escalation.to_agency) == (CENTER, TAX)
    # 09:00 + 4 working hours (07:30–11:30, 13:00–17:00) = 14:30 the same day.
    assert escalation.accept_due_at == t(10, 14, 30)
    apology = next(
        a for a in alerts if a.EVENT_TYPE == "apology_issued" and a.envelope.dossier_id == "HS-LATE"
    )
    assert apology.previous_appointment_at == t(7, 16)
    assert apology.responsible_agency == LAND  # the step that overran its due
    assert apology.new_appointment_at > t(7, 16)

    slip = worker.get_json("/dossiers/slip?id=HS-LATE")
    assert slip["outcome"] == "late" and slip["responsible_agencies"] == [LAND]
    assert [(s["step"], s["agency"], s["on_time"]) for s in slip["steps"]] == [(1, LAND, False)]
    chain = worker.get_json("/dossiers/slip?id=HS-CHAIN")
    assert chain["outcome"] == "early"
    assert [(s["agency"], s["on_time"]) for s in chain["steps"]] == [(LAND, True), (TAX, True)]

    portal = consume(kafka_bootstrap, catalogue_topics["portal-status"], codec)
    applied = len(script.events)
    assert len(portal) == applied
    late = [p for p in portal if p.MaHoSo == "HS-POSTAL"]
    # supplement_received resumes where the dossier was (received, 2), not "processing"
    assert [p.TrangThaiHoSo for p in late] == [2, 5, 2, 5, 2, 9, 10]
    assert all(p.KenhThucHien == 3 and p.MaTTHC == PROC for p in late)
    assert late[-1].NgayTra == "20250311090000"
    assert len(late[-1].QuaTrinhXuLy) == 7

    inbox = consume(kafka_bootstrap, catalogue_topics["agency-inbox"], None)
    assert sorted(m.key.decode() for m in inbox) == sorted([LAND, TAX, LAND, TAX])


def test_every_event_twice_gives_the_same_counts_and_alerts(
    kafka_bootstrap, catalogue_topics, codec, start_worker
):
    publish(kafka_bootstrap, catalogue_topics, codec, march_script().ordered(), times=2)
    worker = start_worker(REPLAY)
    body = wait_stats(worker, EXPECTED_MARCH)
    assert body["totals"] == EXPECTED_MARCH, (body, worker.log_tail())
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    assert alert_set(alerts) == EXPECTED_ALERTS
    assert len(alerts) == len(EXPECTED_ALERTS)
    dead = consume(kafka_bootstrap, catalogue_topics["dead-letters"], None, idle_s=1.0)
    assert dead == []


def bad_events_script() -> Script:
    """An unknown dossier, an illegal transition and a stale event among good ones (publish
    ``events`` in this order, not time order)."""
    s = Script()
    s.add(ProcessingFinished, "HS-GHOST", t(3, 9), agency=CENTER, outcome="approved")
    s.received("HS-A", t(3, 9), t(14, 16))
    s.add(ResultReturned, "HS-A", t(3, 10), agency=CENTER, method="counter")  # not finished
    s.add(ProcessingFinished, "HS-A", t(4, 10), agency=CENTER, outcome="approved")
    s.add(DossierWithdrawn, "HS-A", t(3, 11), agency=CENTER)  # older than the state
    s.received("HS-B", t(4, 11), t(14, 16))
    return s


def test_unknown_illegal_and_stale_events_are_dead_lettered_and_processing_continues(
    kafka_bootstrap, catalogue_topics, codec, start_worker
):
    s = bad_events_script()
    publish(kafka_bootstrap, catalogue_topics, codec, s.events)
    worker = start_worker(REPLAY)
    dead = consume(kafka_bootstrap, catalogue_topics["dead-letters"], None, idle_s=4.0)
    reasons = {m.key.decode(): dict(m.headers)["lienthong.dlq.error_class"].decode() for m in dead}
    assert len(dead) == 3, worker.log_tail()
    assert reasons["HS-GHOST"] == "UnknownDossier"
    classes = sorted(dict(m.headers)["lienthong.dlq.error_class"].decode() for m in dead)
    assert classes == ["IllegalTransition", "StaleEvent", "UnknownDossier"]
    assert worker.get_json("/dossiers/slip?id=HS-A")["status"] == "finished"
    assert worker.get_json("/dossiers/slip?id=HS-B")["status"] == "received"


FILLER_PROC = "1.004238"


def filler_script(n: int) -> Script:
    """``n`` simple counter dossiers of another procedure, each finished early in March."""
    s = Script()
    for i in range(n):
        day = 3 + i % 18
        dossier = f"HS-F{i:04d}"
        s.add(
            DossierReceived,
            dossier,
            t(day, 8, i % 60),
            channel="counter",
            procedure_code=FILLER_PROC,
            receiving_agency=CENTER,
            subject=SUBJECT,
            received_at=t(day, 8, i % 60),
            appointment_at=t(28, 16),
        )
        s.add(ProcessingFinished, dossier, t(day, 10, i % 60), agency=CENTER, outcome="approved")
        s.add(ResultReturned, dossier, t(day, 11, i % 60), agency=CENTER, method="counter")
    return s


def portal_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=300,
        enable_auto_commit=False,
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def test_sigkill_mid_stream_then_restart_gives_the_same_counts_and_alerts(
    kafka_bootstrap, catalogue_topics, codec, start_worker
):
    script = march_script()
    filler = filler_script(300)
    events = sorted(script.events + filler.events, key=lambda ep: ep[0].envelope.occurred_at)
    first = start_worker(REPLAY)
    # Two thirds of the events arrive while the worker runs; kill it (SIGKILL: no clean
    # shutdown, no final commit) once a third is processed, then publish the rest while it is
    # down. The last third is held back so that "mid-stream" does not depend on how fast the
    # worker is next to the feeder.
    head, tail = events[: 2 * len(events) // 3], events[2 * len(events) // 3 :]
    feeder = threading.Thread(
        target=publish, args=(kafka_bootstrap, catalogue_topics, codec, head, 1, 0.004)
    )
    feeder.start()
    deadline = time.monotonic() + 180
    done = 0
    while time.monotonic() < deadline:
        done = portal_count(kafka_bootstrap, catalogue_topics["portal-status"])
        if done >= len(events) // 3:
            break
    first.kill()
    feeder.join()
    assert 0 < done < len(events), "the worker was not killed mid-stream"
    publish(kafka_bootstrap, catalogue_topics, codec, tail)
    second = start_worker(REPLAY)
    body = wait_stats(second, EXPECTED_MARCH)
    assert body["totals"] == EXPECTED_MARCH, (body, second.log_tail())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        filler_totals = second.get_json(f"/stats?procedure={FILLER_PROC}&period=month:2025-03")
        if filler_totals["totals"]["finished_early"] >= 300:
            break
        time.sleep(0.5)
    second.wait_caught_up()  # a double-counting worker has overshot by now
    filler_totals = second.get_json(f"/stats?procedure={FILLER_PROC}&period=month:2025-03")
    assert filler_totals["totals"]["received"] == 300
    assert filler_totals["totals"]["finished_early"] == 300
    assert filler_totals["totals"]["in_progress_on_time"] == 0
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    # A re-emission after the crash carries the same id: the set of ids is the alert set.
    assert alert_set(alerts) == EXPECTED_ALERTS
    assert len({a.envelope.event_id for a in alerts}) == len(EXPECTED_ALERTS)
    portal = consume(kafka_bootstrap, catalogue_topics["portal-status"], codec)
    # Every status change is on the feed at least once; repeats are identical records.
    assert len({p.envelope.event_id for p in portal}) == len(events)
    by_id: dict = {}
    for p in portal:
        assert by_id.setdefault(p.envelope.event_id, p) == p


def test_two_workers_give_the_same_results_as_one(
    kafka_bootstrap, catalogue_topics, codec, start_worker
):
    workers = [start_worker(REPLAY), start_worker(REPLAY)]
    # Both in the group before any input, so the dossier partitions really are shared.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        owned = [
            {p for p in w.get_json("/health")["assigned_partitions"] if "dossier-events" in p}
            for w in workers
        ]
        if all(owned) and not owned[0] & owned[1]:
            break
        time.sleep(0.5)
    assert all(owned) and not owned[0] & owned[1], owned
    publish(kafka_bootstrap, catalogue_topics, codec, march_script().ordered())
    deadline = time.monotonic() + 90
    totals: list[dict] = []
    while time.monotonic() < deadline:
        totals = [
            w.get_json(f"/stats?procedure={PROC}&period=month:2025-03")["totals"] for w in workers
        ]
        if all(t == EXPECTED_MARCH for t in totals):
            break
        time.sleep(0.5)
    # Either worker answers with the full counts (the one without them forwards the request).
    assert all(t == EXPECTED_MARCH for t in totals), (totals, workers[1].log_tail())
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    assert alert_set(alerts) == EXPECTED_ALERTS
    assert len({a.envelope.event_id for a in alerts}) == len(EXPECTED_ALERTS)
