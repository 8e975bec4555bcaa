"""Live mode: the wall-clock timer fires due alerts without any further input event."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.models import DossierReceived
from lienthong.schemas.registry import registry_from_settings
from tests.integration.test_streams_scenarios import CENTER, SUBJECT, Script, consume, publish

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

    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 3)
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    kinds = sorted(a.EVENT_TYPE for a in alerts)
    assert kinds == ["apology_issued", "deadline_overdue", "deadline_warning"], worker.log_tail()
    overdue = next(a for a in alerts if a.EVENT_TYPE == "deadline_overdue")
    assert overdue.due_at == due.replace(microsecond=0) or overdue.due_at == due
    slip = worker.get_json("/dossiers/slip?id=HS-LIVE")
    assert slip["sent_alerts"] == ["dossier:apology", "dossier:overdue", "dossier:warning"]
