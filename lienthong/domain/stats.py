"""The live counts of BRIEF §6, computed from tracker records (pure, no Kafka).

Why figures are *recomputed* from the dossiers' records and never kept as running deltas: a
record is exact under redelivery (event ids are deduplicated per dossier), so any figure that
is a function of the records is exact too, after a crash, a replay or a rebalance. A delta
counter would have to be kept atomically with every dossier's record, which Kafka changelogs
cannot do across keys.

Definitions (period P = [start, end), ``t`` = min(end, as_of)):

- received: received at the counter / online / by post during P (intake refusals excluded);
- carried_over: received before P and still open at P's start;
- finished_early / on_time / late: processing ended (finished or stopped) during P, classified
  with the domain rules. Open overdue dossiers are NEVER counted here (the known bug);
- in_progress_on_time / in_progress_overdue: open at ``t``, not waiting for a supplement, with
  the effective due instant after / before ``t``;
- waiting_supplement: open at ``t`` with a supplement request outstanding (clock paused);
- refused, withdrawn, returned_by_post: happened during P.
Rates: on-time = (early + on time) / finished; online / postal = share of received.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from lienthong.domain.tracking import Record, effective_due

__all__ = [
    "FIGURES",
    "Period",
    "figures",
    "period_of",
    "periods_changed",
    "periods_of_record",
    "rates",
    "stats_key",
]

VN = ZoneInfo("Asia/Ho_Chi_Minh")
KINDS = ("day", "month", "quarter", "year")
FIGURES = (
    "received",
    "carried_over",
    "finished_early",
    "finished_on_time",
    "finished_late",
    "in_progress_on_time",
    "in_progress_overdue",
    "waiting_supplement",
    "refused",
    "withdrawn",
    "returned_by_post",
    "received_online",
    "received_postal",
)
_CHANNELS = {1: "counter", 2: "online", 3: "postal"}


@dataclass(frozen=True)
class Period:
    kind: str
    key: str  # 2025-03-04 | 2025-03 | 2025-Q1 | 2025
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.key}"


def period_of(kind: str, instant: datetime) -> Period:
    t = instant.astimezone(VN)
    if kind == "day":
        start = datetime(t.year, t.month, t.day, tzinfo=VN)
        nxt = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=VN)
        return Period(kind, start.strftime("%Y-%m-%d"), start, nxt)
    if kind == "month":
        start = datetime(t.year, t.month, 1, tzinfo=VN)
        y, m = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
        return Period(kind, start.strftime("%Y-%m"), start, datetime(y, m, 1, tzinfo=VN))
    if kind == "quarter":
        q = (t.month - 1) // 3
        start = datetime(t.year, 3 * q + 1, 1, tzinfo=VN)
        y, m = (t.year + 1, 1) if q == 3 else (t.year, 3 * q + 4)
        return Period(kind, f"{t.year}-Q{q + 1}", start, datetime(y, m, 1, tzinfo=VN))
    if kind == "year":
        start = datetime(t.year, 1, 1, tzinfo=VN)
        return Period(kind, str(t.year), start, datetime(t.year + 1, 1, 1, tzinfo=VN))
    raise ValueError(f"unknown period kind {kind!r}: day, month, quarter or year")


def parse_period(label: str) -> Period:
    """``month:2025-03`` (or the bare key, kind inferred) → :class:`Period`."""
    kind, _, key = label.rpartition(":")
    if not kind:
        kind = {10: "day", 7: "quarter" if "Q" in key else "month", 4: "year"}.get(len(key), "")
    if kind == "quarter":
        year, q = key.split("-Q")
        instant = datetime(int(year), 3 * (int(q) - 1) + 1, 1, tzinfo=VN)
    else:
        parts = [int(p) for p in key.split("-")] + [1, 1]
        instant = datetime(parts[0], parts[1], parts[2], tzinfo=VN)
    period = period_of(kind, instant)
    if period.key != key:
        raise ValueError(f"bad period {label!r}")
    return period


def stats_key(record: Record) -> str | None:
    """agency|procedure|channel for a dossier (the agency that received it)."""
    agency = record["receiving_agency"]
    if agency is None or record["state"]["received_at"] is None and record["refused_at"] is None:
        return None
    channel = _CHANNELS.get(record["state"]["channel"] or 0, "counter")
    return f"{agency}|{record['procedure'] or 'unknown'}|{channel}"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _closed_at(record: Record) -> datetime | None:
    """When the dossier stopped being 'in progress': ended, withdrawn or refused."""
    times = [
        _dt(record["state"]["ended_at"]),
        _dt(record["withdrawn_at"]),
        _dt(record["refused_at"]),
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def periods_changed(at: datetime, as_of: datetime) -> set[str]:
    """Periods whose figures a change at ``at`` can alter, as known at ``as_of``.

    Every figure of a period depends only on what happened before the period's end, so a
    change at ``at`` alters the periods containing ``at`` and the later ones; when changes
    arrive in time order the later ones are exactly the current periods (containing
    ``as_of``); periods after ``at`` and before ``as_of`` are recomputed when next touched.
    """
    return {period_of(kind, t).label for kind in KINDS for t in {at, as_of}}


def periods_of_record(record: Record, as_of: datetime) -> set[str]:
    """Every period a dossier has figures in (used to republish after a rebalance/restart)."""
    instants = [as_of]
    for value in (
        record["state"]["received_at"],
        record["state"]["ended_at"],
        record["withdrawn_at"],
        record["refused_at"],
        record["returned_by_post_at"],
    ):
        if value is not None:
            instants.append(datetime.fromisoformat(value))
    return {period_of(kind, t).label for kind in KINDS for t in instants}


def _in(t: datetime | None, period: Period) -> bool:
    return t is not None and period.start <= t < period.end


def figures(records: Iterable[Record], period: Period, as_of: datetime) -> dict[str, int]:
    """The §6 counts of ``period`` over ``records`` as known at ``as_of``."""
    out = dict.fromkeys(FIGURES, 0)
    t = min(period.end, as_of)
    for r in records:
        state = r["state"]
        received = _dt(state["received_at"])
        if _in(_dt(r["refused_at"]), period):
            out["refused"] += 1
        if received is None:
            continue
        closed = _closed_at(r)
        if _in(received, period):
            out["received"] += 1
            if state["channel"] == 2:
                out["received_online"] += 1
            elif state["channel"] == 3:
                out["received_postal"] += 1
        elif received < period.start and (closed is None or closed >= period.start):
            out["carried_over"] += 1
        ended = _dt(state["ended_at"])
        if _in(ended, period) and r.get("outcome"):
            out[f"finished_{r['outcome']}"] += 1
        if _in(_dt(r["withdrawn_at"]), period):
            out["withdrawn"] += 1
        if _in(_dt(r["returned_by_post_at"]), period):
            out["returned_by_post"] += 1
        if received <= t and (closed is None or closed > t):
            waiting = any(
                datetime.fromisoformat(s) <= t and (e is None or datetime.fromisoformat(e) > t)
                for s, e in r["pauses"]
            )
            if waiting:
                out["waiting_supplement"] += 1
                continue
            due = effective_due(r, t)
            if due is not None and due < t:
                out["in_progress_overdue"] += 1
            else:
                out["in_progress_on_time"] += 1
    return out


def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in FIGURES}


def rates(f: dict[str, int]) -> dict[str, float | None]:
    finished = f["finished_early"] + f["finished_on_time"] + f["finished_late"]
    received = f["received"]
    return {
        "on_time_rate": (
            round((f["finished_early"] + f["finished_on_time"]) / finished, 6) if finished else None
        ),
        "online_rate": round(f["received_online"] / received, 6) if received else None,
        "postal_rate": round(f["received_postal"] / received, 6) if received else None,
    }
