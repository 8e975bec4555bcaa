"""Tracker record, alert scheduling and live counts: pure rules, no Kafka."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from lienthong.domain.alerts import AlertRules, alert_id, due_alerts, minutes_left, minutes_overdue
from lienthong.domain.lifecycle import Channel, EventKind
from lienthong.domain.stats import figures, period_of
from lienthong.domain.tracking import Applied, Duplicate, Facts, Rejected, RejectReason, track

VN = ZoneInfo("Asia/Ho_Chi_Minh")
A = "000.00.01.H10"
B = "000.00.02.H10"


def _f(eid: str, kind: EventKind, at: datetime, **kw) -> Facts:
    return Facts(event_id=eid, kind=kind, dossier_id="HS-1", at=at, agency=A, **kw)


T0 = datetime(2025, 3, 3, 8, 0, tzinfo=VN)  # Monday
RECEIVED = _f(
    "e1",
    EventKind.DOSSIER_RECEIVED,
    T0,
    channel=Channel.POSTAL,
    due=T0 + timedelta(days=2),
    procedure="1.004227",
)


def test_duplicate_event_id_has_no_effect_and_redelivery_is_recognised():
    first = track(None, RECEIVED, partition=0, offset=5)
    assert isinstance(first, Applied)
    again = track(first.record, RECEIVED, partition=0, offset=5)
    retry = track(first.record, RECEIVED, partition=0, offset=9)
    assert again == Duplicate(history_index=0, same_record=True)
    assert retry == Duplicate(history_index=0, same_record=False)


def test_unknown_illegal_and_stale_events_are_rejected_with_reasons():
    finished = _f("e2", EventKind.PROCESSING_FINISHED, T0)
    assert track(None, finished, partition=0, offset=1).reason is RejectReason.UNKNOWN_DOSSIER
    rec = track(None, RECEIVED, partition=0, offset=1).record
    returned = _f("e3", EventKind.RESULT_RETURNED, T0 + timedelta(hours=1))
    r = track(rec, returned, partition=0, offset=2)
    assert isinstance(r, Rejected) and r.reason is RejectReason.ILLEGAL_TRANSITION
    old = _f("e4", EventKind.PROCESSING_FINISHED, T0 - timedelta(hours=1))
    assert track(rec, old, partition=0, offset=3).reason is RejectReason.STALE_EVENT


def test_alerts_fire_once_and_move_with_a_supplement_pause():
    rec = track(None, RECEIVED, partition=0, offset=1).record
    due = rec.state.due
    rules = AlertRules()
    assert [a.key for a in due_alerts(rec, due - timedelta(days=3), rules)] == []
    keys = [a.key for a in due_alerts(rec, due, rules)]
    assert keys == ["dossier:warning", "dossier:apology", "dossier:overdue"] or set(keys) == {
        "dossier:warning",
        "dossier:apology",
        "dossier:overdue",
    }
    sent = rec.with_alerts(keys)
    assert due_alerts(sent, due + timedelta(days=9), rules) == []
    paused = track(
        rec,
        _f("s1", EventKind.SUPPLEMENT_REQUESTED, T0 + timedelta(hours=1)),
        partition=0,
        offset=2,
    ).record
    assert due_alerts(paused, due + timedelta(days=30), rules) == []  # clock stopped
    resumed = track(
        paused,
        _f("s2", EventKind.SUPPLEMENT_RECEIVED, T0 + timedelta(days=1)),
        partition=0,
        offset=3,
    ).record
    assert due_alerts(resumed, due, rules) == [] or all(
        a.kind == "warning" for a in due_alerts(resumed, due, rules)
    )
    assert alert_id("HS-1", "dossier:overdue") == alert_id("HS-1", "dossier:overdue")


def test_open_overdue_dossier_is_never_counted_as_finished_late():
    rec = track(None, RECEIVED, partition=0, offset=1).record
    month = period_of("month", T0)
    f = figures([rec], month, T0 + timedelta(days=20))
    assert f["in_progress_overdue"] == 1 and f["finished_late"] == 0
    assert f["received"] == 1 and f["received_postal"] == 1
    done = track(
        rec, _f("e9", EventKind.PROCESSING_FINISHED, T0 + timedelta(days=10)), partition=0, offset=2
    ).record
    f = figures([done], month, T0 + timedelta(days=20))
    assert f["finished_late"] == 1 and f["in_progress_overdue"] == 0


def test_subtract_working_time_is_the_latest_start_that_uses_exactly_the_duration():
    import random

    from lienthong.domain.alerts import subtract_working_time
    from lienthong.domain.calendar import default_calendar

    cal = default_calendar()
    rng = random.Random(3)
    for _ in range(300):
        end = datetime(2025, 1, 1, tzinfo=VN) + timedelta(minutes=rng.randint(0, 525_600))
        lead = timedelta(minutes=rng.choice([30, 240, 480, 600, 2400]))
        start = subtract_working_time(end, lead, cal)
        if cal.working_time_between(datetime(2024, 6, 1, tzinfo=VN), end) < lead:
            continue
        assert cal.working_time_between(start, end) == lead, (end, lead, start)
        later = start + timedelta(seconds=1)
        assert cal.working_time_between(later, end) < lead, (end, lead, start)


def test_periods_and_their_keys():
    from lienthong.domain.stats import parse_period

    at = datetime(2025, 12, 31, 23, 30, tzinfo=VN)
    assert [period_of(k, at).label for k in ("day", "month", "quarter", "year")] == [
        "day:2025-12-31",
        "month:2025-12",
        "quarter:2025-Q4",
        "year:2025",
    ]
    q = period_of("quarter", at)
    assert q.end == datetime(2026, 1, 1, tzinfo=VN)
    assert parse_period("2025-Q4") == q
    assert parse_period("month:2025-02").end == datetime(2025, 3, 1, tzinfo=VN)


def test_carried_over_and_rates():
    from lienthong.domain.stats import rates

    rec = track(None, RECEIVED, partition=0, offset=1).record
    april = period_of("month", datetime(2025, 4, 10, tzinfo=VN))
    f = figures([rec], april, datetime(2025, 4, 10, tzinfo=VN))
    assert f["carried_over"] == 1 and f["received"] == 0 and f["in_progress_overdue"] == 1
    r = rates({**f, "finished_early": 1, "finished_late": 1, "received": 4, "received_online": 1})
    assert r == {"on_time_rate": 0.5, "online_rate": 0.25, "postal_rate": 0.0}


def test_a_late_warning_says_how_much_time_is_really_left():
    """A 4-working-hour deadline known only at 14:00 (due next morning 10:00 under the
    08:00-12:00/13:00-17:00 test sessions or the packaged calendar alike): the warning is issued
    at the receipt, not a working day before it, with the minutes that actually remain."""
    received = datetime(2026, 1, 5, 14, 0, tzinfo=VN)  # Monday afternoon
    facts = _f(
        "w1",
        EventKind.DOSSIER_RECEIVED,
        received,
        channel=Channel.COUNTER,
        due=datetime(2026, 1, 6, 10, 0, tzinfo=VN),
        procedure="2.000635",
    )
    rec = track(None, facts, partition=0, offset=1).record
    rules = AlertRules()  # one working day of lead
    warning = next(a for a in due_alerts(rec, received, rules) if a.kind == "warning")
    assert warning.fire_at < received  # the lead reaches back before the receipt
    assert warning.issued_at == received
    left = minutes_left(warning)
    assert 0 < left < rules.warning_lead.total_seconds() // 60
    from lienthong.domain.calendar import default_calendar

    expected = default_calendar().working_time_between(received, warning.due_at)
    assert left == int(expected.total_seconds() // 60)
    overdue = next(a for a in due_alerts(rec, warning.due_at, rules) if a.kind == "overdue")
    assert overdue.issued_at == overdue.due_at and minutes_overdue(overdue) == 0


def test_an_overdue_notice_issued_after_the_due_counts_the_minutes_past_it():
    """A step handed over after its own due instant: the overdue notice is issued at the
    handover and says how far past due the step already was."""
    rec = track(None, RECEIVED, partition=0, offset=1).record
    sent_at = T0 + timedelta(days=1)
    handed = track(
        rec,
        _f(
            "h1",
            EventKind.HANDOFF_SENT,
            sent_at,
            handoff_id="H1",
            to_agency=B,
            step=1,
            due=sent_at - timedelta(hours=3),
        ),
        partition=0,
        offset=2,
    ).record
    overdue = next(
        a for a in due_alerts(handed, sent_at, AlertRules()) if a.key == "step:1:overdue"
    )
    assert overdue.issued_at == sent_at
    assert minutes_overdue(overdue) > 0
