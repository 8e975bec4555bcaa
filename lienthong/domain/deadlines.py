"""Appointment (ngày hẹn trả) and step due times: where the appointment date is computed.

The clock of a dossier starts at the next working instant after receipt, or at the next
working day's opening when the procedure has a cut-off hour and the dossier came in after it.
Working time is then added session by session. A supplement request (yêu cầu bổ sung) pauses
the clock and the arrival of the documents resumes it; the due instant moves back by exactly
the working time the clock was stopped, and several pauses add up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from lienthong.domain.calendar import WorkingCalendar, default_calendar, ensure_aware

__all__ = [
    "Appointment",
    "Duration",
    "Pause",
    "clock_start",
    "compute_appointment",
    "elapsed_working_time",
    "extend_for_pauses",
    "merge_pauses",
    "paused_working_time",
]

_ZERO = timedelta(0)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dh])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Duration:
    """A legal duration: working days (ngày làm việc) or working hours (giờ làm việc)."""

    amount: float
    unit: str  # "d" or "h"

    def __post_init__(self) -> None:
        if self.unit not in ("d", "h"):
            raise ValueError(f"duration unit must be 'd' or 'h', not {self.unit!r}")
        if self.amount < 0:
            raise ValueError("duration must not be negative")

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"15d"`` or ``"8h"`` (fractions allowed: ``"0.5d"`` is half a day)."""
        m = _DURATION_RE.match(text)
        if not m:
            raise ValueError(f"bad duration {text!r}: want e.g. 15d (working days) or 8h")
        amount = float(m.group(1))
        return cls(int(amount) if amount.is_integer() else amount, m.group(2).lower())

    def working_time(self, calendar: WorkingCalendar | None = None) -> timedelta:
        """As working time: a day is the calendar's day length (8 h by default)."""
        if self.unit == "h":
            return timedelta(hours=self.amount)
        cal = calendar or default_calendar()
        return cal.day_length * self.amount

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class Pause:
    """The clock stopped from a supplement request until the documents arrived."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = ensure_aware(self.start, "pause start")
        end = ensure_aware(self.end, "pause end")
        if end < start:
            raise ValueError(
                f"pause ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True)
class Appointment:
    """Result of :func:`compute_appointment`."""

    received: datetime
    clock_start: datetime
    due: datetime  # ngày hẹn trả, pauses included
    working_time: timedelta  # the duration, without pauses
    paused: timedelta  # working time the clock was stopped before ``due``


def clock_start(
    received: datetime, cutoff: time | None = None, calendar: WorkingCalendar | None = None
) -> datetime:
    """When the legal clock starts for a dossier received at ``received``.

    Outside working hours it is the next session. With a cut-off, a dossier received on a
    working day *after* the cut-off hour counts from the next working day's opening.
    """
    cal = calendar or default_calendar()
    t = ensure_aware(received, "received")
    if (
        cutoff is not None
        and cal.is_working_day(t.date())
        and t.timetz().replace(tzinfo=None) > cutoff
    ):
        return cal.opening_of(cal.next_working_day(t.date()))
    return cal.next_working_instant(t)


def merge_pauses(pauses: Iterable[Pause]) -> list[Pause]:
    """Sorted, non-overlapping pauses: overlapping requests must not count twice."""
    ordered = sorted(pauses, key=lambda p: (p.start, p.end))
    merged: list[Pause] = []
    for p in ordered:
        if merged and p.start <= merged[-1].end:
            if p.end > merged[-1].end:
                merged[-1] = Pause(merged[-1].start, p.end)
        else:
            merged.append(p)
    return merged


def paused_working_time(
    pauses: Iterable[Pause],
    calendar: WorkingCalendar | None = None,
    until: datetime | None = None,
) -> timedelta:
    """Working time covered by the pauses (overlaps merged), optionally only before ``until``."""
    cal = calendar or default_calendar()
    total = _ZERO
    for p in merge_pauses(pauses):
        end = p.end if until is None else min(p.end, ensure_aware(until, "until"))
        total += cal.working_time_between(p.start, end)
    return total


def extend_for_pauses(
    due: datetime, pauses: Iterable[Pause], calendar: WorkingCalendar | None = None
) -> datetime:
    """Move an appointment back by each pause that began before the clock ran out.

    Each pause pushes the due instant back by its working time. A pause that starts at or
    after the (already extended) due instant changes nothing: the time had already run out,
    and lateness is history.
    """
    cal = calendar or default_calendar()
    current = ensure_aware(due, "due")
    for p in merge_pauses(pauses):
        if p.start >= current:
            break
        stopped = cal.working_time_between(p.start, p.end)
        if stopped > _ZERO:
            current = cal.add_working_time(current, stopped)
    return current


def compute_appointment(
    received: datetime,
    duration: Duration | timedelta,
    *,
    cutoff: time | None = None,
    pauses: Sequence[Pause] = (),
    calendar: WorkingCalendar | None = None,
) -> Appointment:
    """The appointment (due instant) for a dossier or a step.

    ``duration`` is a :class:`Duration` (days/hours) or already-converted working time. The
    due instant is when the working time runs out, pushed back by the pauses.
    """
    cal = calendar or default_calendar()
    work = duration.working_time(cal) if isinstance(duration, Duration) else duration
    if work < _ZERO:
        raise ValueError("duration must not be negative")
    start = clock_start(received, cutoff, cal)
    base_due = cal.add_working_time(start, work)
    due = extend_for_pauses(base_due, pauses, cal)
    paused = cal.working_time_between(base_due, due)
    return Appointment(
        received=ensure_aware(received, "received"),
        clock_start=start,
        due=due,
        working_time=work,
        paused=paused,
    )


def elapsed_working_time(
    received: datetime,
    end: datetime,
    *,
    pauses: Iterable[Pause] = (),
    cutoff: time | None = None,
    calendar: WorkingCalendar | None = None,
) -> timedelta:
    """Working time the administration used: clock start to ``end``, less the pauses."""
    cal = calendar or default_calendar()
    start = clock_start(received, cutoff, cal)
    total = cal.working_time_between(start, end)
    stopped = _ZERO
    for p in merge_pauses(pauses):
        lo = max(p.start, start)
        hi = min(p.end, ensure_aware(end, "end"))
        stopped += cal.working_time_between(lo, hi)
    return max(total - stopped, _ZERO)
