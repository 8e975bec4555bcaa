"""Ground truth of the deadline alerts (warning, overdue, apology, escalation).

Hand-built dossiers check each rule on its own; a cross-check replays a simulated month the
way a replay-mode worker sees it (per-partition event-time watermark, the tracker record and
the alert scheduling of ``lienthong.domain``) and must find exactly the alerts the truth
predicts, without Kafka.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lienthong.domain.alerts import (
    AlertRules,
    alert_id,
    apology_for,
    due_alerts,
    next_fire,
    subtract_working_time,
)
from lienthong.domain.calendar import default_calendar
from lienthong.domain.procedures import load_procedures
from lienthong.domain.tracking import Applied, track_in
from lienthong.schemas import AvroCodec, FileSchemaRegistry
from lienthong.schemas import models as m
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.validate import Validator
from lienthong.simulators.faults import FaultConfig
from lienthong.simulators.province import Period, SimConfig
from lienthong.simulators.run import Plan
from lienthong.simulators.truth import (
    DossierTruth,
    TruthBuilder,
    fold_dossier,
    partition_of,
    predict_alerts,
)

VN = m.VN_TZ
JAN = Period.parse("2026-01")
CENTER = "000.00.01.H10"
DEPT = "000.00.07.H10"
TAX = "000.00.60.H10"
PROC = "2.000620"
RULES = AlertRules()  # one working day's warning, four working hours to accept a handoff
CAL = default_calendar()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=VN)


class Script:
    """A dossier's events written by hand, in delivery order."""

    def __init__(self, dossier_id: str = "H10.TEST.0001") -> None:
        self.id = dossier_id
        self.events: list[m.Event] = []

    def _add(self, cls: type[m.Event], when: datetime, producer: str, **fields: Any) -> Script:
        self.events.append(
            cls.create(
                dossier_id=self.id,
                producer_agency=producer,
                occurred_at=when,
                recorded_at=when,
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/{len(self.events)}"),
                **fields,
            )
        )
        return self

    def received(self, when: datetime, due: datetime) -> Script:
        return self._add(
            m.DossierReceived,
            when,
            CENTER,
            channel="counter",
            procedure_code=PROC,
            receiving_agency=CENTER,
            subject={"kind": "citizen", "identifier_hash": "0" * 64},
            received_at=when,
            appointment_at=due,
        )

    def sent(self, when: datetime, step: int, to: str, due: datetime, frm: str = CENTER) -> Script:
        return self._add(
            m.HandoffSent,
            when,
            frm,
            handoff_id=f"{self.id}/{step}",
            from_agency=frm,
            to_agency=to,
            step=step,
            step_due_at=due,
        )

    def accepted(self, when: datetime, step: int, to: str, frm: str = CENTER) -> Script:
        return self._add(
            m.HandoffAccepted,
            when,
            to,
            handoff_id=f"{self.id}/{step}",
            from_agency=frm,
            to_agency=to,
            step=step,
        )

    def returned(self, when: datetime, step: int, to: str, frm: str = CENTER) -> Script:
        return self._add(
            m.HandoffReturned,
            when,
            to,
            handoff_id=f"{self.id}/{step}",
            from_agency=frm,
            to_agency=to,
            step=step,
            outcome="completed",
        )

    def supplement(self, asked: datetime, back: datetime, by: str = DEPT) -> Script:
        self._add(
            m.SupplementRequested,
            asked,
            by,
            requesting_agency=by,
            reason="Bổ sung giấy tờ",
            documents=["Bản sao"],
            supplement_due_at=asked + timedelta(days=5),
        )
        return self._add(
            m.SupplementReceived, back, CENTER, receiving_agency=CENTER, documents=["Bản sao"]
        )

    def finished(self, when: datetime, by: str = DEPT) -> Script:
        return self._add(m.ProcessingFinished, when, by, agency=by, outcome="approved")

    def truth(self) -> DossierTruth:
        return fold_dossier(self.id, self.events)


def keys(alerts: Iterable[Any]) -> dict[str, datetime]:
    return {a.key: a.fire_at for a in alerts}


# -- hand-built dossiers -------------------------------------------------------------------


def test_warning_one_working_day_before_the_appointment_then_overdue_and_apology() -> None:
    # Received Mon 5 Jan, appointment Thu 8 Jan 10:00; nothing happens until Fri 9 Jan.
    s = Script().received(at(5, 9), at(8, 10))
    got = keys(predict_alerts(s.truth(), at(9, 16), RULES))
    assert got == {
        "dossier:warning": at(7, 10),  # one working day (8 h) earlier
        "dossier:overdue": at(8, 10),
        "dossier:apology": at(8, 10),
    }


def test_nothing_fires_before_the_clock_reaches_it() -> None:
    s = Script().received(at(5, 9), at(8, 10))
    assert keys(predict_alerts(s.truth(), at(7, 9, 59), RULES)) == {}
    assert set(keys(predict_alerts(s.truth(), at(7, 10), RULES))) == {"dossier:warning"}


def test_finishing_first_cancels_the_warning() -> None:
    s = Script().received(at(5, 9), at(8, 10)).finished(at(7, 9, 30), by=CENTER)
    assert predict_alerts(s.truth(), at(30, 17), RULES) == []


def test_finishing_after_the_warning_keeps_it_but_cancels_overdue() -> None:
    s = Script().received(at(5, 9), at(8, 10)).finished(at(7, 11), by=CENTER)
    assert set(keys(predict_alerts(s.truth(), at(30, 17), RULES))) == {"dossier:warning"}


def test_finishing_exactly_at_the_due_instant_is_too_late() -> None:
    """The bus fires everything due by the watermark before it applies the event."""
    s = Script().received(at(5, 9), at(8, 10)).finished(at(8, 10), by=CENTER)
    assert set(keys(predict_alerts(s.truth(), at(30, 17), RULES))) == {
        "dossier:warning",
        "dossier:overdue",
        "dossier:apology",
    }


def test_supplement_pause_moves_the_due_instant() -> None:
    # Paused Tue 6 Jan 9:00 → Wed 7 Jan 9:00: one working day; due moves to Fri 9 Jan 10:00.
    s = Script().received(at(5, 9), at(8, 10)).supplement(at(6, 9), at(7, 9))
    got = keys(predict_alerts(s.truth(), at(12, 9), RULES))
    assert got["dossier:warning"] == at(8, 10)
    assert got["dossier:overdue"] == got["dossier:apology"] == at(9, 10)


def test_no_alert_while_waiting_for_the_citizen() -> None:
    s = Script().received(at(5, 9), at(8, 10))
    s.events.append(
        m.SupplementRequested.create(
            dossier_id=s.id,
            producer_agency=CENTER,
            occurred_at=at(6, 9),
            recorded_at=at(6, 9),
            event_id=uuid.uuid4(),
            requesting_agency=CENTER,
            reason="Bổ sung",
            documents=["Bản sao"],
            supplement_due_at=at(12, 9),
        )
    )
    assert predict_alerts(s.truth(), at(30, 17), RULES) == []


def test_apology_names_the_late_step_agency_and_a_new_appointment() -> None:
    s = (
        Script()
        .received(at(5, 8), at(9, 17))
        .sent(at(5, 8, 10), 1, DEPT, at(7, 17))
        .accepted(at(5, 8, 30), 1, DEPT)
    )
    # Alone, the dossier's clock stops at its own last event (5 Jan): nothing is due yet.
    alone = TruthBuilder(JAN, rules=RULES, from_settings=False)
    alone.add(s.truth())
    assert alone.alerts_json()["apologies"] == {}
    # A later event of another dossier on the same (single) clock runs it on to 12 Jan.
    other = Script("H10.TEST.0002").received(at(12, 9), at(20, 9))
    b2 = TruthBuilder(JAN, rules=RULES, from_settings=False)
    b2.add(s.truth())
    b2.add(other.truth())
    alerts = b2.alerts_json()
    apology = alerts["apologies"][str(alert_id(s.id, "dossier:apology"))]
    assert apology["responsible"] == DEPT  # step 1 overran its due (7 Jan 17:00)
    assert apology["previous_appointment"] == at(9, 17).isoformat()
    # New appointment: from the overdue instant, the working time of the steps not yet
    # handed on (here the procedure's only step, 10 working days) → Fri 23 Jan 17:00.
    assert datetime.fromisoformat(apology["new_appointment"]) == at(23, 17)
    assert str(alert_id(s.id, "step:1:overdue")) in alerts["overdue"]
    assert alerts["overdue_dossiers"] == [s.id]
    assert alerts["overdue_steps"] == [f"{s.id}#1"]


def test_escalation_when_a_handoff_is_not_accepted_in_time() -> None:
    s = Script().received(at(5, 8), at(16, 17)).sent(at(5, 9), 1, TAX, at(9, 17))
    got = predict_alerts(s.truth(), at(6, 9), RULES)
    esc = [a for a in got if a.kind == "escalation"]
    assert len(esc) == 1
    assert esc[0].fire_at == CAL.add_working_time(at(5, 9), timedelta(hours=4))
    assert esc[0].handoff == (f"{s.id}/1", CENTER, TAX)
    assert esc[0].key == f"step:1:{s.id}/1:escalation"


def test_no_escalation_when_accepted_in_time() -> None:
    s = (
        Script()
        .received(at(5, 8), at(16, 17))
        .sent(at(5, 9), 1, TAX, at(9, 17))
        .accepted(at(5, 12), 1, TAX)
    )
    assert [a for a in predict_alerts(s.truth(), at(6, 9), RULES) if a.kind == "escalation"] == []


def test_escalation_fires_when_the_accept_comes_late() -> None:
    s = (
        Script()
        .received(at(5, 8), at(16, 17))
        .sent(at(5, 9), 1, TAX, at(9, 17))
        .accepted(at(6, 9), 1, TAX)
    )
    got = [a.kind for a in predict_alerts(s.truth(), at(6, 9), RULES)]
    assert got == ["escalation"]


def test_step_warning_and_overdue_follow_the_step_due_and_its_pauses() -> None:
    s = (
        Script()
        .received(at(5, 8), at(23, 17))
        .sent(at(5, 9), 1, DEPT, at(7, 17))
        .accepted(at(5, 9, 5), 1, DEPT)
        .supplement(at(6, 8), at(7, 8))  # one working day after the handover
        .returned(at(8, 16), 1, DEPT)
    )
    got = keys(a for a in predict_alerts(s.truth(), at(30, 17), RULES) if a.scope == "step")
    # Due moved from 7 to 8 Jan 17:00 (sessions 7:30-11:30, 13:00-17:00): warned at 7:30 on
    # the 8th, returned before the (moved) due, so no step overdue.
    assert got == {"step:1:warning": at(8, 7, 30)}


def test_warning_lead_is_a_setting() -> None:
    s = Script().received(at(5, 9), at(8, 10))
    rules = AlertRules(warning_lead=timedelta(hours=2))
    assert keys(predict_alerts(s.truth(), at(9, 16), rules))["dossier:warning"] == at(8, 8)


def test_rejected_events_do_not_change_the_dossier() -> None:
    s = Script().received(at(5, 9), at(8, 10)).accepted(at(5, 10), 1, DEPT)  # never sent
    s.finished(at(5, 11), by=CENTER)
    s._add(m.ProcessingFinished, at(5, 10, 30), CENTER, agency=CENTER, outcome="approved")
    t = s.truth()
    assert t.dead_letters == {"IllegalTransition": 1, "StaleEvent": 1}
    assert t.finished_at == at(5, 11)
    assert predict_alerts(t, at(30, 17), RULES) == []


def test_last_stretch_waits_for_the_partitions_final_watermark() -> None:
    """A dossier's pending alerts fire only if its partition's clock gets there."""
    a = Script("H10.TEST.A").received(at(5, 9), at(8, 10))
    b = Script("H10.TEST.B").received(at(9, 9), at(20, 10))
    parts = 6
    same = partition_of(a.id, parts) == partition_of(b.id, parts)
    builder = TruthBuilder(JAN, rules=RULES, dossier_partitions=parts, from_settings=False)
    builder.add(a.truth())
    builder.add(b.truth())
    fired = builder.alerts_json()["warnings"]
    assert (str(alert_id(a.id, "dossier:warning")) in fired) is same
    one_clock = TruthBuilder(JAN, rules=RULES, from_settings=False)
    one_clock.add(a.truth())
    one_clock.add(b.truth())
    assert str(alert_id(a.id, "dossier:warning")) in one_clock.alerts_json()["warnings"]


# -- cross-check against the domain's own scheduling, on a simulated month -----------------


def replay_like_a_worker(records: Iterable[Any], codec: AvroCodec, partitions: int) -> dict:
    """The alerts a replay-mode worker emits, from the domain's tracker and alert rules.

    Mirrors the worker loop without Kafka: per partition, observe the event time, fire what
    is due against the current records, apply the event, fire again.
    """
    from lienthong.streams.facts import facts_of  # the worker's own wire → facts adapter

    validator = Validator(codec)
    procedures = load_procedures()
    table: dict[str, dict] = {}
    nxt: dict[str, datetime | None] = {}
    members: dict[int, set[str]] = defaultdict(set)
    clocks: dict[int, datetime] = {}
    out: dict[str, dict[str, Any]] = {}

    def fire(p: int) -> None:
        now = clocks[p]
        for d in sorted(members[p]):
            when = nxt[d]
            if when is None or when > now:
                continue
            rec = table[d]
            alerts = due_alerts(rec, now, RULES)
            for alert in alerts:
                if alert.kind == "apology":
                    alert = apology_for(alert, rec, procedures.get(rec.procedure or ""), RULES)
                out[str(alert_id(d, alert.key))] = {"dossier": d, "alert": alert}
            rec = rec.with_alerts([a.key for a in alerts])
            table[d] = rec
            nxt[d] = next_fire(rec, RULES)

    for offset, r in enumerate(records):
        if r.topic != "dossier-events":
            continue
        model = validator.decode_or_reason(r.value)
        if isinstance(model, DecodeError):
            continue
        facts = facts_of(model)
        if facts is None:
            continue
        p = partition_of(r.key, partitions)
        clocks[p] = max(clocks.get(p, facts.at), facts.at)
        fire(p)
        result = track_in(
            procedures, table.get(facts.dossier_id), facts, partition=p, offset=offset
        )
        if isinstance(result, Applied):
            table[facts.dossier_id] = result.record
            members[p].add(facts.dossier_id)
            nxt[facts.dossier_id] = next_fire(result.record, RULES)
            fire(p)
    return out


@pytest.fixture(scope="module")
def codec(tmp_path_factory: pytest.TempPathFactory) -> AvroCodec:
    return AvroCodec(FileSchemaRegistry(Path(tmp_path_factory.mktemp("reg")) / "registry.json"))


@pytest.mark.parametrize("faults", [0.0, 0.05])
def test_truth_matches_a_worker_like_replay_of_a_month(codec: AvroCodec, faults: float) -> None:
    plan = Plan(
        SimConfig(JAN, seed=11, dossiers=500),
        FaultConfig.all_on(faults) if faults else FaultConfig(),
        codec.encode,
    )
    plan.truth = TruthBuilder(JAN, rules=RULES, dossier_partitions=6, from_settings=False)
    records = list(plan.records())
    truth = plan.truth_json()["alerts"]
    bus = replay_like_a_worker(records, codec, 6)
    kinds = {"warning": "warnings", "overdue": "overdue", "apology": "apologies"}
    kinds["escalation"] = "escalations"
    for kind, name in kinds.items():
        got = {i for i, v in bus.items() if v["alert"].kind == kind}
        assert got == set(truth[name]), name
    assert len(truth["warnings"]) > 50 and truth["overdue"] and truth["apologies"]
    if faults:
        assert truth["escalations"]  # out-of-order accepts leave handoffs unaccepted
    for i, apology in truth["apologies"].items():
        alert = bus[i]["alert"]
        assert apology["responsible"] == alert.responsible
        assert datetime.fromisoformat(apology["new_appointment"]) == alert.new_appointment
    for i, esc in truth["escalations"].items():
        assert (esc["handoff_id"], esc["from"], esc["to"]) == bus[i]["alert"].handoff


def test_a_dossier_whose_events_are_all_rejected_still_moves_the_clock() -> None:
    a = Script("H10.TEST.A").received(at(5, 9), at(8, 10))
    b = Script("H10.TEST.B").sent(at(9, 9), 1, DEPT, at(12, 9))  # never received: rejected
    builder = TruthBuilder(JAN, rules=RULES, from_settings=False)
    builder.add(a.truth())
    builder.add(b.truth())
    assert builder.dead_letters == {"UnknownDossier": 1}
    alerts = builder.alerts_json()
    assert str(alert_id(a.id, "dossier:warning")) in alerts["warnings"]
    assert alerts["overdue_dossiers"] == [a.id]


def test_rules_and_partitions_default_to_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("LIENTHONG_STREAMS__WARNING_LEAD_HOURS", "2")
    monkeypatch.setenv("LIENTHONG_STREAMS__HANDOFF_ACCEPT_HOURS", "6")
    builder = TruthBuilder(JAN)
    assert builder.rules.warning_lead == timedelta(hours=2)
    assert builder.rules.accept_within == timedelta(hours=6)
    assert builder.dossier_partitions == 6  # deploy/topics.toml
    rules = builder.alerts_json()["rules"]
    assert (rules["warning_lead_hours"], rules["handoff_accept_hours"]) == (2.0, 6.0)


def test_a_live_window_runs_the_last_stretches_to_its_end() -> None:
    """Live workers fire by the wall clock, which reaches the window's end everywhere."""
    a = Script("H10.TEST.A").received(at(5, 9), at(8, 10))
    live = Period("live:202601091200", JAN.start, at(9, 12))
    builder = TruthBuilder(live, rules=RULES, dossier_partitions=6, from_settings=False)
    assert builder.live
    builder.add(a.truth())
    alerts = builder.alerts_json()
    assert alerts["overdue_dossiers"] == [a.id]
    assert alerts["rules"]["clock"].startswith("live")


def test_apology_without_a_late_step_names_the_agency_holding_the_dossier() -> None:
    s = Script().received(at(5, 9), at(8, 10))
    clock = Script("H10.TEST.CLOCK").received(at(9, 9), at(20, 9))
    b = TruthBuilder(JAN, rules=RULES, from_settings=False)
    b.add(s.truth())
    b.add(clock.truth())
    apology = b.alerts_json()["apologies"][str(alert_id(s.id, "dossier:apology"))]
    assert apology["responsible"] == CENTER  # nobody else ever had it
    assert datetime.fromisoformat(apology["new_appointment"]) == at(22, 10)  # + 10 working days


def test_a_live_truth_lists_the_alerts_the_wall_clock_fires_after_its_window() -> None:
    """Nothing is sent after a live window, but the workers' wall clock runs on: the open
    dossier's overdue notice and apology are due after the window's end and listed as such."""
    a = Script("H10.TEST.A").received(at(5, 9), at(8, 10))
    done = Script("H10.TEST.DONE").received(at(5, 9), at(8, 10)).finished(at(5, 11))
    live = Period("live:202601071200", JAN.start, at(7, 12))
    builder = TruthBuilder(live, rules=RULES, dossier_partitions=6, from_settings=False)
    builder.add(a.truth())
    builder.add(done.truth())
    alerts = builder.alerts_json()
    assert list(alerts["warnings"].values()) == [f"{a.id}|dossier:warning"]
    later = alerts["after_window"]
    assert {v["kind"] for v in later.values()} == {"overdue", "apologies"}
    assert all(v["entry"] for v in later.values())
    assert {datetime.fromisoformat(v["fire_at"]) for v in later.values()} == {at(8, 10)}
    assert not any(v.get("may") for v in later.values())
    overdue = later[str(alert_id(a.id, "dossier:overdue"))]
    assert overdue["entry"] == f"{a.id}|dossier:overdue"
    # A replay truth has no such list: its clock stops with the stream.
    replay = TruthBuilder(JAN, rules=RULES, dossier_partitions=6, from_settings=False)
    replay.add(a.truth())
    assert "after_window" not in replay.alerts_json()


def test_a_live_truth_allows_alerts_due_just_after_a_record_that_cancels_them() -> None:
    """A live worker applies a record a little after its event time and fires what is due by
    then first: a warning due 10 s after the finish may exist; one due an hour after may not."""
    warn = subtract_working_time(at(8, 10), RULES.warning_lead, CAL)
    close = Script("H10.TEST.CLOSE").received(at(5, 9), at(8, 10))
    close.finished(warn - timedelta(seconds=10))
    far = Script("H10.TEST.FAR").received(at(5, 9), at(8, 10)).finished(warn - timedelta(hours=1))
    live = Period("live:202601091200", JAN.start, at(9, 12))
    builder = TruthBuilder(live, rules=RULES, dossier_partitions=6, from_settings=False)
    builder.add(close.truth())
    builder.add(far.truth())
    alerts = builder.alerts_json()
    assert alerts["warnings"] == {}
    may = alerts["after_window"]
    assert list(may) == [str(alert_id(close.id, "dossier:warning"))]
    assert may[str(alert_id(close.id, "dossier:warning"))]["may"] is True
