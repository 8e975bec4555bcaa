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

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from lienthong.domain.record import DossierRecord, effective_due

__all__ = [
    "FIGURES",
    "KeyFigures",
    "Period",
    "Summary",
    "figures",
    "period_of",
    "periods_between",
    "periods_changed",
    "periods_of_record",
    "rates",
    "stats_key",
    "summarise",
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


def stats_key(record: DossierRecord) -> str | None:
    """agency|procedure|channel for a dossier (the agency that received it)."""
    agency = record.receiving_agency
    if agency is None or record.state.received_at is None and record.refused_at is None:
        return None
    channel = _CHANNELS.get(int(record.state.channel or 0), "counter")
    return f"{agency}|{record.procedure or 'unknown'}|{channel}"


def _closed_at(record: DossierRecord) -> datetime | None:
    """When the dossier stopped being 'in progress': ended, withdrawn or refused."""
    times = [record.state.ended_at, record.withdrawn_at, record.refused_at]
    present = [t for t in times if t is not None]
    return min(present) if present else None


@lru_cache(maxsize=4096)
def _labels_of_day(day: date) -> tuple[str, ...]:
    instant = datetime(day.year, day.month, day.day, 12, tzinfo=VN)
    return tuple(period_of(kind, instant).label for kind in KINDS)


def labels_of(instant: datetime) -> tuple[str, ...]:
    """The labels of the day, month, quarter and year containing ``instant`` (cached per day:
    computing four periods per record change and instant was a visible share of the work)."""
    return _labels_of_day(instant.astimezone(VN).date())


def periods_changed(at: datetime, as_of: datetime) -> set[str]:
    """Periods whose figures a change at ``at`` can alter, as known at ``as_of``.

    Every figure of a period depends only on what happened before the period's end, so a
    change at ``at`` alters the periods containing ``at`` and the later ones; when changes
    arrive in time order the later ones are exactly the current periods (containing
    ``as_of``). The periods between a key's previous publication and ``as_of`` are added by
    the caller (:func:`periods_between`).
    """
    return {*labels_of(at), *labels_of(as_of)}


def periods_between(start: datetime, end: datetime) -> set[str]:
    """Labels of every day, month, quarter and year overlapping ``[start, end]``.

    Why: a key's figures change without any event of its own (a dossier open across a month is
    carried over into it and in progress at its end), so when a key is published again every
    period since its last publication must be, or a month in which nothing happened to a key
    never gets its figures.
    """
    first = start.astimezone(VN).date()
    last = end.astimezone(VN).date()
    labels: set[str] = set()
    day = first
    while day <= last:
        labels.update(_labels_of_day(day))
        day = date.fromordinal(day.toordinal() + 1)
    return labels


def periods_of_record(record: DossierRecord, as_of: datetime) -> set[str]:
    """Every period a dossier has figures in (used to republish after a rebalance/restart):
    those of its own instants and every period it was open in (carried over, in progress)."""
    instants = [as_of]
    for value in (
        record.state.received_at,
        record.state.ended_at,
        record.withdrawn_at,
        record.refused_at,
        record.returned_by_post_at,
    ):
        if value is not None:
            instants.append(value)
    labels = {label for t in instants for label in labels_of(t)}
    received = record.state.received_at
    if received is not None and received < as_of:
        closed = _closed_at(record)
        labels |= periods_between(received, as_of if closed is None else min(closed, as_of))
    return labels


def _in(t: datetime | None, period: Period) -> bool:
    return t is not None and period.start <= t < period.end


def figures(records: Iterable[DossierRecord], period: Period, as_of: datetime) -> dict[str, int]:
    """The §6 counts of ``period`` over ``records`` as known at ``as_of``."""
    out = dict.fromkeys(FIGURES, 0)
    t = min(period.end, as_of)
    for r in records:
        state = r.state
        received = state.received_at
        if _in(r.refused_at, period):
            out["refused"] += 1
        if received is None:
            continue
        closed = _closed_at(r)
        if _in(received, period):
            out["received"] += 1
            if state.channel == 2:
                out["received_online"] += 1
            elif state.channel == 3:
                out["received_postal"] += 1
        elif received < period.start and (closed is None or closed >= period.start):
            out["carried_over"] += 1
        if _in(state.ended_at, period) and r.outcome:
            out[f"finished_{r.outcome}"] += 1
        if _in(r.withdrawn_at, period):
            out["withdrawn"] += 1
        if _in(r.returned_by_post_at, period):
            out["returned_by_post"] += 1
        if received <= t and (closed is None or closed > t):
            waiting = any(p.start <= t and (p.end is None or p.end > t) for p in r.pauses)
            if waiting:
                out["waiting_supplement"] += 1
                continue
            due = effective_due(r, t)
            if due is not None and due < t:
                out["in_progress_overdue"] += 1
            else:
                out["in_progress_on_time"] += 1
    return out


@lru_cache(maxsize=8192)
def period_of_label(label: str) -> Period:
    """:func:`parse_period`, cached: stage 1 parses the same few hundred labels per flush."""
    return parse_period(label)


@dataclass(frozen=True, slots=True)
class Summary:
    """What :func:`figures` reads from one record, parsed once when the record changes."""

    received: datetime | None
    channel: int | None
    closed: datetime | None  # ended, withdrawn or refused, whichever came first
    ended: datetime | None
    outcome: str | None
    refused: datetime | None
    withdrawn: datetime | None
    returned_by_post: datetime | None
    pauses: tuple[tuple[datetime, datetime | None], ...]
    # The appointment pushed back by the *closed* pauses: what ``effective_due(r, t)`` is
    # whenever the dossier is not waiting at ``t`` (an open pause started by ``t`` means
    # waiting; one starting after ``t`` is left out by ``pauses_of``).
    due: datetime | None


def _signature(record: DossierRecord) -> tuple[object, ...]:
    """Everything :func:`summarise` reads: most events (handoffs, fees, alerts noted) change
    none of it, and then the summary need not be rebuilt."""
    state = record.state
    return (
        state.received_at,
        state.channel,
        state.ended_at,
        state.due,
        record.outcome,
        record.refused_at,
        record.withdrawn_at,
        record.returned_by_post_at,
        record.pauses,
    )


def summarise(record: DossierRecord) -> Summary:
    state = record.state
    return Summary(
        received=state.received_at,
        channel=int(state.channel) if state.channel is not None else None,
        closed=_closed_at(record),
        ended=state.ended_at,
        outcome=record.outcome,
        refused=record.refused_at,
        withdrawn=record.withdrawn_at,
        returned_by_post=record.returned_by_post_at,
        pauses=tuple((p.start, p.end) for p in record.pauses),
        due=effective_due(record),
    )


def _event_figures(s: Summary) -> list[tuple[str, datetime]]:
    """The figures a record counts in the period containing an instant of its own."""
    out: list[tuple[str, datetime]] = []
    if s.refused is not None:
        out.append(("refused", s.refused))
    if s.received is None:
        return out
    out.append(("received", s.received))
    if s.channel == 2:
        out.append(("received_online", s.received))
    elif s.channel == 3:
        out.append(("received_postal", s.received))
    if s.ended is not None and s.outcome:
        out.append((f"finished_{s.outcome}", s.ended))
    if s.withdrawn is not None:
        out.append(("withdrawn", s.withdrawn))
    if s.returned_by_post is not None:
        out.append(("returned_by_post", s.returned_by_post))
    return out


def _first(item: tuple[datetime, str]) -> datetime:
    return item[0]


def _remove(ordered: list[tuple[datetime, str]], item: tuple[datetime, str]) -> None:
    i = bisect_left(ordered, item)
    if i == len(ordered) or ordered[i] != item:
        raise ValueError(f"{item!r} not indexed")
    del ordered[i]


class KeyFigures:
    """The §6 figures of one key's records, kept up to date record change by record change.

    Why: :func:`figures` reads every record of the key, and the live counts recompute a key
    whenever one of its records changes, which over a province-year is O(dossiers) per change.
    Here each figure is kept so that a period costs O(log n) plus the dossiers open around it:

    - received / finished / refused / withdrawn / returned by post: counters per period label,
      the record's old contribution taken out and the new one put in on every change;
    - carried over into ``[start, …)``: #(received < start) − #(received < start and closed <
      start), two sorted lists; ``closed < start and received < start`` is
      ``max(closed, received) < start``;
    - in progress / waiting at ``t``: evaluated per dossier, over the dossiers that can be open
      at ``t``: the ones not closed plus the ones closed after ``t`` (or those received by ``t``,
      whichever set is smaller).

    A member closed for good is folded (:meth:`fold`) into per-period counters, so only open
    dossiers keep a summary.

    The result equals :func:`figures` over the same records (a unit test holds them together);
    being a function of the latest records it stays exact under redelivery and replays.
    """

    def __init__(self) -> None:
        self.members: dict[str, Summary] = {}
        self.signatures: dict[str, tuple[object, ...]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.received: list[tuple[datetime, str]] = []
        self.closed: list[tuple[datetime, str]] = []  # (max(closed, received), id)
        self.open: set[str] = set()
        # Folded dossiers (closed for good, see :meth:`fold`): what they add to the carried
        # over and in-progress/waiting figures, per period label. Nothing per dossier is kept:
        # a later version of a folded record is recognised by the caller's ``was_final``.
        self.folded_counts: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self.members)

    def put(
        self,
        record: DossierRecord,
        final: bool = False,
        as_of: datetime | None = None,
        was_final: bool = False,
    ) -> None:
        """Index the latest version of a record of this key (cheap when nothing it counts in
        has changed). ``final``: the record is closed for good (no event changes its counts
        again); then, once its closing instant is not after ``as_of``, it is folded.
        ``was_final``: the version this one follows was final already, so if it is not held
        it has been folded (the index holds every version saved since it was built), and
        nothing it counts in can have changed: a redelivery, or a late event of a closed
        dossier."""
        record_id = record.id
        if was_final and record_id not in self.members:
            return
        signature = _signature(record)
        if record_id not in self.members or self.signatures.get(record_id) != signature:
            self.update(record_id, summarise(record))
            self.signatures[record_id] = signature
        if final and as_of is not None:
            self.fold(record_id, as_of)

    def fold(self, record_id: str, as_of: datetime) -> bool:
        """Fold a closed member into per-period counters and drop its summary.

        Why exact: a closed dossier is open at ``t`` only for ``received <= t < closed``; with
        ``closed <= as_of`` (and the figures asked as of ``as_of`` or later, as stage 1's clock
        only moves forward) every such ``t`` is the end of a period, never ``as_of``, so its
        in-progress/waiting figures are a fixed fact per period label, like "carried over"
        (received before the period's start, closed at or after it). Its event figures already
        are counters per label. Returns whether it was folded."""
        s = self.members.get(record_id)
        if s is None or s.closed is None or s.closed > as_of:
            return False
        if s.received is not None:
            received, closed = s.received, s.closed
            # the period ending exactly at ``received`` counts it open at its end
            for label in periods_between(received - _TICK, max(closed, received)):
                period = period_of_label(label)
                names: list[str] = []
                if received < period.start <= closed:
                    names.append("carried_over")
                if received <= period.end < closed:
                    names.append(_open_figure(s, period.end))
                for name in names:
                    counts = self.folded_counts.get(label)
                    if counts is None:
                        counts = self.folded_counts[label] = {}
                    counts[name] = counts.get(name, 0) + 1
        # out of the per-dossier structures, its event counters stay
        self.update(record_id, None)
        self._count(s, 1)
        return True

    def update(self, record_id: str, summary: Summary | None) -> None:
        """Replace a member's summary (``None``: the record left this key)."""
        self.signatures.pop(record_id, None)
        old = self.members.pop(record_id, None)
        if old is not None:
            self._count(old, -1)
            if old.received is not None:
                _remove(self.received, (old.received, record_id))
                if old.closed is None:
                    self.open.discard(record_id)
                else:
                    _remove(self.closed, (max(old.closed, old.received), record_id))
        if summary is None:
            return
        self.members[record_id] = summary
        self._count(summary, 1)
        if summary.received is not None:
            insort(self.received, (summary.received, record_id))
            if summary.closed is None:
                self.open.add(record_id)
            else:
                insort(self.closed, (max(summary.closed, summary.received), record_id))

    def _count(self, s: Summary, sign: int) -> None:
        for name, instant in _event_figures(s):
            for label in labels_of(instant):
                counts = self.counts.get(label)
                if counts is None:
                    counts = self.counts[label] = {}
                value = counts.get(name, 0) + sign
                if value:
                    counts[name] = value
                else:
                    counts.pop(name, None)
                    if not counts:
                        del self.counts[label]

    def figures(
        self,
        period: Period,
        as_of: datetime,
        at_cache: dict[datetime, dict[str, int]] | None = None,
    ) -> dict[str, int]:
        """:func:`figures` of this key's records; ``at_cache`` shares the open-dossier figures
        between periods ending at the same instant (the current day, month, quarter, year)."""
        out = dict.fromkeys(FIGURES, 0)
        out.update(self.counts.get(period.label, ()))
        start = period.start
        out["carried_over"] = bisect_left(self.received, start, key=_first) - bisect_left(
            self.closed, start, key=_first
        )
        t = min(period.end, as_of)
        state = at_cache.get(t) if at_cache is not None else None
        if state is None:
            state = self._open_at(t)
            if at_cache is not None:
                at_cache[t] = state
        out.update(state)
        for name, value in self.folded_counts.get(period.label, {}).items():
            out[name] += value
        return out

    def _open_at(self, t: datetime) -> dict[str, int]:
        received_by_t = bisect_right(self.received, t, key=_first)
        closed_after = len(self.closed) - bisect_right(self.closed, t, key=_first)
        if received_by_t <= len(self.open) + closed_after:
            ids: Iterable[str] = (rid for _, rid in self.received[:received_by_t])
        else:
            ids = [*self.open, *(rid for _, rid in self.closed[len(self.closed) - closed_after :])]
        out = {"in_progress_on_time": 0, "in_progress_overdue": 0, "waiting_supplement": 0}
        members = self.members
        for rid in ids:
            s = members[rid]
            received = s.received
            if received is None or received > t or (s.closed is not None and s.closed <= t):
                continue
            out[_open_figure(s, t)] += 1
        return out


_TICK = timedelta(microseconds=1)


def _open_figure(s: Summary, t: datetime) -> str:
    """Which in-progress figure a dossier open at ``t`` counts in."""
    for start, end in s.pauses:  # a loop, not any(): this runs per folded period
        if start <= t and (end is None or end > t):
            return "waiting_supplement"
    if s.due is not None and s.due < t:
        return "in_progress_overdue"
    return "in_progress_on_time"


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
