"""Live mode scheduling with an injected clock: on time, at the configured rate, truth at stop."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from lienthong.schemas.models import VN_TZ, Event
from lienthong.simulators.faults import Delivery, FaultConfig
from lienthong.simulators.live import LiveConfig, LiveSimulation, WallClock, run_with_signals
from lienthong.simulators.province import Period, SimConfig
from lienthong.simulators.run import Record, add_folded, fold_delivered
from lienthong.simulators.truth import TruthBuilder, periods_in

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=VN_TZ)
SUNDAY_22 = datetime(2026, 11, 22, 22, 0, tzinfo=VN_TZ)
RATE = 10.0  # records/s
DURATION = 900.0  # s of simulated wall clock


class FakeClock:
    """Time moves only when the simulation sleeps."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.slept = 0.0

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.t += timedelta(seconds=seconds)


def _events_by_value() -> tuple[dict[bytes, Event], object]:
    """An encoder that lets the test see the event behind each record."""
    seen: dict[bytes, Event] = {}

    def encode(event: Event) -> bytes:
        key = f"{event.envelope.event_id}:{len(seen)}".encode()
        seen[key] = event
        return key

    return seen, encode


def _live(
    start: datetime,
    *,
    rate: float = 20.0,
    warmup_days: float = 0.5,
    duration_s: float = 1800,
    around_the_clock: bool = False,
    faults: FaultConfig | None = None,
    seed: int = 7,
) -> tuple[LiveSimulation, FakeClock, list[tuple[datetime, Record]], dict[bytes, Event]]:
    clock = FakeClock(start)
    seen, encode = _events_by_value()
    cfg = SimConfig(Period("live", start - timedelta(days=warmup_days), start), seed=seed)
    live = LiveConfig(
        rate=rate,
        warmup_days=warmup_days,
        duration_s=duration_s,
        around_the_clock=around_the_clock,
        sample_dossiers=200,
    )
    sim = LiveSimulation(cfg, live, faults or FaultConfig(), encode, seen.__getitem__, clock)
    sent: list[tuple[datetime, Record]] = []
    sim.run(lambda r: sent.append((clock.now(), r)), lambda: False)
    return sim, clock, sent, seen


@pytest.fixture(scope="module")
def monday() -> tuple[LiveSimulation, FakeClock, list[tuple[datetime, Record]], dict]:
    return _live(MONDAY_9, rate=RATE, duration_s=DURATION)


def test_no_record_leaves_before_its_time(monday) -> None:
    sim, _, sent, seen = monday
    assert len(sent) > 1000
    for sent_at, record in sent:
        assert record.at <= sent_at
        event = seen.get(record.value)
        if event is not None:  # every event time is in the past when it leaves
            assert event.envelope.occurred_at <= sent_at
    per_dossier: dict[str, list[datetime]] = {}
    for _, record in sent:
        per_dossier.setdefault(record.key, []).append(record.at)
    assert all(times == sorted(times) for times in per_dossier.values())


def test_warmup_goes_at_once_then_real_time(monday) -> None:
    sim, _, sent, _ = monday
    # (postal pick-up scans of a dossier arriving now are dated the day before: left out)
    warm = [(s, r) for s, r in sent if r.at < sim.t0 and r.topic != "postal-tracking"]
    assert warm and sim.stats.warmup_dossiers > 0
    assert all(s == sim.t0 for s, _ in warm)  # produced quickly: before the clock moved
    later = [s for s, r in sent if r.at >= sim.t0]
    assert later and max(later) > sim.t0 + timedelta(minutes=10)  # then as time passes


def test_arrival_rate_follows_the_record_rate(monday) -> None:
    sim, _, sent, _ = monday
    live_dossiers = sim.stats.arrivals - sim.stats.warmup_dossiers
    expected = RATE / sim.records_per_dossier * DURATION  # working time: every channel arrives
    assert abs(live_dossiers - expected) < 4 * expected**0.5 + 5
    assert 8 < sim.records_per_dossier < 20
    received_now = {r.key for _, r in sent if r.at >= sim.t0}
    assert len(received_now) >= live_dossiers * 0.9
    # Each new dossier's id carries the session stamp: a later session never reuses an id.
    assert all(r.key.startswith(f"H10.{sim.tag}.") for _, r in sent)


def test_memory_holds_open_dossiers_only(monday) -> None:
    sim, _, sent, _ = monday
    closed = sim.closed_dossiers
    assert sim.open_dossiers + closed == sim.stats.arrivals
    assert closed > 0  # quick dossiers (refusals, 4-hour procedures) closed and left the heap
    assert all(e.pos < len(e.values) for _, _, e in sim._heap)
    assert all(isinstance(v, bytes) for _, _, e in sim._heap for v in e.values)  # compact


def test_stop_writes_the_truth_of_what_was_delivered(monday) -> None:
    sim, clock, sent, _ = monday
    truth = sim.truth_json()
    assert truth["events"] == len(sent) == sim.stats.records
    assert truth["dossiers"] == len({r.key for _, r in sent})
    assert truth["meta"]["mode"] == "live"
    assert truth["window"]["end"] == clock.now().isoformat()
    received = sum(row["received"] for k, row in truth["counts"].items() if "|month:" in k)
    assert received > 0.9 * truth["dossiers"]
    # Nothing the bus has not been sent: every portal record is a dossier that got records.
    assert set(truth["portal"]) <= {r.key for _, r in sent}


def test_stop_request_is_honoured_and_open_dossiers_are_cut() -> None:
    clock = FakeClock(MONDAY_9)
    seen, encode = _events_by_value()
    cfg = SimConfig(Period("live", MONDAY_9 - timedelta(days=0.2), MONDAY_9), seed=3)
    sim = LiveSimulation(
        cfg,
        LiveConfig(rate=50, warmup_days=0.2, sample_dossiers=100),
        FaultConfig(),
        encode,
        seen.__getitem__,
        clock,
    )
    sent: list[Record] = []
    sim.run(sent.append, lambda: clock.now() >= MONDAY_9 + timedelta(minutes=5))
    assert clock.now() < MONDAY_9 + timedelta(minutes=5, seconds=1)
    assert sim.open_dossiers > 0
    truth = sim.truth_json()
    assert truth["events"] == len(sent)
    assert truth["meta"]["open_dossiers"] == sim.open_dossiers


def test_night_brings_online_submissions_only_unless_around_the_clock() -> None:
    sim, _, sent, seen = _live(SUNDAY_22, warmup_days=0.1, duration_s=900)
    new = [seen[r.value] for _, r in sent if r.at >= sim.t0 and r.value in seen]
    kinds = Counter(e.EVENT_TYPE for e in new)
    assert kinds["dossier_submitted"] > 0
    assert kinds["dossier_received"] == 0  # counters are closed; receipt waits for Monday
    assert sim.stats.dropped_out_of_hours > 0
    sim2, _, sent2, seen2 = _live(SUNDAY_22, warmup_days=0.1, duration_s=900, around_the_clock=True)
    new2 = [seen2[r.value] for _, r in sent2 if r.at >= sim2.t0 and r.value in seen2]
    kinds2 = Counter(e.EVENT_TYPE for e in new2)
    assert kinds2["dossier_received"] > 5 * kinds["dossier_submitted"]  # every channel
    assert kinds2["handoff_sent"] > 0 and kinds2["handoff_returned"] > 0
    assert sim2.stats.dropped_out_of_hours == 0


def test_faults_in_live_mode_keep_the_truth_consistent() -> None:
    sim, _, sent, _ = _live(
        MONDAY_9, warmup_days=0.2, duration_s=900, faults=FaultConfig.all_on(0.1)
    )
    truth = sim.truth_json()
    assert sum(sim.fault_counts.values()) > 0
    assert truth["events"] == len(sent)
    gate = sum(v for k, v in truth["dead_letters"].items() if k != "IllegalTransition")
    assert gate == sum(1 for _, r in sent if r.fault in ("malformed", "unknown_agency", "future"))


def test_same_seed_and_start_same_records() -> None:
    a = _live(MONDAY_9, warmup_days=0.1, duration_s=300)[2]
    b = _live(MONDAY_9, warmup_days=0.1, duration_s=300)[2]
    assert [(r.key, r.at) for _, r in a] == [(r.key, r.at) for _, r in b]


def test_incremental_truth_equals_the_truth_of_the_sent_records_over_days() -> None:
    """Closed dossiers are folded as they close, the rest at the stop: the result must be
    the truth of exactly the records sent, computed in one go afterwards."""
    start = datetime(2026, 11, 27, 15, 0, tzinfo=VN_TZ)  # Friday: the session crosses a month
    clock = FakeClock(start)
    seen, encode = _events_by_value()
    cfg = SimConfig(Period("live", start - timedelta(days=1), start), seed=5, procedures=120)
    live = LiveConfig(
        rate=0.2, warmup_days=1, around_the_clock=True, sample_dossiers=100, max_sleep_s=3600
    )
    kinds = ("day", "month")
    sim = LiveSimulation(cfg, live, FaultConfig(), encode, seen.__getitem__, clock, kinds)
    sent: list[Record] = []
    sim.run(sent.append, lambda: clock.now() >= start + timedelta(days=4))
    live_truth = sim.truth_json()
    assert sim.closed_dossiers > 100 and sim.open_dossiers > 100

    by_dossier: dict[str, list[Delivery]] = {}
    for r in sent:
        event = seen[r.value] if r.topic == "dossier-events" else None
        by_dossier.setdefault(r.key, []).append(Delivery(r.topic, r.key, event=event))
    end = sim.stopped_at
    assert end is not None
    batch = TruthBuilder(Period(f"live:{sim.tag}", sim.warm_start, end), kinds)
    through = Period("x", sim.warm_start, datetime(2026, 12, 2, tzinfo=VN_TZ))
    batch.periods = [(k, p) for k in kinds for p in periods_in(through, k)]
    for dossier_id, deliveries in sorted(by_dossier.items()):
        add_folded(batch, fold_delivered(dossier_id, deliveries, _NoFaults()))
    expected = batch.to_json({})
    assert {k for k in live_truth["counts"] if "month:2026-12" in k}  # a new month began
    for section in ("counts", "outcomes", "portal", "alerts", "dead_letters", "events"):
        assert live_truth[section] == expected[section], section


class _NoFaults:
    absorbed: dict[str, int] = {}
    flagged: dict[str, int] = {}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_wall_clock_loop(signum: int) -> None:
    clock = WallClock()
    seen, encode = _events_by_value()
    now = clock.now()
    cfg = SimConfig(Period("live", now - timedelta(days=0.01), now), seed=2)
    live = LiveConfig(rate=5, warmup_days=0.01, sample_dossiers=50, max_sleep_s=5)
    sim = LiveSimulation(cfg, live, FaultConfig(), encode, seen.__getitem__, clock)
    before = signal.getsignal(signum)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signum))
    timer.start()
    started = time.monotonic()
    try:
        _, why = run_with_signals(sim, lambda r: None, clock)
    finally:
        timer.cancel()
    assert why == signal.Signals(signum).name
    assert time.monotonic() - started < 3  # the sleep is cut short, not waited out
    assert signal.getsignal(signum) is before  # handlers restored
    assert sim.truth_json()["meta"]["stopped_at"]
