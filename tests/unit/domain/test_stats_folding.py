"""Folding closed dossiers out of KeyFigures keeps every figure and bounds what is held.

Summaries are generated directly (any mix of receipts, pauses, appointments, outcomes,
refusals, withdrawals, returns by post); one KeyFigures keeps them all, the other folds each
closed one once the clock has reached its closing. Every day, month, quarter and year around
them must have the same figures, and only the dossiers not yet closed stay held.
"""

from __future__ import annotations

import heapq
import random
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lienthong.domain.stats import KINDS, VN, KeyFigures, Period, Summary, period_of

START = datetime(2025, 12, 20, tzinfo=VN)
HOURS = 24 * 75


def _at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


@st.composite
def summaries(draw: st.DrawFn) -> Summary:
    hour = st.integers(0, HOURS)
    if draw(st.integers(0, 19)) == 0:  # refused at intake: never received
        refused = _at(draw(hour))
        return Summary(None, 2, refused, None, None, refused, None, None, (), None)
    received = _at(draw(hour))
    channel = draw(st.sampled_from([1, 2, 3, None]))
    after = st.integers(0, 24 * 40).map(lambda h: received + timedelta(hours=h))
    pauses: list[tuple[datetime, datetime | None]] = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(after)
        end = draw(st.one_of(st.none(), st.integers(1, 24 * 10)))
        pauses.append((start, None if end is None else start + timedelta(hours=end)))
    due = draw(st.one_of(st.none(), after))
    how = draw(st.sampled_from(["open", "ended", "withdrawn", "refused"]))
    ended = withdrawn = refused = returned = None
    outcome = None
    if how == "ended":
        ended = draw(after)
        outcome = draw(st.sampled_from(["early", "on_time", "late", None]))
        if draw(st.booleans()):
            returned = ended + timedelta(hours=draw(st.integers(0, 72)))
    elif how == "withdrawn":
        withdrawn = draw(after)
    elif how == "refused":
        refused = draw(after)
    present = [t for t in (ended, withdrawn, refused) if t is not None]
    closed = min(present) if present else None
    return Summary(
        received, channel, closed, ended, outcome, refused, withdrawn, returned,
        tuple(pauses), due,
    )  # fmt: skip


def _periods() -> list[Period]:
    out: dict[str, Period] = {}
    t = START - timedelta(days=2)
    while t <= _at(HOURS + 24 * 60):
        for kind in KINDS:
            p = period_of(kind, t)
            out[p.label] = p
        t += timedelta(hours=12)
    return list(out.values())


PERIODS = _periods()


@settings(max_examples=60, deadline=None)
@given(st.lists(summaries(), min_size=1, max_size=40), st.integers(0, HOURS + 24 * 50))
def test_folded_figures_equal_unfolded_ones(items: list[Summary], clock_hours: int) -> None:
    as_of = _at(clock_hours)
    kept, folded = KeyFigures(), KeyFigures()
    for n, s in enumerate(items):
        kept.update(f"D{n}", s)
        folded.update(f"D{n}", s)
        folded.fold(f"D{n}", as_of)
    for n, s in enumerate(items):
        held = f"D{n}" in folded.members
        assert held == (s.closed is None or s.closed > as_of)
    for later in (as_of, as_of + timedelta(days=3)):  # the clock only moves forward
        for period in PERIODS:
            assert folded.figures(period, later) == kept.figures(period, later), period


def test_folding_waits_for_the_clock_and_a_folded_dossier_is_not_counted_twice() -> None:
    received, closed = _at(10), _at(100)
    s = Summary(received, 1, closed, closed, "on_time", None, None, None, (), _at(200))
    figures = KeyFigures()
    figures.update("D", s)
    assert not figures.fold("D", closed - timedelta(seconds=1))  # closes after the clock
    assert figures.fold("D", closed)
    assert len(figures) == 0 and not figures.received and not figures.closed
    month = period_of("month", received)
    assert figures.figures(month, closed)["received"] == 1


def test_over_20000_dossiers_only_the_open_ones_stay_held() -> None:
    """A dossier stream in time order (each open a few days to weeks): the summaries held
    never exceed the dossiers open at the clock, and the folded figures equal the kept ones."""
    rng = random.Random(3)
    kinds = ["A|P1|counter", "A|P2|online", "B|P1|postal"]
    items = []
    for n in range(21_000):
        received = START + timedelta(minutes=5 * n + rng.randint(0, 4))
        pause = ()
        if rng.random() < 0.1:
            p = received + timedelta(hours=rng.randint(1, 48))
            pause = ((p, p + timedelta(hours=rng.randint(1, 96))),)
        closed = received + timedelta(hours=rng.randint(1, 24 * 20))
        due = received + timedelta(hours=rng.randint(24, 24 * 15))
        how = rng.random()
        ended = closed if how < 0.97 else None
        withdrawn = closed if how >= 0.97 else None
        outcome = rng.choice(["early", "on_time", "late"]) if ended else None
        items.append(
            (rng.choice(kinds), Summary(
                received, 1, closed, ended, outcome, None, withdrawn, None, pause, due
            ))
        )  # fmt: skip
    kept = {k: KeyFigures() for k in kinds}
    folded = {k: KeyFigures() for k in kinds}
    closings: list[tuple[datetime, str, str, Summary]] = []
    opened = 0
    most_held = 0
    for n, (key, s) in enumerate(items):
        as_of = s.received
        assert as_of is not None and s.closed is not None
        # what closed by now arrives first (its closing event), then the new receipt
        while closings and closings[0][0] <= as_of:
            _, rid, k, done = heapq.heappop(closings)
            kept[k].update(rid, done)
            folded[k].update(rid, done)
            assert folded[k].fold(rid, as_of)
            opened -= 1
        open_summary = Summary(s.received, 1, None, None, None, None, None, None, s.pauses, s.due)
        kept[key].update(f"D{n}", open_summary)
        folded[key].update(f"D{n}", open_summary)
        heapq.heappush(closings, (s.closed, f"D{n}", key, s))
        opened += 1
        held = sum(len(f) for f in folded.values())
        assert held == opened
        most_held = max(most_held, held)
    assert most_held < 7_000 < len(items)
    assert sum(len(f) for f in kept.values()) == len(items)
    last = items[-1][1].received
    assert last is not None
    for key in kinds:
        for period in PERIODS[::3]:
            assert folded[key].figures(period, last) == kept[key].figures(period, last)
