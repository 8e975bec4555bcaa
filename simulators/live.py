"""Live mode: a province acting in real time, for the demo and latency tests.

Why a scheduler and not a paced replay: the bus judges deadlines on the wall clock in live
mode and dead-letters events from the future, so a record may only leave when the wall clock
has reached its event time. Each dossier's whole lifecycle is generated when it arrives (its
later steps are known in advance, as in replay), and its records wait in a heap keyed by
send time; the heap holds one entry per *open* dossier (its next unplanned record), so memory
grows with the number of open dossiers, not with the session length.

Why closed-loop arrivals: ``--rate`` is what the user sees on the bus now. A dossier sends
≈ 12.7 records over a life of days to weeks, so a plain Poisson process of ``rate`` ÷
(records per dossier) dossiers/s reaches ``rate`` only in steady state (it gave 11-13 % of it
in the first minute). Instead time is cut into short windows of event time (``window_s``:
1 s, shorter at high rates so that generating a window's new dossiers never holds the loop up
for long), each planned one window before the clock reaches it. A window's target is a
Poisson(``rate`` × ``window_s``) draw; the records already due in it from open dossiers
(warm-up included) count toward it, and new dossiers, arriving at uniform instants of the
window, are admitted until it is reached (each brings the records that fall inside the
window). Records beyond a target are taken off the next ones, up to ``CREDIT_S`` worth. At the
start the rate is filled with new dossiers (mostly submissions and receipts); as they reach
their later steps fewer new ones are needed, and in steady state the arrival rate is the
open-loop one again (``live_intensity``). Before ``t0`` (warm-up, ``warmup_days``) arrivals
are a Poisson process at the calibrated province volume (``dossiers_per_year`` over the
working seconds of a year), sent as fast as the broker takes them so a demo has something to
show at once; that burst does not count toward ``rate`` (the warm-up dossiers' later steps
do).

Working calendar: ``rate`` holds in working time. Outside it (nights, lunch, weekends,
holidays) the counters are closed and officers do not act (but for the generator's
plain-time tail after closing: online receipts 5-90 min after submission, first handoffs
accepted 1-30 min after they were sent), so no rate can be honest there: filling it with
online submissions would pile up a morning of receipts. A window outside
working hours therefore gets the open-loop arrivals (``live_intensity`` dossiers/s) of which
only the online submissions are kept (the others are dropped: nobody at the counter), which
is how the night of a province at this rate looks — almost nothing (≈ 0.4 % of ``rate``).
``around_the_clock`` makes every instant working time for arrivals and actions (appointments
and step due times stay on the official calendar), so the rate holds at any hour and a demo
at night still shows the whole lifecycle moving.

Postal counterpart (``SimConfig.postal``): ``simulated`` writes the post's scans and the
by-post ``result_returned`` from the generator (as replay does); ``connector`` sends
``postal_order_requested`` instead — a pickup order a day before a postal dossier's receipt, a
delivery order when the center hands a result to the post — so the postal connector and the
(fake) post produce the scans and the return on their own schedule. The truth then says
``postal: connector`` and lists the dossiers given to the post for delivery: their return is
not the simulator's to know.

Ground truth: the dossiers delivered so far are folded with the same rules as in replay
(``simulators.truth``); at stop the open ones are folded from the records actually sent, and
the window ends at the stop instant.
"""

from __future__ import annotations

import gc
import heapq
import math
import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from lienthong.logs import get_logger
from lienthong.schemas.models import (
    VN_TZ,
    Event,
    PostalOrderRequested,
    PostalTracking,
    ResultReturned,
)
from lienthong.simulators.faults import Delivery, FaultConfig, inject
from lienthong.simulators.province import (
    AroundTheClock,
    Period,
    ProvinceSimulator,
    SimConfig,
)
from lienthong.simulators.run import (
    GATE_CLASSES,
    Encoder,
    Folded,
    Record,
    add_folded,
    delivery_times,
    fold_delivered,
)
from lienthong.simulators.truth import TruthBuilder, periods_in

log = get_logger(__name__)
Decoder = Callable[[bytes], Event]
WORKING_SECONDS_PER_YEAR = 250 * 8 * 3600  # ~250 working days of 8 h (BRIEF §2)
# The rate is held over windows of at most a second of event time (a user watching the bus sees
# ``rate`` every second), with about RECORDS_PER_WINDOW records each at high rates: planning a
# window generates its new dossiers (≈ 0.4 ms each) in one go while records already due wait,
# so a window must stay small (at 2,000 records/s, 0.05 s ≈ 75 new dossiers ≈ 30 ms).
RECORDS_PER_WINDOW = 50
MAX_WINDOWS_PER_S = 20
# Records beyond a window's target (open dossiers' steps, a new dossier's overshoot) are taken
# off the next targets, but only this many seconds' worth: enough that chance excesses do not
# let admissions drift the rate up, short enough that a surge is not repaid by a long lull.
CREDIT_S = 60.0
# Wall-clock sessions: how often the frozen heap is thawed and collected (see _plan_window).
GC_THAW_S = 600.0


class Clock(Protocol):
    """Where live mode reads time; tests inject a fake one."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SteppedClock:
    """A clock that moves only when the simulation sleeps: a live session of hours runs in
    seconds with the same records (benchmarks of rate and memory, tests)."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.slept = 0.0

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.t += timedelta(seconds=seconds)


class WallClock:
    """The real clock; ``sleep`` returns early when ``wake`` is set (SIGTERM, Ctrl-C)."""

    def __init__(self) -> None:
        self.wake = threading.Event()

    def now(self) -> datetime:
        return datetime.now(VN_TZ)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.wake.wait(seconds)


@dataclass
class LiveConfig:
    """The live-mode figures; each is a ``lienthong simulate --mode live`` option."""

    rate: float = 50.0  # records/s from t0 on, in working time (any time: around_the_clock)
    warmup_days: float = 1.0  # recent past produced at once (province volume)
    around_the_clock: bool = False  # arrivals and actions at night/weekends too
    duration_s: float | None = None  # stop by itself after this many seconds
    max_sleep_s: float = 0.5  # how often a stop request is noticed while idle
    sample_dossiers: int = 400  # dossiers simulated up front to learn records per dossier


class _Open:
    """An open dossier: its records already encoded, their times, how many were sent.

    Compact on purpose (bytes and float timestamps, no event objects): the heap holds one
    per open dossier, so this is what live-mode memory is made of. Events are decoded again
    only to fold the truth, when the dossier closes or the session stops. ``planned`` runs
    ahead of ``pos`` by the records of the windows planned but not yet reached.
    """

    __slots__ = ("absorbed", "dossier_id", "expects", "faults", "flagged", "floor", "planned")
    __slots__ += ("pos", "post", "times", "topics", "values")

    def __init__(
        self,
        dossier_id: str,
        deliveries: list[Delivery],
        times: list[datetime],
        injected: Any,
        encoder: Encoder,
        arrival: datetime,
    ) -> None:
        self.dossier_id = dossier_id
        self.topics = [d.topic for d in deliveries]
        self.values = [
            d.raw if d.raw is not None else encoder(d.event)  # type: ignore[arg-type]
            for d in deliveries
        ]
        self.times = [t.timestamp() for t in times]
        faulty = any(d.fault for d in deliveries)
        self.faults = [d.fault for d in deliveries] if faulty else None
        self.expects = [d.expect for d in deliveries] if faulty else None
        self.absorbed = dict(injected.absorbed) or None
        self.flagged = dict(injected.flagged) or None
        self.post: frozenset[int] | None = None  # records not counted (see ``_post_record``)
        # Records dated before the arrival (a postal pickup order the day before) leave when
        # the dossier arrives: the simulation did not exist before.
        self.floor = arrival.timestamp()
        self.pos = 0  # records sent
        self.planned = 0  # records put in a planned window

    def send_at(self, i: int) -> float:
        """When record ``i`` may leave (``times`` never decrease, so neither does this)."""
        return max(self.times[i], self.floor)

    def fault(self, i: int) -> str | None:
        return self.faults[i] if self.faults else None

    def expect(self, i: int) -> str | None:
        return self.expects[i] if self.expects else None

    def folded(self, upto: int, decoder: Decoder) -> Folded:
        """The truth of the first ``upto`` records (all of them once the dossier closed)."""
        sent: list[Delivery] = []
        for i in range(upto):
            topic, expect = self.topics[i], self.expect(i)
            event = (
                decoder(self.values[i])
                if topic == "dossier-events" and expect not in GATE_CLASSES
                else None
            )
            sent.append(
                Delivery(topic, self.dossier_id, event=event, fault=self.fault(i), expect=expect)
            )
        faulted = {d.fault for d in sent if d.fault}
        part = _Part(
            {k: v for k, v in (self.absorbed or {}).items() if k in faulted},
            {k: v for k, v in (self.flagged or {}).items() if k in faulted},
        )
        return fold_delivered(self.dossier_id, sent, part)


@dataclass
class LiveStats:
    arrivals: int = 0  # dossiers admitted (warm-up included; may arrive in a planned window)
    warmup_dossiers: int = 0
    dropped_out_of_hours: int = 0  # counter/postal arrivals drawn outside working hours
    records: int = 0
    warmup_records: int = 0  # records sent whose event time was before t0
    by_topic: Counter[str] = field(default_factory=Counter)


class LiveSimulation:
    """Admits arrivals and sends every record when the clock reaches its event time."""

    def __init__(
        self,
        config: SimConfig,
        live: LiveConfig,
        faults: FaultConfig,
        encoder: Encoder,
        decoder: Decoder,
        clock: Clock,
        period_kinds: tuple[str, ...] = ("month",),
    ) -> None:
        self.config = config
        self.live = live
        self.faults = faults
        self.encoder = encoder
        self.decoder = decoder
        self.clock = clock
        self.period_kinds = period_kinds
        self.activity = AroundTheClock() if live.around_the_clock else None
        self.sim = ProvinceSimulator(config, activity=self.activity)
        # With the postal connector, each dossier's twin as if the simulator wrote the post.
        self._twin = (
            ProvinceSimulator(replace(config, postal="simulated"), activity=self.activity)
            if config.postal != "simulated"
            else None
        )
        # Count-only records: the twin's post records, by window index (connector mode).
        self._phantoms: Counter[int] = Counter()
        self.records_per_dossier = self._records_per_dossier(clock.now())
        # The session starts after the set-up, so the first live second is a full one.
        self.t0 = clock.now().replace(microsecond=0)
        self.warm_start = self.t0 - timedelta(days=live.warmup_days)
        self.tag = f"L{self.t0:%y%m%d%H%M%S}"
        self.stats = LiveStats()
        self.fault_counts: Counter[str] = Counter()
        # (send time of the next unplanned record, seq, dossier), one per open dossier
        self._heap: list[tuple[float, int, _Open]] = []
        # The planned windows' records in send order: (send time, seq, dossier, record index).
        self._due: deque[tuple[float, int, _Open, int]] = deque()
        self._seq = 0
        self._index = 0
        per_s = min(MAX_WINDOWS_PER_S, max(1, math.ceil(live.rate / RECORDS_PER_WINDOW)))
        self._per_s = per_s
        self.window_s = 1.0 / per_s  # divides a second: windows stay aligned on whole seconds
        self._planned = 0  # windows planned so far
        self._window = self.t0.timestamp()  # start of the next window to plan
        self._credit = 0  # records sent beyond the targets lately (at most CREDIT_S worth)
        self._warmed = False
        self._in_hours: bool | None = None  # the last planned window was in working time
        self._freeze_gc = isinstance(clock, WallClock)  # (only real time suffers GC pauses)
        # Closed dossiers go straight into the truth (a few hundred bytes each: portal row,
        # alert ids), so nothing of theirs stays in the heap. The builder's window ends at the
        # stop, unknown yet: until then a closed dossier's figures do not depend on it (its
        # status is final), and the periods are extended as the clock enters new days.
        key = f"live:{self.tag}"
        self.truth = TruthBuilder(
            Period(key, self.warm_start, self.t0 + timedelta(days=1)), self.period_kinds
        )
        self.truth.window = Period(key, self.warm_start, self.t0 + timedelta(days=36_500))
        self.truth.postal = config.postal
        self._periods_through: datetime | None = None
        self._extend_periods(self.t0)
        self._truth_json: dict[str, Any] | None = None
        self.closed_dossiers = 0
        self._in_progress = 0
        self._arrivals = random.Random(f"{config.seed}:{self.tag}:arrivals")
        per_year = WORKING_SECONDS_PER_YEAR if not live.around_the_clock else 365 * 86400
        self.warmup_intensity = config.dossiers_per_year / per_year  # dossiers / s
        self.live_intensity = live.rate / self.records_per_dossier
        self.stopped_at: datetime | None = None

    # -- arrivals ---------------------------------------------------------------------------
    def _records_per_dossier(self, at: datetime) -> float:
        """Mean records a dossier sends over its life (faults included), from a sample.

        With ``postal: connector`` the sample is still taken as if the simulator wrote the
        post's records (the connector writes them now): the same ``--rate`` then gives the
        same arrivals, so both modes simulate the same dossiers.
        """
        n = self.live.sample_dossiers
        total = 0
        at = at.replace(microsecond=0)
        sim = self._twin or self.sim
        for i in range(n):
            d = sim.dossier(i, arrival=at, dossier_id=f"SAMPLE.{i}", rng_key=f"sample:{i}")
            total += len(inject(d, self.faults, self.config.seed).deliveries)
        return max(1.0, total / max(1, n))

    def _admit_warmup(self) -> None:
        """The recent past at the province's volume; its records go at once, at ``t0``."""
        self._warmed = True
        intensity = self.warmup_intensity
        at = self.warm_start
        while intensity > 0:
            at += timedelta(seconds=self._arrivals.expovariate(intensity))
            if at >= self.t0:
                break
            entry = self._admit(at)
            if entry is not None:
                self._push(entry)

    def _admit(self, arrival: datetime) -> _Open | None:
        """Generate the dossier arriving at ``arrival``; None when it cannot arrive then."""
        index = self._index
        self._index += 1
        dossier = self.sim.dossier(
            index,
            arrival=arrival.replace(microsecond=arrival.microsecond // 1000 * 1000),
            dossier_id=f"H10.{self.tag}.{index:07d}",
            rng_key=f"{self.config.seed}:live:{index}",
        )
        working = self.activity or self.sim.calendar
        if dossier.channel != "online" and not working.is_working_instant(arrival):
            self.stats.dropped_out_of_hours += 1  # nobody at the counter now
            return None
        injected = inject(dossier, self.faults, self.config.seed)
        if injected.fault:
            self.fault_counts[injected.fault] += 1
        times = delivery_times(injected.deliveries)
        if not times:
            return None
        self.stats.arrivals += 1
        if arrival < self.t0:
            self.stats.warmup_dossiers += 1
        entry = _Open(
            dossier.dossier_id, injected.deliveries, times, injected, self.encoder, arrival
        )
        if self._twin is not None:
            post = frozenset(i for i, d in enumerate(injected.deliveries) if _post_record(d))
            if post:
                entry.post = post
                self._count_twin_post(index, dossier.dossier_id, arrival)
        return entry

    def _count_twin_post(self, index: int, dossier_id: str, arrival: datetime) -> None:
        """Note the post records the twin would send, by window, for the windows' counts."""
        assert self._twin is not None
        twin = self._twin.dossier(
            index,
            arrival=arrival.replace(microsecond=arrival.microsecond // 1000 * 1000),
            dossier_id=dossier_id,
            rng_key=f"{self.config.seed}:live:{index}",
        )
        deliveries = inject(twin, self.faults, self.config.seed).deliveries
        floor, t0 = arrival.timestamp(), self.t0.timestamp()
        for d, at in zip(deliveries, delivery_times(deliveries), strict=True):
            if _post_record(d):
                k = math.floor((max(at.timestamp(), floor) - t0) * self._per_s)
                if k >= 0:  # (the warm-up backlog does not count)
                    self._phantoms[k] += 1

    def _push(self, entry: _Open) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (entry.send_at(entry.planned), self._seq, entry))

    def _plan_into(
        self, entry: _Open, batch: list[tuple[float, int, _Open, int]], start: float, end: float
    ) -> int:
        """Move ``entry``'s records due before ``end`` into ``batch``; the rest wait in the
        heap. Returns how many of them count toward the window (due at or after ``start``:
        the warm-up backlog of the first window does not)."""
        counted = 0
        n = len(entry.values)
        while entry.planned < n:
            at = entry.send_at(entry.planned)
            if at >= end:
                self._push(entry)
                break
            self._seq += 1
            batch.append((at, self._seq, entry, entry.planned))
            entry.planned += 1
            counted += at >= start and not (entry.post and entry.planned - 1 in entry.post)
        return counted

    def _in_working_time(self, start: float, end: float) -> bool:
        if self.activity is not None:
            return True
        cal = self.sim.calendar
        return cal.is_working_instant(
            datetime.fromtimestamp(start, VN_TZ)
        ) and cal.is_working_instant(datetime.fromtimestamp(end, VN_TZ))

    def _target(self, mean: float) -> int:
        """A Poisson(``mean``) draw: arrivals of a unit-rate process within ``mean``."""
        n, t = 0, self._arrivals.expovariate(1.0)
        while t < mean:
            n += 1
            t += self._arrivals.expovariate(1.0)
        return n

    def _plan_window(self) -> None:
        """Fix the records of the next window: those open dossiers have due in it, then new
        dossiers up to the window's target (in working time) or the night's online
        submissions (outside it)."""
        if not self._warmed:
            self._admit_warmup()
        start = self._window
        k = self._planned
        self._planned += 1
        end = self._window = self.t0.timestamp() + self._planned * self.window_s
        batch: list[tuple[float, int, _Open, int]] = []
        counted = 0
        while self._heap and self._heap[0][0] < end:
            _, _, entry = heapq.heappop(self._heap)
            counted += self._plan_into(entry, batch, start, end)
        counted += self._phantoms.pop(k, 0)
        in_hours = self._in_working_time(start, end)
        if in_hours != self._in_hours:
            self._note_calendar(in_hours, start)
        rng = self._arrivals
        if in_hours:
            target = self._target(self.live.rate * self.window_s)
            tries = 0
            while counted < target - self._credit and tries < 4 * target + 100:  # never spin
                tries += 1
                at = start + rng.random() * (end - start)
                entry = self._admit(datetime.fromtimestamp(at, VN_TZ))
                if entry is not None:
                    counted += self._plan_into(entry, batch, start, end)
                    counted += self._phantoms.pop(k, 0)
            cap = self.live.rate * CREDIT_S
            self._credit = int(min(cap, max(0, self._credit + counted - target)))
        else:  # closed: the open-loop arrivals, of which only online submissions get in
            self._credit = 0
            at = start
            while self.live_intensity > 0:
                at += rng.expovariate(self.live_intensity)
                if at >= end:
                    break
                entry = self._admit(datetime.fromtimestamp(at, VN_TZ))
                if entry is not None:
                    self._plan_into(entry, batch, start, end)
            self._phantoms.pop(k, 0)
        batch.sort(key=lambda r: r[:2])
        self._due.extend(batch)
        if self._freeze_gc:
            # The held dossiers are long-lived and acyclic (freed by reference counting when
            # they close): keep the collector from walking them all again and again. Its full
            # passes over ~10^5 dossiers made records ~0.1 s late at p99 at 2,000 records/s
            # (30 ms with them frozen). Frozen objects are never collected, so once every
            # GC_THAW_S of windows they are thawed and collected once: should anything
            # cyclic have been frozen, a session of days does not keep it (one pause then).
            if k and k % max(1, round(GC_THAW_S / self.window_s)) == 0:
                gc.unfreeze()
                gc.collect()
            gc.freeze()

    def _note_calendar(self, in_hours: bool, start: float) -> None:
        """Say when the rate stops and starts holding (without --around-the-clock)."""
        first = self._in_hours is None
        self._in_hours = in_hours
        at = datetime.fromtimestamp(start, VN_TZ)
        if not in_hours:
            log.info(
                "live_outside_working_hours",
                at=at.isoformat(),
                until=self.sim.calendar.next_working_instant(at).isoformat(),
                note="counters closed, officers idle: only online submissions arrive; "
                "--around-the-clock holds the rate at any hour",
            )
        elif not first:
            log.info("live_working_hours", at=at.isoformat(), rate=self.live.rate)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, send: Callable[[Record], None], stop: Callable[[], bool]) -> int:
        """Send records until ``stop()`` (or ``duration_s``); returns the number sent.

        A window is planned one window before the clock reaches it, so generating its new
        dossiers does not make its first records late; planning further ahead would hold up
        the records due meanwhile (at 2,000 records/s half a second ahead made them ~0.3 s late
        at p99).
        """
        deadline = (
            self.t0 + timedelta(seconds=self.live.duration_s)
            if self.live.duration_s is not None
            else None
        )
        window = self.window_s
        while not stop():
            now = self.clock.now()
            if deadline is not None and now >= deadline:
                break
            now_ts = now.timestamp()
            while self._window <= now_ts + window:  # (several after a long sleep)
                self._plan_window()
            sent_in_round = 0
            while self._due and self._due[0][0] <= now_ts:
                self._send_next(send)
                sent_in_round += 1
                if sent_in_round % 1000 == 0 and stop():
                    break
            wake = self._window - window
            if self._due:
                wake = min(wake, self._due[0][0])
            if deadline is not None:
                wake = min(wake, deadline.timestamp())
            self.clock.sleep(min(self.live.max_sleep_s, max(0.0, wake - now_ts)))
        self.stopped_at = self.clock.now()
        if self._freeze_gc:
            gc.unfreeze()
        return self.stats.records

    def _send_next(self, send: Callable[[Record], None]) -> None:
        send_at, seq, entry, i = self._due.popleft()
        at = datetime.fromtimestamp(entry.times[i], VN_TZ)
        topic = entry.topics[i]
        send(Record(at, seq, topic, entry.dossier_id, entry.values[i], entry.fault(i)))
        if topic == PostalOrderRequested.TOPIC:  # the truth notes what the post was asked
            order = self.decoder(entry.values[i])
            if isinstance(order, PostalOrderRequested):
                self.truth.postal_orders[order.kind.value].add(entry.dossier_id)
        self.stats.records += 1
        self.stats.by_topic[topic] += 1
        if send_at < self.t0.timestamp():
            self.stats.warmup_records += 1
        if i == 0:
            self._in_progress += 1
        entry.pos = i + 1
        if entry.pos == len(entry.values):  # closed: only its folded truth stays in memory
            self._in_progress -= 1
            self._extend_periods(at)
            add_folded(self.truth, entry.folded(entry.pos, self.decoder))
            self.closed_dossiers += 1

    def _extend_periods(self, instant: datetime) -> None:
        """Count periods from the warm-up start through the end of ``instant``'s day.

        (``truth.periods_in`` stops before the window's end date, which suits replay windows
        ending at midnight; a live window ends mid-day and today's periods count too.)
        """
        through = datetime.combine(
            instant.astimezone(VN_TZ).date() + timedelta(days=1), datetime.min.time(), VN_TZ
        )
        if self._periods_through is not None and through <= self._periods_through:
            return
        self._periods_through = through
        span = Period("live", self.warm_start, through)
        self.truth.periods = [(k, p) for k in self.period_kinds for p in periods_in(span, k)]

    @property
    def open_dossiers(self) -> int:
        """Dossiers that sent records and are not closed: in progress on the bus."""
        return self._in_progress

    @property
    def held_dossiers(self) -> int:
        """Dossiers in memory: admitted and not closed (a planned window's new arrivals too)."""
        return self.stats.arrivals - self.closed_dossiers

    # -- ground truth ----------------------------------------------------------------------
    def truth_json(self) -> dict[str, Any]:
        """What the bus must show for the records sent (open dossiers: their sent prefix)."""
        if self._truth_json is not None:
            return self._truth_json
        end = self.stopped_at or self.clock.now()
        truth = self.truth
        window = Period(truth.window.key, self.warm_start, max(end, self.t0))
        truth.window = window  # open dossiers are cut here: in progress at the stop
        self._extend_periods(window.end)
        held = {id(e): e for _, _, e in self._heap}
        held.update((id(e), e) for _, _, e, _ in self._due)
        for entry in sorted(held.values(), key=lambda e: e.dossier_id):
            if 0 < entry.pos < len(entry.values):
                add_folded(truth, entry.folded(entry.pos, self.decoder))
        meta = {
            "seed": self.config.seed,
            "period": window.key,
            "mode": "live",
            "dossiers": truth.dossiers,
            "t0": self.t0.isoformat(),
            "stopped_at": end.isoformat(),
            "rate": self.live.rate,
            "records_per_dossier": round(self.records_per_dossier, 2),
            "warmup_days": self.live.warmup_days,
            "around_the_clock": self.live.around_the_clock,
            "open_dossiers": self.open_dossiers,
            "records": self.stats.records,
            "faults": {k: v for k, v in self.faults.rates.items() if v},
            "faults_injected": dict(self.fault_counts),
            "period_kinds": list(self.period_kinds),
        }
        if self.config.postal != "simulated":
            meta["postal"] = self.config.postal
        self._truth_json = truth.to_json(meta)
        return self._truth_json


def _post_record(d: Delivery) -> bool:
    """A record the post writes, or the order asking it to (``--postal connector``).

    They are what differs between the postal modes. With the connector the windows count,
    instead of the orders, the post records the simulator would have written (the dossier's
    twin with ``postal: simulated``): both modes then admit the same dossiers at the same
    instants (``--rate`` counts the post as if simulated, as the sample of records per dossier
    always did), and the simulated post gets exactly ``rate`` on the bus.
    """
    if d.topic in (PostalTracking.TOPIC, PostalOrderRequested.TOPIC):
        return True
    return isinstance(d.event, ResultReturned) and d.event.method.value == "post"


@dataclass
class _Part:
    """The fault bookkeeping of the records actually sent (absorbed / flagged)."""

    absorbed: dict[str, int]
    flagged: dict[str, int]


def run_with_signals(
    sim: LiveSimulation, send: Callable[[Record], None], clock: WallClock
) -> tuple[int, str]:
    """Run until Ctrl-C or SIGTERM (or ``duration_s``); returns (records, why it stopped)."""
    import signal

    stopping: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signal.Signals(signum).name)
        clock.wake.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        n = sim.run(send, lambda: bool(stopping))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return n, stopping[0] if stopping else "duration"
