"""The working-day calendar: which instants count as working time, and arithmetic on it.

Everything that measures administrative time (appointments, step due times, lateness) goes
through :class:`WorkingCalendar`, so a province that opens at 08:00 or works on a make-up
Saturday changes configuration or data, never code. Instants are timezone-aware and are
interpreted in Asia/Ho_Chi_Minh; a naive datetime is rejected because guessing its zone is how
deadlines silently drift by seven hours.

Working instants are the closed session intervals: 17:00 on a working day is a working instant
(a dossier due "by the end of the day" is due at 17:00), but a dossier received at 17:00 or at
11:30 starts its clock at the next session (:meth:`WorkingCalendar.next_working_instant`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lienthong.domain.holidays import HolidayCalendar, default_holiday_calendar

__all__ = [
    "DEFAULT_WORKING_HOURS",
    "VN_TZ",
    "DayStatus",
    "NaiveDatetimeError",
    "WorkingCalendar",
    "WorkingHours",
    "default_calendar",
    "ensure_aware",
]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_ZERO = timedelta(0)
_MAX_SCAN_DAYS = 3660  # no real calendar has ten years without a working day


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone was given where an instant is required."""


def ensure_aware(value: datetime, what: str = "instant") -> datetime:
    """Return ``value`` in Vietnam time; reject naive datetimes with a clear message."""
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what} {value.isoformat()} has no time zone; give an aware datetime "
            "(e.g. with +07:00 or ZoneInfo('Asia/Ho_Chi_Minh'))"
        )
    return value.astimezone(VN_TZ)


@dataclass(frozen=True)
class WorkingHours:
    """The daily sessions (morning, afternoon); per-province configuration."""

    sessions: tuple[tuple[time, time], ...] = (
        (time(7, 30), time(11, 30)),
        (time(13, 0), time(17, 0)),
    )

    def __post_init__(self) -> None:
        if not self.sessions:
            raise ValueError("working hours need at least one session")
        previous_end: time | None = None
        for start, end in self.sessions:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("session times are wall-clock times without a time zone")
            if not start < end:
                raise ValueError(f"session {start:%H:%M}-{end:%H:%M} must end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError("sessions must be in order and must not overlap")
            previous_end = end

    @classmethod
    def parse(cls, spec: str) -> WorkingHours:
        """Parse ``"07:30-11:30,13:00-17:00"``; errors are explicit, never a silent default."""
        sessions: list[tuple[time, time]] = []
        for part in spec.split(","):
            try:
                a, b = part.strip().split("-")
                sessions.append((time.fromisoformat(a.strip()), time.fromisoformat(b.strip())))
            except ValueError as exc:
                raise ValueError(f"bad working session {part.strip()!r}: want HH:MM-HH:MM") from exc
        return cls(tuple(sessions))

    @property
    def day_length(self) -> timedelta:
        """One working day (ngày làm việc): 8 h with the default sessions."""
        return sum((_span(s, e) for s, e in self.sessions), _ZERO)

    @property
    def shortest_session(self) -> timedelta:
        return min(_span(s, e) for s, e in self.sessions)

    @property
    def opening(self) -> time:
        return self.sessions[0][0]

    @property
    def closing(self) -> time:
        return self.sessions[-1][1]


def _span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


DEFAULT_WORKING_HOURS = WorkingHours()


@dataclass(frozen=True)
class DayStatus:
    day: date
    working: bool
    reason: str | None  # holiday name or "weekend"; None on a working day


class WorkingCalendar:
    """Working days and sessions; all arithmetic is O(days spanned), never per minute."""

    def __init__(
        self,
        hours: WorkingHours = DEFAULT_WORKING_HOURS,
        holidays: HolidayCalendar | None = None,
    ) -> None:
        self.hours = hours
        self.holidays = holidays if holidays is not None else default_holiday_calendar()
        self.day_length = hours.day_length

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        return self.holidays.is_working_day(day)

    def day_status(self, day: date) -> DayStatus:
        working, reason = self.holidays.status(day)
        return DayStatus(day, working, reason)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        d = day + timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(d):
                return d
            d += timedelta(days=1)
        raise RuntimeError(f"no working day within {_MAX_SCAN_DAYS} days after {day}")

    def non_working_weekdays(self, year: int) -> list[DayStatus]:
        """Weekdays of ``year`` that are off, with reasons (the "holidays" of that year)."""
        return [DayStatus(d, False, r) for d, r in sorted(self.holidays.days_off(year).items())]

    # -- instants ---------------------------------------------------------------------------

    def _sessions_of(self, day: date) -> Sequence[tuple[datetime, datetime]]:
        return [
            (datetime.combine(day, s, VN_TZ), datetime.combine(day, e, VN_TZ))
            for s, e in self.hours.sessions
        ]

    def is_working_instant(self, instant: datetime) -> bool:
        """True inside a session of a working day, both session ends included."""
        t = ensure_aware(instant)
        if not self.is_working_day(t.date()):
            return False
        return any(s <= t <= e for s, e in self._sessions_of(t.date()))

    def next_working_instant(self, instant: datetime) -> datetime:
        """When a clock started at ``instant`` really starts.

        Inside a session: the instant itself. Before opening: the opening. In the lunch break:
        the afternoon start. At or after closing, or on a day off: the next working day's
        opening. A session's end is not a start: nothing can be done in zero remaining time.
        """
        t = ensure_aware(instant)
        day = t.date()
        if self.is_working_day(day):
            for s, e in self._sessions_of(day):
                if t < s:
                    return s
                if t < e:
                    return t
        return self.opening_of(self.next_working_day(day))

    def opening_of(self, day: date) -> datetime:
        return datetime.combine(day, self.hours.opening, VN_TZ)

    def closing_of(self, day: date) -> datetime:
        return datetime.combine(day, self.hours.closing, VN_TZ)

    def _worked_on_day_from(self, t: datetime) -> timedelta:
        """Working time left on ``t``'s day from ``t`` (``t`` on a working day)."""
        total = _ZERO
        for s, e in self._sessions_of(t.date()):
            if t < e:
                total += e - max(s, t)
        return total

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of working time, counted from ``start``, runs out.

        Whole days are skipped at once; only the first and last day look at sessions. A
        duration that exactly fills a session ends at the session's end (a 1-day duration
        started at opening ends at that day's closing, not at the next opening).
        """
        if duration < _ZERO:
            raise ValueError("duration must not be negative")
        t = self.next_working_instant(start)
        if duration == _ZERO:
            return t
        remaining = duration
        day = t.date()
        # First (possibly partial) day.
        for s, e in self._sessions_of(day):
            if t >= e:
                continue
            begin = max(s, t)
            available = e - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        # Whole days.
        day = self.next_working_day(day)
        while remaining > self.day_length:
            remaining -= self.day_length
            day = self.next_working_day(day)
        for s, e in self._sessions_of(day):
            available = e - s
            if remaining <= available:
                return s + remaining
            remaining -= available
        raise AssertionError("unreachable: remaining fits in one working day")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in ``[start, end]``; zero when ``end`` is not after ``start``."""
        a = ensure_aware(start, "start")
        b = ensure_aware(end, "end")
        if b <= a:
            return _ZERO
        a = self.next_working_instant(a)
        if b <= a:
            return _ZERO
        if a.date() == b.date():
            return self._between_same_day(a, b)
        total = self._worked_on_day_from(a)
        day = self.next_working_day(a.date())
        while day < b.date():
            total += self.day_length
            day = self.next_working_day(day)
        if day == b.date():
            total += self._between_same_day(self.opening_of(day), b)
        return total

    def _between_same_day(self, a: datetime, b: datetime) -> timedelta:
        total = _ZERO
        for s, e in self._sessions_of(a.date()):
            lo = max(s, a)
            hi = min(e, b)
            if hi > lo:
                total += hi - lo
        return total


_default_calendar: WorkingCalendar | None = None


def default_calendar() -> WorkingCalendar:
    """Default sessions with the national rules and packaged yearly schedules."""
    global _default_calendar
    if _default_calendar is None:
        _default_calendar = WorkingCalendar()
    return _default_calendar
