"""The console's view-model: department figures are sums of the live-stats snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from lienthong.connectors import headers as h
from lienthong.connectors.console import view
from lienthong.connectors.console.feed import STATS_FIELDS, BusState, DeadLetter
from lienthong.domain.agencies import load_agencies
from lienthong.domain.stats import VN

CENTER = "000.00.01.H10"
LAND = "000.01.11.H10"


def snapshot(agency: str, procedure: str, channel: str, label: str, **figures: float):
    kind, _, key = label.partition(":")
    values = dict.fromkeys(STATS_FIELDS, 0) | {
        k: v for k, v in figures.items() if k in STATS_FIELDS
    }
    return SimpleNamespace(
        key=f"{agency}|{procedure}|{channel}|{label}",
        as_of=datetime(2026, 1, 31, 17, tzinfo=VN),
        online_rate=figures.get("online_rate"),
        postal_rate=figures.get("postal_rate"),
        **values,
    )


@pytest.fixture
def state() -> BusState:
    s = BusState()
    s.put_stats(
        snapshot(
            CENTER,
            "1.004227",
            "counter",
            "month:2026-01",
            received=10,
            finished_on_time=4,
            finished_late=1,
            in_progress_overdue=2,
        )
    )
    s.put_stats(
        snapshot(
            CENTER,
            "1.004238",
            "online",
            "month:2026-01",
            received=4,
            finished_early=2,
            online_rate=1.0,
        )
    )
    s.put_stats(
        snapshot(
            CENTER,
            "1.004238",
            "postal",
            "month:2026-01",
            received=2,
            postal_rate=1.0,
            waiting_supplement=1,
        )
    )
    s.put_stats(snapshot(LAND, "1.004227", "counter", "month:2026-01", received=3, finished_late=3))
    s.put_stats(snapshot(CENTER, "1.004227", "counter", "month:2026-02", received=99))
    s.put_stats(
        snapshot(CENTER, "1.004227", "counter", "day:2026-01-05", received=5, finished_late=1)
    )
    s.put_stats(snapshot(LAND, "1.004227", "counter", "day:2026-01-05", received=1))
    s.put_stats(snapshot(CENTER, "1.004227", "counter", "day:2026-01-07", received=2))
    return s


def test_overview_sums_procedures_and_channels_of_one_period(state: BusState) -> None:
    period = view.resolve_period("month:2026-01", datetime(2026, 1, 1, tzinfo=VN))
    rows, totals = view.overview(state.stats, period, load_agencies())
    by = {r.agency: r for r in rows}
    assert set(by) == {CENTER, LAND}
    center = by[CENTER].figures
    assert center["received"] == 16  # the February key is not counted
    assert center["finished_early"] == 2 and center["finished_on_time"] == 4
    assert center["finished_late"] == 1 and center["in_progress_overdue"] == 2
    assert center["waiting_supplement"] == 1
    assert center["received_online"] == 4 and center["received_postal"] == 2
    assert by[CENTER].rates["on_time_rate"] == pytest.approx(6 / 7)
    assert by[CENTER].rates["online_rate"] == pytest.approx(4 / 16)
    assert by[CENTER].rates["postal_rate"] == pytest.approx(2 / 16)
    assert by[CENTER].level == "province_center" and "Trung tâm" in by[CENTER].name
    assert totals["received"] == 19 and totals["finished_late"] == 4
    assert view.rates(totals)["on_time_rate"] == pytest.approx(6 / 10)


def test_rates_are_none_without_a_denominator() -> None:
    zero = dict.fromkeys(view.FIGURES, 0)
    assert view.rates(zero) == {"on_time_rate": None, "online_rate": None, "postal_rate": None}
    assert view.percent(None) == "–" and view.percent(0.5) == "50.0%"


def test_relative_periods_follow_the_bus_clock(state: BusState) -> None:
    reference = view.reference_instant(state.as_of, datetime(2030, 1, 1, tzinfo=VN))
    assert reference == datetime(2026, 1, 31, 17, tzinfo=VN)  # latest as_of, not the wall clock
    assert view.resolve_period("day", reference).label == "day:2026-01-31"
    assert view.resolve_period("quarter", reference).label == "quarter:2026-Q1"
    assert view.resolve_period(None, reference).label == "month:2026-01"
    assert view.reference_instant(None, reference) == reference
    with pytest.raises(ValueError):
        view.resolve_period("fortnight", reference)


def test_daily_series_has_every_day_of_the_period(state: BusState) -> None:
    period = view.resolve_period("month:2026-01", datetime(2026, 1, 1, tzinfo=VN))
    series = view.daily_series(state.stats, period)
    assert len(series) == 31 and series[0][0] == "2026-01-01" and series[-1][0] == "2026-01-31"
    assert dict((d, (r, lt)) for d, r, lt in series)["2026-01-05"] == (6, 1)
    assert view.daily_series(state.stats, period, {LAND})[4] == ("2026-01-05", 1, 0)
    # A page reads only its period's keys and its days'.
    labels = view.labels_for(period)
    assert len(labels) == 32 and labels[0] == "month:2026-01" and labels[-1] == "day:2026-01-31"
    only = state.stats_of(labels)
    assert not any("month:2026-02" in k for k in only)
    assert view.daily_series(only, period) == series
    assert view.overview(only, period)[1] == view.overview(state.stats, period)[1]
    # The running sums per agency (what the app reads) equal the sums over the snapshots.
    sums = state.sums_of(labels)
    assert view.agency_rows(sums[period.label])[1] == view.overview(state.stats, period)[1]
    assert view.series_of(sums, period, {LAND}) == view.daily_series(state.stats, period, {LAND})
    svg = view.chart_svg(series, "en")
    assert svg.startswith("<svg") and svg.count("<rect") == 62
    assert "2026-01-05 Received: 6" in svg and "2026-01-05 Late: 1" in svg


def alert(
    dossier: str,
    kind: str,
    minutes: int,
    step: int | None = None,
    due: datetime = datetime(2026, 1, 8, 17, tzinfo=VN),
):
    fields = {
        "overdue_working_minutes" if kind == "overdue" else "remaining_working_minutes": minutes
    }
    return SimpleNamespace(
        EVENT_TYPE=f"deadline_{kind}",
        envelope=SimpleNamespace(dossier_id=dossier, occurred_at=datetime(2026, 1, 9, tzinfo=VN)),
        scope=SimpleNamespace(value="step" if step else "dossier"),
        responsible_agency=LAND,
        step=step,
        due_at=due,
        **fields,
    )


def test_overdue_first_and_an_overdue_notice_outranks_a_later_warning() -> None:
    s = BusState()
    s.put_alert(alert("HS-1", "warning", 120))
    s.put_alert(alert("HS-2", "overdue", 30))
    s.put_alert(alert("HS-3", "overdue", 600, step=2))
    s.put_alert(alert("HS-2", "warning", 10))  # late warning after the overdue notice
    rows = view.alert_rows(s.alerts)
    assert [(r.alert.dossier_id, r.alert.kind) for r in rows] == [
        ("HS-3", "overdue"),
        ("HS-2", "overdue"),
        ("HS-1", "warning"),
    ]
    assert rows[0].hours == 10.0 and rows[0].alert.step == 2
    assert view.alert_rows(s.alerts, agency=CENTER) == []


def letter(partition: int, offset: int, source: str, error_class: str, ts: int) -> DeadLetter:
    headers = (
        (h.DLQ_SOURCE_TOPIC, source.encode()),
        (h.DLQ_ERROR_CLASS, error_class.encode()),
        (h.DLQ_REASON, f"bad {error_class}".encode()),
        ("other", b"x"),
    )
    return DeadLetter(partition, offset, b"HS-1", b"\x00", headers, ts)


def test_dead_letters_browse_by_source_and_reason() -> None:
    letters = {
        (0, 1): letter(0, 1, "dossier-events", "NotFramed", 10),
        (1, 4): letter(1, 4, "dossier-events", "UnknownAgency", 30),
        (2, 0): letter(2, 0, "postal-tracking", "NotFramed", 20),
    }
    redrives = {(0, 1): {"by": "Lan", "at": "now", "to": "dossier-events"}}
    rows = view.dead_letter_rows(letters, redrives)
    assert [r.address for r in rows] == ["1:4", "2:0", "0:1"]  # newest first
    assert rows[2].redriven == {"by": "Lan", "at": "now", "to": "dossier-events"}
    assert rows[0].reason == "bad UnknownAgency"
    assert [r.address for r in view.dead_letter_rows(letters, {}, source="dossier-events")] == [
        "1:4",
        "0:1",
    ]
    only = view.dead_letter_rows(letters, {}, "dossier-events", "NotFramed")
    assert [r.address for r in only] == ["0:1"]
    assert view.dead_letter_groups(letters) == [
        ("dossier-events", "NotFramed", 1),
        ("dossier-events", "UnknownAgency", 1),
        ("postal-tracking", "NotFramed", 1),
    ]


@pytest.mark.parametrize("text", ["1", "a:1", "1:", ":3", "1:2:3", "-1:2"])
def test_a_bad_address_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="PARTITION:OFFSET"):
        view.parse_address(text)
    assert view.parse_address(" 2:17 ") == (2, 17)


def test_lag_rows_from_the_prometheus_exposition() -> None:
    text = (
        "# HELP lienthong_consumer_lag Records not yet committed\n"
        "# TYPE lienthong_consumer_lag gauge\n"
        'lienthong_consumer_lag{group="g1",topic="t.dossier-events",partition="3"} 7.0\n'
        'lienthong_consumer_lag{group="g1",topic="t.dossier-events",partition="0"} 0.0\n'
        'lienthong_events_total{type="x"} 3.0\n'
    )
    assert view.lag_rows(text) == [
        ("g1", "t.dossier-events:0", 0),
        ("g1", "t.dossier-events:3", 7),
    ]


def test_every_text_has_both_languages() -> None:
    for key, (vi, en) in view.TEXT.items():
        assert vi and en, key
    assert view.t("finished_late", "vi") == "Trễ hạn" and view.t("finished_late", "en") == "Late"


def test_stuck_handoffs_longest_waiting_first_and_postal_alerts_newest_first() -> None:
    s = BusState()
    for handoff, due_day in (("H-1", 9), ("H-2", 7)):
        s.put_escalation(
            SimpleNamespace(
                envelope=SimpleNamespace(dossier_id=f"HS-{handoff}"),
                handoff_id=handoff,
                step=2,
                from_agency=CENTER,
                to_agency=LAND,
                sent_at=datetime(2026, 1, 5, 9, tzinfo=VN),
                accept_due_at=datetime(2026, 1, due_day, 9, tzinfo=VN),
            )
        )
    assert [e.handoff_id for e in view.escalation_rows(s.escalations)] == ["H-2", "H-1"]
    assert [e.handoff_id for e in view.escalation_rows(s.escalations, "HS-H-1")] == ["H-1"]
    s.put_ops_alert(
        {
            "alert_type": "postal_delivery_overdue",
            "alert_id": "a1",
            "dossier_id": "HS-1",
            "raised_at": "2026-01-09T01:00:00+00:00",
        }
    )
    s.put_ops_alert(
        {
            "alert_type": "postal_returned",
            "alert_id": "a2",
            "dossier_id": "HS-2",
            "raised_at": "2026-01-10T01:00:00+00:00",
        }
    )
    s.put_ops_alert({"alert_type": "dead_letter", "alert_id": "a3", "dossier_id": "HS-1"})
    s.put_ops_alert(
        {
            "alert_type": "postal_delivery_overdue",
            "alert_id": "a1",
            "dossier_id": "HS-1",
            "raised_at": "2026-01-09T01:00:00+00:00",
        }
    )
    assert [a["alert_id"] for a in view.postal_alert_rows(s.ops_alerts)] == ["a2", "a1"]
    assert [a["alert_id"] for a in view.postal_alert_rows(s.ops_alerts, "HS-1")] == ["a1"]


def test_working_time_over_is_counted_at_the_bus_clock_and_ended_dossiers_leave() -> None:
    from lienthong.domain.calendar import default_calendar

    s = BusState()
    s.put_alert(alert("HS-1", "overdue", 0))  # raised when the time ran out: 0 minutes over
    s.put_alert(alert("HS-2", "overdue", 0))
    s.put_alert(alert("HS-3", "warning", 240, due=datetime(2026, 1, 12, 9, tzinfo=VN)))
    cal = default_calendar()
    # Due Thu 8 Jan 2026 17:00; at Fri 9 Jan 10:00 one morning of working time has passed.
    as_of = datetime(2026, 1, 9, 10, tzinfo=VN)
    over = cal.working_time_between(datetime(2026, 1, 8, 17, tzinfo=VN), as_of)
    assert over > timedelta(0)
    rows = view.alert_rows(s.alerts, as_of=as_of, calendar=cal)
    by = {r.alert.dossier_id: r.hours for r in rows}
    assert by["HS-1"] == round(over / timedelta(hours=1), 1)
    # The warning was raised at 00:00 on the 9th with 4 h left; the morning used some of it.
    spent = cal.working_time_between(datetime(2026, 1, 9, tzinfo=VN), as_of)
    assert by["HS-3"] == round((240 - spent / timedelta(minutes=1)) / 60, 1)
    s.put_portal_status("HS-2", 9)  # đã xử lý xong
    rows = view.alert_rows(s.alerts, as_of=as_of, calendar=cal, ended=s.ended)
    assert [r.alert.dossier_id for r in rows] == ["HS-1", "HS-3"]
    s.put_portal_status("HS-2", 4)  # back in processing (a correction): listed again
    assert "HS-2" not in s.ended


def test_a_warning_past_its_due_without_an_overdue_notice_is_done() -> None:
    from lienthong.domain.calendar import default_calendar

    s = BusState()
    s.put_alert(alert("HS-1", "warning", 240))  # due 8 Jan 17:00
    cal = default_calendar()
    assert view.alert_rows(s.alerts, as_of=datetime(2026, 1, 12, 9, tzinfo=VN), calendar=cal) == []
    assert (
        len(view.alert_rows(s.alerts, as_of=datetime(2026, 1, 8, 9, tzinfo=VN), calendar=cal)) == 1
    )


def test_a_newer_snapshot_of_a_key_replaces_the_older_in_the_sums() -> None:
    s = BusState()
    s.put_stats(snapshot(CENTER, "1.004227", "counter", "month:2026-01", received=5))
    s.put_stats(
        snapshot(CENTER, "1.004227", "counter", "month:2026-01", received=7, finished_late=1)
    )
    s.put_stats(
        snapshot(CENTER, "1.004238", "online", "month:2026-01", received=2, online_rate=0.5)
    )
    center = s.sums_of(["month:2026-01"])["month:2026-01"][CENTER]
    assert center["received"] == 9 and center["finished_late"] == 1
    assert center["received_online"] == 1
    assert s.sums_of(["day:2026-01-01"]) == {"day:2026-01-01": {}}
