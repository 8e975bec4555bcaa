"""Live mode: the wall-clock timer fires due alerts without any further input event."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from lienthong.domain.alerts import subtract_working_time
from lienthong.domain.calendar import default_calendar
from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.models import DossierReceived, ProcessingFinished, ResultReturned
from lienthong.schemas.registry import registry_from_settings
from tests.integration.test_streams_scenarios import CENTER, SUBJECT, Script, consume, publish
from tests.support.metrics import scrape, total
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_live_clock_fires_warning_then_overdue_and_apology_by_wall_time(
    kafka_bootstrap, catalogue_topics, bus_settings, start_worker
):
    codec = AvroCodec(registry_from_settings(bus_settings))
    worker = start_worker({"LIENTHONG_STREAMS__CLOCK": "live"})
    now = datetime.now(UTC)
    due = now + timedelta(seconds=6)
    s = Script()
    # Due in 6 s: the warning (one working day before) is already due, the overdue is not.
    s.add(
        DossierReceived,
        "HS-LIVE",
        now - timedelta(minutes=1),
        channel="counter",
        procedure_code="1.004227",
        receiving_agency=CENTER,
        subject=SUBJECT,
        received_at=now - timedelta(minutes=1),
        appointment_at=due,
    )
    publish(kafka_bootstrap, catalogue_topics, codec, s.events)

    first = []
    deadline = time.monotonic() + 20
    while not first and time.monotonic() < deadline:
        first = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec, idle_s=1)
    assert [a.EVENT_TYPE for a in first] == ["deadline_warning"], worker.log_tail()
    assert datetime.now(UTC) < due, "too slow to tell the warning from the overdue"

    # The overdue fires by the wall clock at ``due``: wait for it (not for due + a margin).
    wait_for(
        lambda: len(consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec, 1)) >= 3,
        max(0.0, (due - datetime.now(UTC)).total_seconds()) + 30,
        "the overdue and the apology",
        worker.log_tail,
    )
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    kinds = sorted(a.EVENT_TYPE for a in alerts)
    assert kinds == ["apology_issued", "deadline_overdue", "deadline_warning"], worker.log_tail()
    overdue = next(a for a in alerts if a.EVENT_TYPE == "deadline_overdue")
    assert overdue.due_at == due.replace(microsecond=0) or overdue.due_at == due
    slip = worker.get_json("/dossiers/slip?id=HS-LIVE")
    assert slip["sent_alerts"] == ["dossier:apology", "dossier:overdue", "dossier:warning"]


def test_a_backlog_is_judged_in_event_time_then_the_wall_clock_takes_over(
    kafka_bootstrap, catalogue_topics, bus_settings, start_worker
):
    """A live worker that finds a backlog (restart after downtime, a day uploaded at once)
    must not alert on a dossier the backlog itself finishes in time.

    Both dossiers were received three working days ago with an appointment two working days
    later; the warning instant (one working day before) and the appointment are long past.
    HS-DONE was finished an hour after its receipt, before any of them: no alert may exist.
    HS-OPEN was never finished: its warning, overdue notice and apology are due by the wall
    clock once the worker has caught up. Judging HS-DONE's receipt on the wall clock, before
    its finish queued right behind it is applied, fires all three for it too.
    """
    codec = AvroCodec(registry_from_settings(bus_settings))
    cal = default_calendar()
    received = subtract_working_time(datetime.now(UTC), timedelta(hours=24), cal)
    due = cal.add_working_time(received, timedelta(hours=16))
    finished = cal.add_working_time(received, timedelta(hours=1))
    assert finished < subtract_working_time(due, timedelta(hours=8), cal) < due < datetime.now(UTC)
    s = Script()
    for dossier in ("HS-DONE", "HS-OPEN"):
        s.add(
            DossierReceived,
            dossier,
            received,
            channel="counter",
            procedure_code="1.004227",
            receiving_agency=CENTER,
            subject=SUBJECT,
            received_at=received,
            appointment_at=due,
        )
    s.add(ProcessingFinished, "HS-DONE", finished, agency=CENTER, outcome="approved")
    s.add(ResultReturned, "HS-DONE", finished, agency=CENTER, method="counter")
    # On the topic before the worker starts: it meets them as a backlog.
    publish(kafka_bootstrap, catalogue_topics, codec, s.events)
    worker = start_worker({"LIENTHONG_STREAMS__CLOCK": "live"})

    alerts: list = []
    deadline = time.monotonic() + 30
    while len(alerts) < 3 and time.monotonic() < deadline:
        alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec, idle_s=1)
    # Three more complete sweeps of the live clock after those: nothing may follow for HS-DONE.
    swept = total(scrape(worker.url)[1], "lienthong_alert_clock_sweeps_total")
    wait_for(
        lambda: total(scrape(worker.url)[1], "lienthong_alert_clock_sweeps_total") >= swept + 3,
        30,
        "three more live clock sweeps",
        worker.log_tail,
    )
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    got = sorted((a.envelope.dossier_id, a.EVENT_TYPE) for a in alerts)
    assert got == [
        ("HS-OPEN", "apology_issued"),
        ("HS-OPEN", "deadline_overdue"),
        ("HS-OPEN", "deadline_warning"),
    ], worker.log_tail()
    assert worker.get_json("/dossiers/slip?id=HS-DONE")["sent_alerts"] == []
