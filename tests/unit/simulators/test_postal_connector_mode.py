"""``postal = connector``: the simulator orders pickups and deliveries instead of writing the
post's scans and the by-post return itself; ``simulated`` (the default) is unchanged."""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from lienthong.cli.main import main
from lienthong.schemas.models import (
    VN_TZ,
    DossierReceived,
    Event,
    PostalOrderRequested,
    PostalTracking,
    ResultReturned,
)
from lienthong.simulators.faults import FaultConfig
from lienthong.simulators.live import LiveConfig, LiveSimulation, SteppedClock
from lienthong.simulators.province import CENTER, Period, ProvinceSimulator, SimConfig
from lienthong.simulators.run import Record
from lienthong.simulators.truth import COUNT_FIELDS
from lienthong.simulators.verify import compare_report
from tests.unit.simulators.test_live import events_by_value

JAN = Period.parse("2026-01")
# sha256 of the JSON of every event of 400 dossiers (seed 7, January 2026) as the generator
# made them before the postal option existed: the default must not move a byte.
SIMULATED_DIGEST = "b191cb631d570c0d79dbf11f8572eba59c3e902241d38a2b09c2effa7a12ddef"


def _digest(sim: ProvinceSimulator) -> str:
    h = hashlib.sha256()
    for d in sim.dossiers():
        for e in d.events:
            h.update(e.model_dump_json().encode())
    return h.hexdigest()


def _is_post_return(e: Event) -> bool:
    return isinstance(e, ResultReturned) and e.method.value == "post"


def test_simulated_is_the_default_and_unchanged() -> None:
    assert SimConfig(JAN).postal == "simulated"
    assert _digest(ProvinceSimulator(SimConfig(JAN, seed=7, dossiers=400))) == SIMULATED_DIGEST
    explicit = SimConfig(JAN, seed=7, dossiers=400, postal="simulated")
    assert _digest(ProvinceSimulator(explicit)) == SIMULATED_DIGEST


def test_unknown_postal_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="postal must be one of"):
        ProvinceSimulator(SimConfig(JAN, dossiers=1, postal="pigeon"))


@pytest.fixture(scope="module")
def both() -> list[tuple[Any, Any]]:
    simulated = ProvinceSimulator(SimConfig(JAN, seed=7, dossiers=1500))
    connector = ProvinceSimulator(SimConfig(JAN, seed=7, dossiers=1500, postal="connector"))
    return list(zip(simulated.dossiers(), connector.dossiers(), strict=True))


def test_connector_mode_orders_instead_of_writing_the_post(both) -> None:
    kinds: Counter[str] = Counter()
    for sim_d, con_d in both:
        assert (sim_d.dossier_id, sim_d.channel) == (con_d.dossier_id, con_d.channel)
        events = con_d.events
        assert not any(isinstance(e, PostalTracking) for e in events)
        assert not any(_is_post_return(e) for e in events)
        orders = [e for e in events if isinstance(e, PostalOrderRequested)]
        kinds.update(o.kind.value for o in orders)
        scans = {e.kind.value: e for e in sim_d.events if isinstance(e, PostalTracking)}
        by_post = [e for e in sim_d.events if _is_post_return(e)]
        expected_kinds = (["pickup"] if "pickup_ordered" in scans else []) + (
            ["delivery"] if by_post else []
        )
        assert [o.kind.value for o in orders] == expected_kinds, con_d.dossier_id
        for o in orders:
            assert o.order_id == f"{con_d.dossier_id}:{o.kind.value}"
            assert o.envelope.dossier_id == con_d.dossier_id
            assert o.requesting_agency == CENTER == o.envelope.producer_agency
            assert o.recipient_name and o.address and o.phone
            at = o.envelope.occurred_at
            if o.kind.value == "pickup":  # when the simulator would have said pickup_ordered
                assert at == scans["pickup_ordered"].scanned_at
                assert o.deliver_by is None
                receipt = next(e for e in events if isinstance(e, DossierReceived))
                assert events.index(o) < events.index(receipt)
                assert at < receipt.received_at
            else:  # when the center handed the result to the post
                assert at == by_post[0].envelope.occurred_at
                assert o.deliver_by == at + timedelta(hours=72)
                assert events[-1] is o  # nothing after it: the connector returns the result
        # Every lifecycle event is the simulated one (same ids, times, content) but for the
        # by-post return, which the connector publishes when the post delivers.
        life = [e for e in con_d.events if e.TOPIC == "dossier-events"]
        expected = [
            e for e in sim_d.events if e.TOPIC == "dossier-events" and not _is_post_return(e)
        ]
        assert [(e.envelope.event_id, e.envelope.occurred_at) for e in life] == [
            (e.envelope.event_id, e.envelope.occurred_at) for e in expected
        ]
        assert [e.model_dump(exclude={"envelope"}) for e in life] == [
            e.model_dump(exclude={"envelope"}) for e in expected
        ]
    assert kinds["pickup"] > 100 and kinds["delivery"] > 50, kinds


def test_order_personal_data_is_stable_per_dossier(both) -> None:
    again = ProvinceSimulator(SimConfig(JAN, seed=7, dossiers=1500, postal="connector"))
    first = [e for _, d in both[:200] for e in d.events if isinstance(e, PostalOrderRequested)]
    second = [e for d in again.dossiers() for e in d.events if isinstance(e, PostalOrderRequested)]
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second[: len(first)]]


# -- live mode ---------------------------------------------------------------------------------

FRIDAY_15 = datetime(2026, 11, 27, 15, 0, tzinfo=VN_TZ)


def _live(postal: str) -> tuple[LiveSimulation, list[Record], dict[bytes, Event]]:
    clock = SteppedClock(FRIDAY_15)
    seen, encode = events_by_value()

    start = FRIDAY_15
    cfg = SimConfig(Period("live", start - timedelta(days=1), start), seed=5, postal=postal)
    live = LiveConfig(
        rate=0.5, warmup_days=1, around_the_clock=True, sample_dossiers=100, max_sleep_s=3600
    )
    sim = LiveSimulation(
        cfg, live, FaultConfig(), encode, seen.__getitem__, clock, ("day", "month")
    )
    sent: list[Record] = []
    sim.run(sent.append, lambda: clock.now() >= start + timedelta(days=1))
    return sim, sent, seen


@pytest.fixture(scope="module")
def live_pair() -> dict[str, tuple[LiveSimulation, list[Record], dict[bytes, Event]]]:
    return {p: _live(p) for p in ("simulated", "connector")}


def test_live_connector_mode_sends_orders_and_no_post_events(live_pair) -> None:
    sim, sent, seen = live_pair["connector"]
    by_topic = Counter(r.topic for r in sent)
    assert by_topic["postal-tracking"] == 0
    assert by_topic["postal-orders"] == sim.stats.by_topic["postal-orders"] > 0
    events = [seen[r.value] for r in sent]
    assert not any(_is_post_return(e) for e in events)
    orders = [e for e in events if isinstance(e, PostalOrderRequested)]
    delivered = {o.envelope.dossier_id for o in orders if o.kind.value == "delivery"}
    picked = {o.envelope.dossier_id for o in orders if o.kind.value == "pickup"}
    assert delivered and picked
    # An order leaves at its own time: a pickup a day before the receipt, a delivery when
    # the center hands the result over.
    for r in sent:
        if r.topic == "postal-orders":
            assert r.at == seen[r.value].envelope.occurred_at
    truth = sim.truth_json()
    assert truth["meta"]["postal"] == "connector"
    assert truth["postal"]["mode"] == "connector"
    assert truth["postal"]["delivery_orders"] == sorted(delivered)
    assert truth["postal"]["pickup_orders"] == len(picked)
    assert "post's delays and failures" in truth["postal"]["unknown"]
    # The truth cannot know the post: no by-post return counted, those dossiers finished (9).
    assert sum(row["returned_by_post"] for row in truth["counts"].values()) == 0
    assert all(truth["portal"][d]["TrangThaiHoSo"] == 9 for d in delivered)


def test_live_simulated_mode_keeps_its_post_and_truth_shape(live_pair) -> None:
    sim, sent, seen = live_pair["simulated"]
    by_topic = Counter(r.topic for r in sent)
    assert by_topic["postal-orders"] == 0 and by_topic["postal-tracking"] > 0
    truth = sim.truth_json()
    assert "postal" not in truth and "postal" not in truth["meta"]
    assert sum(row["returned_by_post"] for row in truth["counts"].values()) > 0
    # Same arrivals and the same lifecycle: only the post's share differs.
    con_sim, con_sent, con_seen = live_pair["connector"]
    assert sim.stats.arrivals == con_sim.stats.arrivals

    def receipts(records: list[Record], events: dict[bytes, Event]) -> list[Any]:
        return [(r.key, r.at) for r in records if isinstance(events.get(r.value), DossierReceived)]

    assert receipts(sent, seen) == receipts(con_sent, con_seen)


def test_live_connector_mode_with_every_fault() -> None:
    """Faults hit the lifecycle only: orders always leave whole and are noted in the truth."""
    clock = SteppedClock(FRIDAY_15)
    seen, encode = events_by_value()

    cfg = SimConfig(
        Period("live", FRIDAY_15 - timedelta(days=1), FRIDAY_15), seed=9, postal="connector"
    )
    live = LiveConfig(rate=0.5, warmup_days=1, around_the_clock=True, sample_dossiers=100)
    sim = LiveSimulation(cfg, live, FaultConfig.all_on(0.1), encode, seen.__getitem__, clock)
    sent: list[Record] = []
    sim.run(sent.append, lambda: clock.now() >= FRIDAY_15 + timedelta(hours=12))
    truth = sim.truth_json()
    assert sum(sim.fault_counts.values()) > 0
    assert truth["events"] == len(sent)
    orders = [r for r in sent if r.topic == "postal-orders"]
    assert orders and all(r.fault is None and r.value in seen for r in orders)
    kinds = {(r.key, seen[r.value].kind.value) for r in orders}  # type: ignore[attr-defined]
    delivered = sorted(d for d, kind in kinds if kind == "delivery")
    assert delivered and truth["postal"]["delivery_orders"] == delivered
    assert truth["postal"]["pickup_orders"] == sum(1 for _, kind in kinds if kind == "pickup")
    assert all(truth["portal"][d]["TrangThaiHoSo"] == 9 for d in delivered)


# -- verify ------------------------------------------------------------------------------------


def _truth(postal: dict[str, Any] | None) -> dict[str, Any]:
    key = f"{CENTER}|1.004227|counter|day:2026-11-27"
    counts = {key: dict.fromkeys(COUNT_FIELDS, 0)}
    counts[key].update(received=2, finished_on_time=1)
    truth: dict[str, Any] = {
        "meta": {"mode": "live"},
        "counts": counts,
        "alerts": {"overdue_dossiers": [], "overdue_steps": []},
        "portal": {
            "D1": {"TrangThaiHoSo": 9, "KenhThucHien": 1, "NgayHenTra": None},
            "D2": {"TrangThaiHoSo": 4, "KenhThucHien": 1, "NgayHenTra": None},
        },
        "dead_letters": {},
    }
    if postal is not None:
        truth["postal"] = postal
    return truth


def _actual_after_delivery(truth: dict[str, Any]) -> dict[str, Any]:
    """The bus once the post delivered D1: returned by post, TrangThaiHoSo 10."""
    stats = copy.deepcopy(truth["counts"])
    next(iter(stats.values()))["returned_by_post"] = 1
    portal = copy.deepcopy(truth["portal"])
    portal["D1"]["TrangThaiHoSo"] = 10
    return {"stats": stats, "portal": portal, "dead_letters": {}}


def test_verify_leaves_the_post_returns_of_a_connector_truth_unchecked() -> None:
    truth = _truth({"mode": "connector", "pickup_orders": 0, "delivery_orders": ["D1"]})
    rows, notes = compare_report(truth, _actual_after_delivery(truth))
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]
    assert not any("returned_by_post" in r.figure for r in rows)
    assert any("returned_by_post not checked" in n and "1 show 10" in n for n in notes), notes
    # Not delivered yet (still 9) is fine too.
    rows, _ = compare_report(truth, {"stats": truth["counts"], "portal": truth["portal"]})
    assert all(r.ok for r in rows)


def test_verify_still_catches_what_the_post_does_not_explain() -> None:
    truth = _truth({"mode": "connector", "pickup_orders": 0, "delivery_orders": ["D1"]})
    actual = _actual_after_delivery(truth)
    actual["portal"]["D2"]["TrangThaiHoSo"] = 10  # not given to the post
    rows, _ = compare_report(truth, actual)
    bad = [r for r in rows if not r.ok]
    assert [r.figure for r in bad] == ["portal records with wrong status/channel/due"]
    actual = _actual_after_delivery(truth)
    next(iter(actual["stats"].values()))["received"] = 3
    assert not all(r.ok for r in compare_report(truth, actual)[0])


def test_verify_of_a_simulated_truth_checks_the_post_returns() -> None:
    truth = _truth(None)
    rows, notes = compare_report(truth, _actual_after_delivery(truth))
    bad = {r.figure for r in rows if not r.ok}
    assert bad == {
        "day:2026-11-27 returned_by_post",
        "stats keys differing",
        "portal records with wrong status/channel/due",
    }
    assert not any("returned_by_post not checked" in n for n in notes)


# -- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["replay", "paced"])
def test_postal_connector_is_live_only(mode: str, capsys, tmp_path) -> None:
    truth = tmp_path / "t.json"
    args = ["simulate", "--mode", mode, "--postal", "connector", "--dry-run", "--truth", str(truth)]
    assert main(args) == 2
    assert "--postal connector is for live mode" in capsys.readouterr().err
    assert not truth.exists()
