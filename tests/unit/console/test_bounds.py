"""The console's memory stays bounded over years of a province, and step notices leave when
the step is handed back (the tracker publishes no cancellation on deadline-alerts)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from lienthong.connectors import headers as h
from lienthong.connectors.console import view
from lienthong.connectors.console.feed import (
    RETURNED_NOTE,
    STATS_FIELDS,
    BusState,
    DeadLetter,
    Limits,
)
from lienthong.domain.lifecycle import EventKind
from lienthong.domain.stats import VN
from lienthong.domain.tracking import _NOTES

CENTER = "000.00.01.H10"
LAND = "000.01.11.H10"
TAX = "000.01.12.H10"


def _stats(key: str, as_of: datetime, received: int = 1) -> SimpleNamespace:
    return SimpleNamespace(
        key=key,
        as_of=as_of,
        online_rate=0.5,
        postal_rate=0.0,
        **(dict.fromkeys(STATS_FIELDS, 0) | {"received": received}),
    )


def _alert(dossier: str, kind: str, at: datetime, step: int | None = None, agency: str = LAND):
    fields = (
        {"overdue_working_minutes": 0} if kind == "overdue" else {"remaining_working_minutes": 240}
    )
    return SimpleNamespace(
        EVENT_TYPE=f"deadline_{kind}",
        envelope=SimpleNamespace(dossier_id=dossier, occurred_at=at),
        scope=SimpleNamespace(value="step" if step else "dossier"),
        responsible_agency=agency,
        step=step,
        due_at=at if kind == "overdue" else at + timedelta(hours=4),
        **fields,
    )


def _escalation(dossier: str, handoff: str, sent: datetime, to: str = TAX) -> SimpleNamespace:
    return SimpleNamespace(
        envelope=SimpleNamespace(dossier_id=dossier, occurred_at=sent + timedelta(hours=8)),
        handoff_id=handoff,
        step=2,
        from_agency=CENTER,
        to_agency=to,
        sent_at=sent,
        accept_due_at=sent + timedelta(hours=8),
    )


def _letter(offset: int, at: datetime) -> DeadLetter:
    headers = (
        (h.DLQ_SOURCE_TOPIC, b"dossier-events"),
        (h.DLQ_ERROR_CLASS, b"SchemaError"),
        (h.DLQ_REASON, b"bad bytes"),
    )
    return DeadLetter(0, offset, b"k", b"v", headers, int(at.timestamp() * 1000))


def test_the_notes_the_console_reads_are_the_trackers() -> None:
    assert RETURNED_NOTE == _NOTES[EventKind.HANDOFF_RETURNED]
    assert RETURNED_NOTE != _NOTES[EventKind.HANDOFF_ACCEPTED]


def test_three_years_of_a_province_stay_bounded() -> None:
    """Every day: 40 dossiers received, a third late at a step (warning, overdue, handed back
    two days later), a quarter with a stuck handoff, all ended within
    five days except one a day left open and overdue; figures for 2 agencies × 3 procedures
    × 3 channels per day, month, quarter and year; postal alerts and dead letters."""
    limits = Limits(max_dead_letters=300, max_alerts=5_000, max_ops_alerts=2_000)
    s = BusState(limits=limits)
    start = datetime(2026, 1, 1, 8, tzinfo=VN)
    sizes: list[dict[str, int]] = []
    letters = 0
    pending: list[tuple[datetime, str, int, str]] = []  # (instant, dossier, code, note)
    days = 3 * 365
    for day in range(days):
        now = start + timedelta(days=day)
        for label in (
            f"day:{now:%Y-%m-%d}",
            f"month:{now:%Y-%m}",
            f"quarter:{now.year}-Q{(now.month - 1) // 3 + 1}",
            f"year:{now.year}",
        ):
            for agency in (CENTER, LAND):
                for procedure in ("1.004227", "1.004238", "1.001612"):
                    for channel in ("counter", "online", "postal"):
                        key = f"{agency}|{procedure}|{channel}|{label}"
                        s.put_stats(_stats(key, now + timedelta(hours=9)))
        for n in range(40):
            dossier = f"HS-{day:04d}-{n:02d}"
            p = n % 6
            if n % 3 == 0:
                s.put_alert(_alert(dossier, "warning", now + timedelta(hours=1), step=1), p)
                s.put_alert(_alert(dossier, "overdue", now + timedelta(hours=5), step=1), p)
                pending.append((now + timedelta(days=2), dossier, 4, RETURNED_NOTE))
            if n % 4 == 0:
                s.put_escalation(_escalation(dossier, f"H-{dossier}", now), p)
            if n == 39:  # left open and overdue: stays listed (legitimately) until the cap
                s.put_alert(_alert(dossier, "overdue", now + timedelta(hours=6)), p)
            else:
                pending.append((now + timedelta(days=5), dossier, 10, "Đã trả kết quả"))
        s.put_ops_alert(
            {
                "alert_type": "postal_delivery_overdue",
                "alert_id": f"postal-{day}",
                "dossier_id": f"HS-{day:04d}-00",
                "raised_at": now.isoformat(),
            }
        )
        for _ in range(3):
            s.put_dead_letter(_letter(letters, now))
            letters += 1
        due = [x for x in pending if x[0] <= now + timedelta(hours=23)]
        pending = [x for x in pending if x[0] > now + timedelta(hours=23)]
        for at, dossier, code, note in due:
            s.put_portal_status(dossier, code, agency=LAND, note=note, at=at)
        sizes.append(s.sizes())

    final = sizes[-1]
    # Figures: this year's and last year's days (≤ 400) plus the longer periods kept 3 years.
    assert final["stats_labels"] <= 400 + 36 + 12 + 3 + 3
    assert s.dropped["stats_labels"] > 300
    # Stuck handoffs: listed 90 days after their accept-by instant (10 a day).
    assert final["escalations"] <= 10 * 92
    assert final["ops_alerts"] <= 31
    assert final["dead_letters"] == 300 and s.dropped["dead_letters"] == letters - 300
    assert sum(s.dead_letters_dropped.values()) == letters - 300
    # The ended dossiers are forgotten a window after their end: a week's worth at most.
    assert final["ended"] <= 40 * 8 and final["closed"] <= 40 * 8
    assert final["dossier_index"] <= final["alerts"] + final["escalations"]
    # Bounded, not growing: the second year holds no more than the first (alerts: the open
    # overdue dossiers, one a day, capped).
    for name in ("stats_labels", "escalations", "ops_alerts", "ended", "closed", "dead_letters"):
        year1 = max(x[name] for x in sizes[365 + 200 : 365 + 365])
        year3 = max(x[name] for x in sizes[-165:])
        assert year3 <= year1 * 1.05 + 5, (name, year1, year3)
    assert final["alerts"] <= limits.max_alerts
    open_overdue = [a for a in s.alerts.values() if a.kind == "overdue" and a.scope == "dossier"]
    assert len(open_overdue) == min(days, limits.max_alerts)
    # Every step was handed back two days after its notice, but the last two days' steps.
    steps = [a for a in s.alerts.values() if a.scope == "step"]
    assert steps and all(a.occurred_at > (s.as_of or start) - timedelta(days=3) for a in steps)
    # A page still shows this month with its days.
    period = view.resolve_period("month", s.as_of or start)
    sums = s.sums_of(view.labels_for(period))
    assert sums[period.label][CENTER]["received"] == 9


def test_caps_drop_the_oldest_and_count_them() -> None:
    s = BusState(limits=Limits(max_alerts=3))
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    for n in range(5):
        s.put_alert(_alert(f"HS-{n}", "overdue", at + timedelta(minutes=n)))
    assert sorted(a.dossier_id for a in s.alerts.values()) == ["HS-2", "HS-3", "HS-4"]
    assert s.dropped["alerts"] == 2
    assert s.sizes()["dossier_index"] == 3


def test_a_step_notice_leaves_when_the_step_is_handed_back() -> None:
    s = BusState()
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    s.put_alert(_alert("HS-1", "overdue", at, step=2, agency=LAND))
    s.put_alert(_alert("HS-1", "overdue", at, step=3, agency=TAX))  # another step, still late
    s.put_alert(_alert("HS-2", "overdue", at, step=2, agency=LAND))
    assert len(view.alert_rows(s.alerts)) == 3
    version = s.version
    s.put_portal_status("HS-1", 4, agency=LAND, note=RETURNED_NOTE, at=at + timedelta(hours=2))
    rows = view.alert_rows(s.alerts)
    assert [(r.alert.dossier_id, r.alert.step) for r in rows] == [("HS-1", 3), ("HS-2", 2)]
    assert s.version > version  # the open pages redraw
    # Read the other way round (start-up reads the topics side by side): the handback first.
    s.put_portal_status(
        "HS-2", 4, agency=LAND, note=RETURNED_NOTE + ": xong", at=at + timedelta(hours=3)
    )
    s.put_alert(_alert("HS-2", "overdue", at, step=2, agency=LAND))
    assert [(r.alert.dossier_id, r.alert.step) for r in view.alert_rows(s.alerts)] == [("HS-1", 3)]
    # The step sent again to the same agency and late again: a new notice is listed.
    s.put_alert(_alert("HS-2", "overdue", at + timedelta(days=3), step=2, agency=LAND))
    assert len(view.alert_rows(s.alerts)) == 2
    # Another agency's progress line does not end LAND's step, nor does another note.
    s.put_portal_status("HS-1", 4, agency=LAND, note="Yêu cầu bổ sung", at=at + timedelta(days=1))
    s.put_portal_status("HS-2", 4, agency=TAX, note=RETURNED_NOTE, at=at + timedelta(days=4))
    assert len(view.alert_rows(s.alerts)) == 2


def test_stuck_handoffs_are_kept_by_age() -> None:
    s = BusState(limits=Limits(escalation_days=10))
    sent = datetime(2026, 3, 2, 9, tzinfo=VN)
    s.put_escalation(_escalation("HS-1", "H-1", sent))
    s.put_portal_status("HS-1", 10, agency=CENTER, note="Đã trả kết quả", at=sent)
    s.put_stats(_stats(f"{CENTER}|1.004227|counter|day:2026-03-20", sent + timedelta(days=18)))
    s.put_escalation(_escalation("HS-2", "H-2", sent))  # read late: already past its age
    s.put_escalation(_escalation("HS-3", "H-3", sent + timedelta(days=9)))
    s.prune()
    assert list(s.escalations) == ["H-3"] and s.dropped["escalations"] == 2


def test_an_ended_dossier_is_forgotten_after_the_window_on_the_alerts_clock() -> None:
    s = BusState(limits=Limits(closed_window=timedelta(days=2)))
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    s.put_alert(_alert("HS-1", "overdue", at), partition=0)
    s.put_portal_status("HS-1", 9, agency=LAND, note="Đã xử lý xong", at=at + timedelta(hours=1))
    assert "HS-1" in s.ended and view.alert_rows(s.alerts, ended=s.ended) == []
    # Partition 1 is still reading last week (start-up): nothing is forgotten yet.
    s.put_alert(_alert("HS-8", "overdue", at - timedelta(days=7)), partition=1)
    s.put_alert(_alert("HS-9", "overdue", at + timedelta(days=5)), partition=0)
    s.prune()
    assert "HS-1" in s.ended and "HS-1#" in s.alerts
    s.put_alert(_alert("HS-7", "overdue", at + timedelta(days=4)), partition=1)
    s.prune()
    assert "HS-1" not in s.ended and "HS-1#" not in s.alerts
    assert s.dropped["ended_dossiers"] == 1


def test_figures_of_periods_past_retention_are_dropped_and_not_taken_back() -> None:
    s = BusState(limits=Limits(day_label_days=10, period_label_days=40))
    s.put_stats(
        _stats(f"{CENTER}|1.004227|counter|day:2026-01-01", datetime(2026, 1, 1, 9, tzinfo=VN))
    )
    s.put_stats(
        _stats(f"{CENTER}|1.004227|counter|month:2026-01", datetime(2026, 1, 1, 9, tzinfo=VN))
    )
    s.put_stats(
        _stats(f"{CENTER}|1.004227|counter|day:2026-01-20", datetime(2026, 1, 20, 9, tzinfo=VN))
    )
    s.prune()
    assert set(s.stats_by_label) == {"month:2026-01", "day:2026-01-20"}
    assert s.dropped["stats_labels"] == 1
    s.put_stats(
        _stats(f"{LAND}|1.004227|counter|day:2026-01-01", datetime(2026, 1, 2, 9, tzinfo=VN))
    )
    assert "day:2026-01-01" not in s.stats_by_label and s.dropped["stats_snapshots"] == 1


def test_the_health_page_shows_what_is_held_and_dropped() -> None:
    from lienthong.connectors.console import pages

    s = BusState(limits=Limits(max_alerts=1))
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    s.put_alert(_alert("HS-1", "overdue", at))
    s.put_alert(_alert("HS-2", "overdue", at))
    memory = {"held": s.sizes(), "dropped": dict(s.dropped)}
    html = pages.health_fragment([], [], {}, "en", memory)
    assert 'id="console-memory"' in html and "Console memory" in html
    assert '<td class="l">alerts</td><td class="l">1</td><td class="l">1</td>' in html
    assert "console-memory" not in pages.health_fragment([], [], {}, "vi")
