"""What one console page costs over a province's worth of live-stats snapshots.

Loads synthetic snapshots (agencies × procedures × channels × the labels a month page reads:
the month and its 31 days, plus three other periods) into the console's state, then times the
overview and its chart the way the app builds them (running per-agency sums), and the plain
recomputation over every snapshot for comparison.

Run:  python benchmarks/bench_console.py [AGENCIES] [PROCEDURES]

``python benchmarks/bench_console.py years [YEARS] [DOSSIERS_PER_DAY]`` feeds instead a
synthetic province for that many years (figures per day / month / quarter / year, dossiers
with step and dossier alerts, stuck handoffs, step handbacks and ends, postal alerts, dead
letters) and prints the memory the state holds at each year's end. With
``BENCH_CONSOLE_FEED=path/to/feed.py`` it loads ``BusState`` from that file (an older
version, for a before/after figure).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from lienthong.connectors.console import view
from lienthong.connectors.console.feed import STATS_FIELDS, BusState
from lienthong.domain.agencies import load_agencies
from lienthong.domain.stats import VN


def _load(
    state: Any, labels: Iterable[str], agencies: list[str], procedures: list[str], as_of: datetime
) -> int:
    """One snapshot per agency × procedure × channel × label; how many."""
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
    return n


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
    n = _load(state, labels, agencies, procedures, as_of)
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


def _state_class() -> type:
    """``BusState`` of this tree, or of the file named by BENCH_CONSOLE_FEED."""
    import importlib.util
    import os

    path = os.environ.get("BENCH_CONSOLE_FEED")
    if not path:
        return BusState
    spec = importlib.util.spec_from_file_location("bench_feed", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_feed"] = module
    spec.loader.exec_module(module)
    return module.BusState


def years(n_years: int = 2, per_day: int = 800) -> None:
    """Memory held after each synthetic province-year (tracemalloc)."""
    import inspect
    import tracemalloc
    from datetime import timedelta

    from lienthong.connectors import headers as h
    from lienthong.connectors.console.feed import DeadLetter

    state = _state_class()()
    bounded = "partition" in inspect.signature(state.put_alert).parameters
    registry = load_agencies()
    agencies = [a.code for a in registry][:34]
    procedures = [f"1.{i:06d}" for i in range(10)]
    tracemalloc.start()
    started = time.perf_counter()
    day0 = datetime(2026, 1, 1, 8, tzinfo=VN)
    later: dict[int, list[tuple[str, int, str, str]]] = {}
    returned = "Trả kết quả bước xử lý"
    for day in range(365 * n_years):
        now = day0 + timedelta(days=day)
        quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
        labels = (f"day:{now:%Y-%m-%d}", f"month:{now:%Y-%m}", f"quarter:{quarter}")
        _load(state, labels, agencies, procedures, now)
        for i in range(per_day):
            dossier = f"000.00.01.H10-{now:%y%m%d}-{i:04d}"
            agency = agencies[i % len(agencies)]
            kw = {"partition": i % 6} if bounded else {}
            if i % 4 == 0:  # a step late, handed back two days later
                state.put_alert(_bench_alert(dossier, agency, now, 1), **kw)
                later.setdefault(day + 2, []).append((dossier, 4, agency, returned))
            if i % 10 == 0:  # a handoff not accepted in time, accepted the next day
                state.put_escalation(
                    SimpleNamespace(
                        envelope=SimpleNamespace(dossier_id=dossier, occurred_at=now),
                        handoff_id=f"{dossier}/2",
                        step=2,
                        from_agency=agencies[0],
                        to_agency=agency,
                        sent_at=now,
                        accept_due_at=now + timedelta(hours=8),
                    ),
                    **kw,
                )
            if i % 7 == 0:
                state.put_alert(_bench_alert(dossier, agency, now, None), **kw)
            later.setdefault(day + 5, []).append((dossier, 10, agency, "Đã trả kết quả"))
        for dossier, code, agency, note in later.pop(day, []):
            if bounded:
                at = now + timedelta(hours=1)
                state.put_portal_status(dossier, code, agency=agency, note=note, at=at)
            else:
                state.put_portal_status(dossier, code)
        state.put_ops_alert(
            {"alert_type": "postal_returned", "alert_id": f"p{day}", "raised_at": now.isoformat()}
        )
        for j in range(20):
            headers = ((h.DLQ_SOURCE_TOPIC, b"dossier-events"), (h.DLQ_ERROR_CLASS, b"Schema"))
            state.put_dead_letter(DeadLetter(0, day * 20 + j, b"k", b"v" * 200, headers))
        if (day + 1) % 365 == 0:
            memory, _ = tracemalloc.get_traced_memory()
            held = state.sizes() if hasattr(state, "sizes") else {}
            print(
                f"year {(day + 1) // 365}: {memory / 1e6:.0f} MB held "
                f"({'bounded' if bounded else 'unbounded'}, {time.perf_counter() - started:.0f} s)"
                f" alerts={len(state.alerts)} ended={len(state.ended)} "
                f"escalations={len(state.escalations)} labels={len(state.stats_by_label)} "
                f"dead_letters={len(state.dead_letters)} {held}"
            )
    tracemalloc.stop()


def _bench_alert(dossier: str, agency: str, now: datetime, step: int | None) -> SimpleNamespace:
    return SimpleNamespace(
        EVENT_TYPE="deadline_overdue",
        envelope=SimpleNamespace(dossier_id=dossier, occurred_at=now),
        scope=SimpleNamespace(value="step" if step else "dossier"),
        responsible_agency=agency,
        step=step,
        due_at=now,
        overdue_working_minutes=0,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["years"]:
        years(*(int(a) for a in sys.argv[2:4]))
    else:
        main(*(int(a) for a in sys.argv[1:3]))
