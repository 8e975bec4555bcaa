"""Live-mode figures without a broker: the record rate over time, dossiers held, the stop.

Why a script: docs/simulators.md quotes these figures; this is how to get them again.

    python benchmarks/bench_live.py fake RATE HOURS [--calendar] [--marks 0:60,600:660]
    python benchmarks/bench_live.py wall RATE SECONDS

``fake``: a fake clock that moves only when the loop sleeps (an hour takes seconds), the real
Avro codec, around the clock unless ``--calendar`` (then the working calendar, from Monday
9:00). Prints records/s in each span of ``--marks`` and in every hour, the dossiers held,
the RSS, and how long writing the truth at the stop takes. ``wall``: the wall clock for
SECONDS, printing how late records leave after their event time (records after the first
5 s; records dated before their dossier's arrival, such as the post's pickup scans, and the
warm-up burst are left out) and the CPU used.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import datetime, timedelta

from lienthong.schemas import decode, encode
from lienthong.schemas.models import VN_TZ
from lienthong.simulators.faults import FaultConfig
from lienthong.simulators.live import LiveConfig, LiveSimulation, SteppedClock, WallClock
from lienthong.simulators.province import Period, SimConfig
from lienthong.simulators.run import Record

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=VN_TZ)


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def fake(rate: float, hours: float, calendar: bool, marks: list[tuple[int, int]]) -> None:
    clock = SteppedClock(MONDAY_9)
    cfg = SimConfig(Period("live", MONDAY_9 - timedelta(days=1), MONDAY_9), seed=7)
    live = LiveConfig(rate=rate, warmup_days=1, around_the_clock=not calendar)
    sim = LiveSimulation(cfg, live, FaultConfig(), encode, decode, clock)
    per_second: dict[int, int] = {}
    t0 = sim.t0

    def send(r: Record) -> None:
        if clock.now() > t0 or r.at >= t0:  # the warm-up burst at t0 is not the rate
            s = int((clock.now() - t0).total_seconds())
            per_second[s] = per_second.get(s, 0) + 1

    end = hours * 3600
    next_hour = [3600]

    def stop() -> bool:
        elapsed = (clock.now() - t0).total_seconds()
        if elapsed >= next_hour[0]:
            print(
                f"after {next_hour[0] // 3600} h: {sim.held_dossiers:,} dossiers held "
                f"({sim.open_dossiers:,} in progress), {sim.stats.arrivals:,} admitted, "
                f"RSS {_rss_mb()} MB",
                flush=True,
            )
            next_hour[0] += 3600
        return elapsed >= end

    started = time.process_time()
    sim.run(send, stop)
    cpu = time.process_time() - started

    def rate_in(a: int, b: int) -> float:
        return sum(v for k, v in per_second.items() if a <= k < b) / (b - a)

    for a, b in [*marks, *((h * 3600, (h + 1) * 3600) for h in range(int(hours)))]:
        if b <= end:
            got = rate_in(a, b)
            print(f"records/s in [{a} s, {b} s): {got:.2f} ({got / rate:.0%} of --rate {rate:g})")
    started = time.monotonic()
    truth = sim.truth_json()
    print(
        f"window {sim.window_s:g} s, {sim.records_per_dossier:.1f} records per dossier; "
        f"CPU {cpu:.1f} s for {hours:g} h; truth at the stop {time.monotonic() - started:.1f} s "
        f"for {truth['meta']['open_dossiers']:,} dossiers in progress"
    )


def wall(rate: float, seconds: float) -> None:
    clock = WallClock()
    now = clock.now()
    cfg = SimConfig(Period("live", now - timedelta(days=1), now), seed=7)
    live = LiveConfig(rate=rate, warmup_days=1, around_the_clock=True, duration_s=seconds)
    sim = LiveSimulation(cfg, live, FaultConfig(), encode, decode, clock)
    late: list[float] = []
    counted = [0]
    t0 = sim.t0.timestamp()

    def send(r: Record) -> None:
        at, now = r.at.timestamp(), time.time()
        if now >= t0 + 5:
            counted[0] += 1
            if at >= t0 and now - at < 60:  # (pre-dated records leave at their arrival)
                late.append(now - at)

    started = time.process_time()
    sim.run(send, lambda: False)
    cpu = time.process_time() - started
    late.sort()

    def q(p: float) -> float:
        return late[min(len(late) - 1, int(p * len(late)))] * 1000

    print(
        f"--rate {rate:g}: {counted[0] / (seconds - 5):.1f} records/s after the first 5 s; "
        f"late p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {late[-1] * 1000:.1f} ms "
        f"({len(late):,} records); CPU {cpu / seconds:.0%} of a core"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clock", choices=("fake", "wall"))
    p.add_argument("rate", type=float)
    p.add_argument("span", type=float, help="fake: hours; wall: seconds")
    p.add_argument("--calendar", action="store_true", help="working calendar (fake only)")
    p.add_argument("--marks", default="0:60,600:660", help="spans in seconds (fake only)")
    args = p.parse_args()
    if args.clock == "wall":
        wall(args.rate, args.span)
        return
    marks = [tuple(int(x) for x in m.split(":")) for m in args.marks.split(",") if m]
    fake(args.rate, args.span, args.calendar, marks)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
