"""The portal connector forwards portal-status and live-stats records to the fake portal."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import pytest

from lienthong.simulators.truth import COUNT_FIELDS

pytestmark = pytest.mark.integration


def test_connector_forwards_records_and_stats(bus_settings, catalogue_topics) -> None:
    from kafka import KafkaProducer

    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.connectors.portal import run
    from lienthong.runtime.probe import free_port
    from lienthong.schemas import AvroCodec, registry_from_settings, set_default_codec
    from lienthong.schemas.models import VN_TZ, LiveStatsSnapshot, PortalStatusRecord

    codec = AvroCodec(registry_from_settings(bus_settings))
    set_default_codec(codec)
    at = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)
    record = PortalStatusRecord.create(
        dossier_id="H10.2601.0000001",
        producer_agency="000.00.01.H10",
        occurred_at=at,
        MaHoSo="H10.2601.0000001",
        MaTTHC="1.004227",
        NgayTiepNhan="20260105090000",
        TrangThaiHoSo=2,
        KenhThucHien=1,
        DonViXuLy="000.00.01.H10",
        QuaTrinhXuLy=[],
    )
    zero = dict.fromkeys((f for f in COUNT_FIELDS if f != "received"), 0)
    snapshot = LiveStatsSnapshot.create(
        dossier_id=None,
        producer_agency="000.00.01.H10",
        occurred_at=at,
        agency="000.00.01.H10",
        procedure_code="1.004227",
        channel="counter",
        period_kind="month",
        period_key="2026-01",
        as_of=at,
        received=1,
        **zero,
    )
    producer = KafkaProducer(**kafka_python_config(bus_settings))
    producer.send(
        bus_settings.topic("portal-status"), key=b"H10.2601.0000001", value=codec.encode(record)
    )
    producer.send(
        bus_settings.topic("live-stats"), key=snapshot.key.encode(), value=codec.encode(snapshot)
    )
    producer.flush()
    producer.close()

    port = free_port()
    portal = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lienthong.simulators.portal",
            "--port",
            str(port),
            "--fail-rate",
            "0.3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        group = f"portal-{bus_settings.topic_prefix}"
        assert run(bus_settings, url, group, stop_after_idle_polls=2) == 2
        with urllib.request.urlopen(url + "/records?MaHoSo=H10.2601.0000001") as r:
            assert json.loads(r.read())["record"]["TrangThaiHoSo"] == 2
        with urllib.request.urlopen(url + "/stats?period=month:2026-01") as r:
            assert json.loads(r.read())["stats"][snapshot.key]["received"] == 1
        # Offsets were committed: a second run forwards nothing new.
        assert run(bus_settings, url, group, stop_after_idle_polls=1) == 0
    finally:
        portal.terminate()
        portal.wait(10)
        set_default_codec(None)
