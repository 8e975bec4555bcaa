"""Terminal view of the live counts (``lienthong stats --watch``) for people without a browser."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lienthong.domain.agencies import load_agencies

COLUMNS = (
    ("received", "received"),
    ("on time", None),
    ("late", "finished_late"),
    ("in progress", None),
    ("overdue", "in_progress_overdue"),
)


def by_agency(stats: dict[str, dict[str, int]], period: str | None = None) -> dict[str, Counter]:
    """Sum snapshots (keys agency|procedure|channel|period) per agency for one period."""
    out: dict[str, Counter] = {}
    for key, row in stats.items():
        agency, _proc, channel, per = key.split("|")
        if channel == "*" or (period and per != period):
            continue
        c = out.setdefault(agency, Counter())
        c.update({k: int(v) for k, v in row.items() if isinstance(v, int | float)})
    return out


def default_period(stats: dict[str, dict[str, int]]) -> str | None:
    """The latest month present (summing day, month and year snapshots would count thrice)."""
    periods = {key.split("|")[3] for key in stats}
    months = sorted(p for p in periods if p.startswith("month:"))
    return months[-1] if months else (sorted(periods)[-1] if periods else None)


def render_table(stats: dict[str, dict[str, int]], period: str | None = None) -> str:
    names = load_agencies()
    period = period or default_period(stats)
    rows = by_agency(stats, period)
    header = f"{'agency':<52} {'received':>9} {'on time':>8} {'late':>6} {'in progress':>12}"
    lines = [f"period {period or '-'}", header, "-" * len(header)]
    total: Counter[str] = Counter()
    for agency in sorted(rows):
        c = rows[agency]
        total.update(c)
        lines.append(_line(f"{agency} {names.name_of(agency)}"[:52], c))
    lines.append("-" * len(header))
    lines.append(_line("total", total))
    return "\n".join(lines)


def _line(label: str, c: Any) -> str:
    on_time = c.get("finished_early", 0) + c.get("finished_on_time", 0)
    progress = (
        c.get("in_progress_on_time", 0)
        + c.get("in_progress_overdue", 0)
        + c.get("waiting_supplement", 0)
    )
    return (
        f"{label:<52} {c.get('received', 0):>9} {on_time:>8} {c.get('finished_late', 0):>6} "
        f"{progress:>12}"
    )
