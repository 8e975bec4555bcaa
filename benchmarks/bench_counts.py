"""Stage 1 of the live counts over a simulated province month, without a broker (issue 14).

Why: on the full-month replay the tracker had applied every event after ~14 min while the live
counts were still far behind after 32 min; this drives :class:`LiveCounts` alone with the same
stream, so its cost and the partials it sends can be measured and profiled in seconds.

The simulator's dossiers (``lienthong simulate``'s generator, 1,300-procedure catalogue) are
applied in event-time order through the tracker's own ``track_in``, on 6 partitions by the Kafka
partitioner, each partition's clock being its newest event as in a replay. Every change is given
to stage 1 (``touch``); every ``--flush-every`` events (≈ one ``stats_flush_s`` at the worker's
rate) stage 1 is flushed (``take_dirty`` + ``partials``). Only stage-1 time is counted.

With ``--baseline`` the stage 1 of another commit (``--baseline-ref``, main before issue 14's
counts work) runs beside it on the same stream, so before/after come from one run; its code
reads the tracker record as the dict of that commit, so the events are also applied by that
commit's ``track_in`` for it (not counted: only stage-1 time is). ``--profile`` prints the
top of a cProfile of the current one.

Run:  python benchmarks/bench_counts.py [--dossiers 36521] [--baseline] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from kafka.partitioner.default import murmur2

from lienthong.domain.procedures import load_procedures
from lienthong.domain.stats import summarise
from lienthong.domain.tracking import Applied, track_in
from lienthong.simulators.province import Period, ProvinceSimulator, SimConfig
from lienthong.streams.counts import LiveCounts, is_closed
from lienthong.streams.facts import facts_of

PARTITIONS = 6
ROOT = Path(__file__).resolve().parents[1]


def _old_live_counts(ref: str) -> tuple[type, Callable[..., Any]]:
    """``LiveCounts`` and ``track_in`` as they were at ``ref`` (with their own copies of the
    stats rules and the tracker record beside them)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-counts-"))

    def load(name: str, path: str, patch: Callable[[str], str] = lambda s: s) -> ModuleType:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        file = tmp / f"{name}.py"
        file.write_text(patch(text))
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    tracking = load("bench_old_tracking", "lienthong/domain/tracking.py")

    def old_tracking(text: str) -> str:
        return text.replace("from lienthong.domain.tracking", "from bench_old_tracking")

    load("bench_old_stats", "lienthong/domain/stats.py", old_tracking)
    counts = load(
        "bench_old_counts",
        "streams/counts.py",
        lambda s: old_tracking(s).replace(
            "from lienthong.domain import stats as rules", "import bench_old_stats as rules"
        ),
    )
    return counts.LiveCounts, tracking.track_in


@dataclass
class Stage:
    name: str
    counts: Any
    seconds: float = 0.0
    partials: int = 0
    bytes: int = 0
    flushes: list[float] = field(default_factory=list)

    def touch(
        self, partition: int, record: Any, at: datetime, now: datetime, was_closed: bool
    ) -> None:
        # A baseline from before was_closed (it kept a hash of every folded id instead).
        extra = (was_closed,) if self.name == "current" else ()
        t0 = time.perf_counter()
        self.counts.touch(partition, record, at, now, *extra)
        self.seconds += time.perf_counter() - t0

    def flush(self) -> None:
        t0 = time.perf_counter()
        for (partition, key), labels in self.counts.take_dirty():
            for _label, value in self.counts.partials(partition, key, labels):
                self.partials += 1
                self.bytes += len(value)
        spent = time.perf_counter() - t0
        self.seconds += spent
        self.flushes.append(spent)

    def held(self) -> int:
        index = self.counts._index
        return sum(len(kf) for keys in index.values() for kf in keys.values())


def stream(dossiers: int, period: str, seed: int) -> list[tuple[datetime, int, Any]]:
    sim = ProvinceSimulator(SimConfig(Period.parse(period), seed=seed, dossiers=dossiers))
    events: list[tuple[datetime, int, Any]] = []
    for dossier in sim.dossiers():
        for event in dossier.events:
            facts = facts_of(event)
            if facts is not None:
                events.append((facts.at, len(events), facts))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def run(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    events = stream(args.dossiers, args.period, args.seed)
    print(
        f"stream: {args.dossiers} dossiers, {len(events)} dossier events, "
        f"generated in {time.perf_counter() - t0:.1f} s"
    )
    stages = [Stage("current", LiveCounts(epoch=lambda: 1.0))]
    old_track_in = None
    if args.baseline:
        old_counts, old_track_in = _old_live_counts(args.baseline_ref)
        stages.insert(0, Stage(f"baseline {args.baseline_ref}", old_counts(epoch=lambda: 1.0)))
    catalogue = load_procedures()
    records: dict[str, Any] = {}
    old_records: dict[str, Any] = {}  # the baseline's dict records
    clocks: dict[int, datetime] = {}
    offsets = [0] * PARTITIONS
    changes = 0
    profile = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    for n, (at, _, facts) in enumerate(events):
        partition = (murmur2(facts.dossier_id.encode()) & 0x7FFFFFFF) % PARTITIONS
        if partition not in clocks or at > clocks[partition]:
            clocks[partition] = at
        result = track_in(
            catalogue,
            records.get(facts.dossier_id),
            facts,
            partition=partition,
            offset=offsets[partition],
        )
        if not isinstance(result, Applied):
            offsets[partition] += 1
            continue
        was_closed = is_closed(records.get(facts.dossier_id))
        records[facts.dossier_id] = result.record
        changes += 1
        record_of = {"current": result.record}
        if old_track_in is not None:
            old = old_track_in(
                catalogue,
                old_records.get(facts.dossier_id),
                facts,
                partition=partition,
                offset=offsets[partition],
            )
            old_records[facts.dossier_id] = old.record
        offsets[partition] += 1
        for stage in stages:
            stage.counts.offset_seen(partition, offsets[partition])
            if profile is not None and stage.name == "current":
                profile.enable()
            record = record_of.get(stage.name) or old_records[facts.dossier_id]
            stage.touch(partition, record, at, clocks[partition], was_closed)
            if (n + 1) % args.flush_every == 0:
                stage.flush()
            if profile is not None and stage.name == "current":
                profile.disable()
    for stage in stages:
        stage.flush()
    wall = time.perf_counter() - t0
    print(f"applied: {changes} changes in {wall:.1f} s wall (tracker + every stage 1 below)")
    print(
        f"{'stage 1':<22} {'s':>8} {'µs/event':>9} {'events/s':>10} {'partials':>10} "
        f"{'per event':>9} {'bytes':>12} {'max flush s':>11} {'held':>7}"
    )
    for stage in stages:
        print(
            f"{stage.name:<22} {stage.seconds:8.2f} {1e6 * stage.seconds / changes:9.1f} "
            f"{changes / stage.seconds:10.0f} {stage.partials:10d} "
            f"{stage.partials / changes:9.2f} {stage.bytes:12d} {max(stage.flushes):11.3f} "
            f"{stage.held():7d}"
        )
    still_open = sum(1 for r in records.values() if summarise(r).closed is None)
    print(f"dossiers still open at the end: {still_open} of {len(records)}")
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=36_521, help="the month: 36,521")
    parser.add_argument("--period", default="2026-01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flush-every", type=int, default=700, help="events between flushes")
    parser.add_argument("--baseline", action="store_true", help="also run --baseline-ref's")
    parser.add_argument("--baseline-ref", default="9bba465")
    parser.add_argument("--profile", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
