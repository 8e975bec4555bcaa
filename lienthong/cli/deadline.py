"""``lienthong deadline``: compute an appointment, or classify a finished dossier."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, time
from typing import Any

from lienthong.cli.main import UsageError
from lienthong.domain.calendar import NaiveDatetimeError, default_calendar, ensure_aware
from lienthong.domain.classification import classify
from lienthong.domain.deadlines import Duration, Pause, compute_appointment
from lienthong.domain.lunar import LunarDateError
from lienthong.domain.procedures import ProcedureDataError, load_procedures

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an ISO-8601 date-time") from None
    if value.tzinfo is None:
        raise UsageError(f"{what} {text!r} has no time zone offset (add +07:00)")
    try:
        return ensure_aware(value, what)
    except NaiveDatetimeError as exc:  # pragma: no cover - guarded above
        raise UsageError(str(exc)) from None


def _pauses(items: list[str] | None) -> list[Pause]:
    out: list[Pause] = []
    for item in items or []:
        if item.count("/") != 1:
            raise UsageError(f"pause {item!r} must be START/END")
        a, b = item.split("/")
        start = _instant(a, "pause start")
        end = _instant(b, "pause end")
        if end < start:
            raise UsageError(f"pause {item!r} ends before it starts")
        out.append(Pause(start, end))
    return out


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _emit(obj: dict[str, Any]) -> int:
    print(json.dumps(obj, ensure_ascii=False))
    return 0


def _due(args: argparse.Namespace) -> int:
    received = _instant(args.received, "--received")
    pauses = _pauses(args.pause)
    cutoff: time | None = None
    if args.procedure:
        if args.duration or args.cutoff:
            raise UsageError("give either --procedure or --duration/--cutoff, not both")
        try:
            proc = load_procedures().get(args.procedure)
        except ProcedureDataError as exc:
            raise UsageError(str(exc)) from None
        if proc is None:
            raise UsageError(f"unknown procedure {args.procedure!r}")
        duration = proc.duration
        cutoff = proc.cutoff
    elif args.duration:
        try:
            duration = Duration.parse(args.duration)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.cutoff:
            if not _HHMM.fullmatch(args.cutoff):
                raise UsageError(f"--cutoff {args.cutoff!r} is not an hour like 15:00")
            cutoff = time.fromisoformat(args.cutoff)
    else:
        raise UsageError("give --procedure CODE or --duration Nd|Nh")
    try:
        appt = compute_appointment(
            received, duration, cutoff=cutoff, pauses=pauses, calendar=default_calendar()
        )
    except LunarDateError as exc:  # a date outside the supported calendar range
        raise UsageError(str(exc)) from None
    return _emit({"clock_start": _iso(appt.clock_start), "due": _iso(appt.due)})


def _classify(args: argparse.Namespace) -> int:
    received = _instant(args.received, "--received")
    due = _instant(args.due, "--due")
    finished = _instant(args.finished, "--finished")
    if finished < received:
        raise UsageError("--finished is before --received")
    pauses = _pauses(args.pause)
    if args.supplements is not None and args.supplements < 0:
        raise UsageError("--supplements must not be negative")
    try:
        result = classify(
            received=received,
            finished=finished,
            due=due,
            pauses=pauses,
            supplement_requests=args.supplements,
            calendar=default_calendar(),
        )
    except LunarDateError as exc:
        raise UsageError(str(exc)) from None
    return _emit(
        {
            "outcome": result.outcome.value,
            "working_hours_used": result.working_hours_used,
            "reason": result.reason,
        }
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("deadline", help="appointments and on-time classification")
    sub = parser.add_subparsers(dest="deadline_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("due", help="clock start and due instant (ngày hẹn trả)")
    p.add_argument("--received", required=True, help="ISO-8601 with offset, e.g. ...T08:00+07:00")
    p.add_argument("--procedure", help="national procedure code, e.g. 1.004227")
    p.add_argument("--duration", help="Nd (working days) or Nh (working hours)")
    p.add_argument("--cutoff", help="HH:MM; received after it counts from the next working day")
    p.add_argument("--pause", action="append", metavar="START/END", help="supplement pause")
    p.set_defaults(func=_due)
    p = sub.add_parser("classify", help="early / on time / late")
    p.add_argument("--received", required=True)
    p.add_argument("--due", required=True, help="the appointment on the receipt")
    p.add_argument("--finished", required=True)
    p.add_argument("--pause", action="append", metavar="START/END")
    p.add_argument("--supplements", type=int, help="supplement requests (default: pauses)")
    p.set_defaults(func=_classify)
