"""What one console page costs over a province's worth of live-stats snapshots.

Loads synthetic snapshots (agencies × procedures × channels × the labels a month page reads:
the month and its 31 days, plus three other periods) into the console's state, then times the
overview and its chart the way the app builds them (running per-agency sums), and the plain
recomputation over every snapshot for comparison.

Run:  python benchmarks/bench_console.py [AGENCIES] [PROCEDURES]
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from types import SimpleNamespace

from lienthong.connectors.console import view
from lienthong.connectors.console.feed import STATS_FIELDS, BusState
from lienthong.domain.agencies import load_agencies
from lienthong.domain.stats import VN


def main(agencies_n: int = 60, procedures_n: int = 100) -> None:
    registry = load_agencies()
    agencies = [a.code for a in registry][:agencies_n]
    procedures = [f"1.{i:06d}" for i in range(procedures_n)]
    labels = ["month:2026-01", *(f"day:2026-01-{d:02d}" for d in range(1, 32))]
    labels += ["month:2026-02", "quarter:2026-Q1", "year:2026"]
    import tracemalloc

    tracemalloc.start()
    state = BusState()
    as_of = datetime(2026, 1, 31, 16, tzinfo=VN)
    started = time.perf_counter()
    n = 0
    for label in labels:
        for agency in agencies:
            for procedure in procedures:
                for channel in ("counter", "online", "postal"):
                    state.put_stats(
                        SimpleNamespace(
                            key=f"{agency}|{procedure}|{channel}|{label}",
                            as_of=as_of,
                            online_rate=0.1,
                            postal_rate=0.1,
                            **dict.fromkeys(STATS_FIELDS, 3),
                        )
                    )
                    n += 1
    load_s = time.perf_counter() - started
    memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{n} snapshots ({len(agencies)} agencies) loaded in {load_s:.1f} s "
          f"({load_s / n * 1e6:.1f} µs each, traced), {memory / n:.0f} bytes each")  # fmt: skip
    period = view.resolve_period("month", state.as_of or as_of)

    def page() -> None:
        sums = state.sums_of(view.labels_for(period))
        view.agency_rows(sums[period.label], registry)
        view.series_of(sums, period)

    def recompute() -> None:
        stats = state.stats_of(view.labels_for(period))
        view.overview(stats, period, registry)
        view.daily_series(stats, period)

    for name, fn, runs in (("running sums (the app)", page, 50), ("recomputed", recompute, 3)):
        started = time.perf_counter()
        for _ in range(runs):
            fn()
        print(
            f"month overview + chart, {name}: {(time.perf_counter() - started) / runs * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
