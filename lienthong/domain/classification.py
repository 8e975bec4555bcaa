"""Outcome of a finished dossier: early, on time or late (national service index rules).

Decision 766/QĐ-TTg (2022) scores agencies on the share of dossiers resolved on time. The
rules enforced here: the end is the first of processing finished, result returned, stopped or
refused; supplement time does not count against the administration; more than one supplement
request makes the dossier late whatever the clock says; without an appointment the elapsed
working time (less supplement time) is compared with the legal maximum. "Early" means at least
one working session (configurable) to spare. Lateness is history: nothing here can turn a late
dossier into an on-time one after the fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from lienthong.domain.calendar import WorkingCalendar, default_calendar, ensure_aware
from lienthong.domain.deadlines import (
    Pause,
    elapsed_working_time,
    extend_for_pauses,
)

__all__ = [
    "Classification",
    "Outcome",
    "classify",
    "end_instant",
    "on_time_rate",
]

_ZERO = timedelta(0)


class Outcome(StrEnum):
    EARLY = "early"  # trước hạn
    ON_TIME = "on_time"  # đúng hạn
    LATE = "late"  # quá hạn / trễ hạn


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    working_time_used: timedelta  # clock start to end, less supplement time
    reason: str
    effective_due: datetime | None  # the appointment pushed back by the pauses, if any

    @property
    def working_hours_used(self) -> float:
        return round(self.working_time_used.total_seconds() / 3600, 4)


def end_instant(
    *,
    finished: datetime | None = None,
    returned: datetime | None = None,
    stopped: datetime | None = None,
    refused: datetime | None = None,
) -> datetime | None:
    """The end used for classification: the first of the four that happened."""
    present = [ensure_aware(t) for t in (finished, returned, stopped, refused) if t is not None]
    return min(present) if present else None


def _hours(td: timedelta) -> str:
    h = td.total_seconds() / 3600
    return f"{h:g} working hours"


def classify(
    *,
    received: datetime,
    finished: datetime,
    due: datetime | None = None,
    legal_max: timedelta | None = None,
    pauses: Iterable[Pause] = (),
    supplement_requests: int | None = None,
    cutoff: time | None = None,
    early_margin: timedelta | None = None,
    calendar: WorkingCalendar | None = None,
) -> Classification:
    """Classify one ended dossier.

    ``due`` is the appointment written on the receipt (without pauses; they are applied
    here). Without ``due``, ``legal_max`` (working time) is required. ``supplement_requests``
    defaults to the number of pauses. ``early_margin`` defaults to one working session.
    """
    cal = calendar or default_calendar()
    received = ensure_aware(received, "received")
    finished = ensure_aware(finished, "finished")
    pause_list = list(pauses)
    requests = len(pause_list) if supplement_requests is None else supplement_requests
    if requests < 0:
        raise ValueError("supplement request count must not be negative")
    margin = cal.hours.shortest_session if early_margin is None else early_margin
    used = elapsed_working_time(received, finished, pauses=pause_list, cutoff=cutoff, calendar=cal)

    effective_due: datetime | None = None
    if due is not None:
        effective_due = extend_for_pauses(ensure_aware(due, "due"), pause_list, cal)

    if requests > 1:
        return Classification(
            Outcome.LATE,
            used,
            f"{requests} supplement requests; more than one counts as late (QĐ 766/QĐ-TTg)",
            effective_due,
        )

    if effective_due is not None:
        if finished > effective_due:
            late_by = cal.working_time_between(effective_due, finished)
            return Classification(
                Outcome.LATE,
                used,
                f"finished {_hours(late_by)} after the appointment {effective_due.isoformat()}",
                effective_due,
            )
        spare = cal.working_time_between(finished, effective_due)
        if spare >= margin and margin > _ZERO:
            return Classification(
                Outcome.EARLY,
                used,
                f"finished {_hours(spare)} before the appointment {effective_due.isoformat()}",
                effective_due,
            )
        return Classification(
            Outcome.ON_TIME,
            used,
            f"finished by the appointment {effective_due.isoformat()}",
            effective_due,
        )

    if legal_max is None:
        raise ValueError("classification needs an appointment (due) or the legal maximum")
    if used > legal_max:
        return Classification(
            Outcome.LATE,
            used,
            f"used {_hours(used)}, more than the legal maximum of {_hours(legal_max)}",
            None,
        )
    if legal_max - used >= margin and margin > _ZERO:
        return Classification(
            Outcome.EARLY,
            used,
            f"used {_hours(used)} of the legal maximum of {_hours(legal_max)}",
            None,
        )
    return Classification(
        Outcome.ON_TIME,
        used,
        f"used {_hours(used)}, within the legal maximum of {_hours(legal_max)}",
        None,
    )


def on_time_rate(counts: Mapping[Outcome | str, int]) -> float | None:
    """(early + on time) / finished; ``None`` when nothing finished (not 0 %, not 100 %)."""
    by = {Outcome(k): v for k, v in counts.items()}
    finished = sum(by.values())
    if finished == 0:
        return None
    return (by.get(Outcome.EARLY, 0) + by.get(Outcome.ON_TIME, 0)) / finished
