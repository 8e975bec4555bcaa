"""Portal connector end to end: real broker, real fake-portal HTTP server, real connector
process. Outage then recovery delivers exactly one copy of every record; a permanently
rejected record is parked with an alert without blocking the records after it; a connector
killed mid-way does not create duplicates; reconcile finds deleted and altered records."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lienthong.simulators.truth import COUNT_FIELDS
from tests.support.metrics import scrape, total
from tests.support.portal import TOKEN, Connector, fake_portal, get_json
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

NS = uuid.UUID("6f1c0a52-9a1e-4c57-9d1e-0c0ffee00001")
_get = get_json


def _send(url: str, body: Any, method: str = "POST") -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """The shared wait, with the connector's log as the failure's tail."""
    wait_for(check, timeout, what, lambda: log.read_text()[-3000:] if log and log.exists() else "")


def _record(n: int, status: int = 2) -> Any:
    from lienthong.schemas.models import VN_TZ, PortalStatusRecord

    at = datetime(2026, 1, 5, 9, n % 60, tzinfo=VN_TZ)
    code = f"H10.2601.{n:07d}"
    return PortalStatusRecord.create(
        event_id=uuid.uuid5(NS, f"{code}|{status}"),
        dossier_id=code,
        producer_agency="000.00.01.H10",
        occurred_at=at,
        recorded_at=at,
        MaHoSo=code,
        MaTTHC="1.004227",
        NgayTiepNhan="20260105090000",
        NgayHenTra="20260119170000",
        TrangThaiHoSo=status,
        KenhThucHien=1,
        DonViXuLy="000.00.01.H10",
        QuaTrinhXuLy=[],
    )


def _snapshot(procedure: str, received: int) -> Any:
    from lienthong.schemas.models import VN_TZ, LiveStatsSnapshot

    at = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)
    zero = dict.fromkeys((f for f in COUNT_FIELDS if f != "received"), 0)
    return LiveStatsSnapshot.create(
        dossier_id=None,
        producer_agency="000.00.01.H10",
        occurred_at=at,
        agency="000.00.01.H10",
        procedure_code=procedure,
        channel="counter",
        period_kind="month",
        period_key="2026-01",
        as_of=at,
        received=received,
        **zero,
    )


@pytest.fixture
def codec(bus_settings) -> Iterator[Any]:
    from lienthong.schemas import AvroCodec, registry_from_settings, set_default_codec

    codec = AvroCodec(registry_from_settings(bus_settings))
    set_default_codec(codec)
    yield codec
    set_default_codec(None)


@pytest.fixture
def produce(bus_settings, catalogue_topics, codec) -> Iterator[Callable[[list[Any]], None]]:
    from lienthong.connectors.sdk import BusProducer

    producer = BusProducer(bus_settings)

    def send(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, tuple):  # (topic, key, raw value): not an event
                producer.send_raw(*event)
            else:
                producer.send(event)
        producer.flush(30)

    yield send
    producer.close(10)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[str]:
    with fake_portal(tmp_path / "portal.log") as url:
        yield url


@pytest.fixture
def connector(bus_env, portal, tmp_path) -> Iterator[Callable[[], Connector]]:
    started: list[Connector] = []

    def make() -> Connector:
        c = Connector(bus_env, portal, tmp_path / "connector.log")
        started.append(c)
        return c

    yield make
    for c in started:
        if c.proc is not None and c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(10)


def _keys(portal: str) -> dict[str, Any]:
    return _get(portal + "/_control/keys", None)


def _read(bus_settings, name: str) -> list[Any]:
    from lienthong.cli.dlq import read_topic
    from lienthong.connectors.kafka import kafka_python_config

    return read_topic(kafka_python_config(bus_settings), bus_settings.topic(name))


def _reconcile(bus_env, monkeypatch, capsys, portal: str) -> tuple[int, list[dict[str, str]]]:
    from lienthong.cli.main import main

    for name, value in bus_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIENTHONG_CONNECTORS__PORTAL__TOKEN", TOKEN)
    capsys.readouterr()
    code = main(["portal", "reconcile", "--portal-url", portal, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_outage_then_recovery_exactly_once_and_rejected_record_parked(
    produce, portal, connector, bus_settings, bus_env, monkeypatch, capsys, tmp_path
) -> None:
    rejected = "H10.2601.0000012"
    events = [_record(n) for n in range(1, 25)] + [_record(n, 4) for n in range(1, 6)]
    events += [_snapshot(f"1.00{n}", n) for n in range(3)]
    produce(events + [("portal-status", b"H10.2601.0000099", b"not avro")])
    # The portal is down, then throttles, then loses two answers after storing; it never
    # accepts dossier 12.
    _send(
        portal + "/_control/faults",
        [
            {"status": 500, "count": 5},
            {"status": 503, "count": 2},
            {"status": 429, "retry_after": 1, "count": 2},
            {"status": 429, "retry_after": 1, "http_date": True, "count": 1},
            {"status": 502, "after_store": True, "count": 2},
        ],
    )
    _send(portal + "/_control/reject", {"MaHoSo": rejected, "status": 422})
    expected = {str(e.envelope.event_id) for e in events if getattr(e, "MaHoSo", "") != rejected}
    c = connector().start()
    _wait(
        "every accepted record at the portal",
        lambda: (
            set(_keys(portal)["stored"]) == expected
            and c.health()["parked"] == 1
            and c.health()["dead_lettered"] == 1
        ),
        60,
        c.log,
    )
    keys = _keys(portal)
    assert set(keys["stored"].values()) == {1}  # exactly one copy per idempotency key
    history = _get(portal + "/records?MaHoSo=H10.2601.0000003")["history"]
    assert [r["TrangThaiHoSo"] for r in history] == [2, 4]
    assert _get(portal + "/records")["received"] == 28  # 24 + 5 updates - 1 rejected
    health = c.health()
    assert health["retried"] >= 7 and health["throttled"] >= 3
    assert health["posted"] == len(expected) and health["last_success_at"]
    # Its /metrics says the same: portal sync outcomes and the /health counters.
    _, samples = scrape(f"http://127.0.0.1:{c.health_port}")
    assert total(samples, "lienthong_portal_sync_items_total", outcome="acknowledged") == len(
        expected
    )
    assert total(samples, "lienthong_portal_sync_items_total", outcome="failed") == 2
    assert total(samples, "lienthong_connector_events_total", event="retried") == health["retried"]
    assert total(samples, "lienthong_component_info", component="portal-connector") == 1

    [parked] = _read(bus_settings, "portal-parked")
    assert parked.key == rejected.encode()
    headers = dict(parked.headers)
    assert headers["lienthong.dlq.error_class"] == b"PortalRejected"
    assert headers["lienthong.portal.http_status"] == b"422"
    alerts = [json.loads(r.value) for r in _read(bus_settings, "monitoring-alerts")]
    assert [(a["alert_type"], a["dossier_id"]) for a in alerts] == [("portal_parked", rejected)]
    # Records after the parked one on its partition were delivered (its partition not blocked).
    assert _get(portal + "/records?MaHoSo=H10.2601.0000024")["record"]["TrangThaiHoSo"] == 2

    [dead] = _read(bus_settings, "dead-letters")
    assert dead.value == b"not avro"
    assert (
        dict(dead.headers)["lienthong.dlq.source_topic"]
        == bus_settings.topic("portal-status").encode()
    )

    code, diffs = _reconcile(bus_env, monkeypatch, capsys, portal)
    assert code == 1
    assert [(d["kind"], d["key"]) for d in diffs] == [("parked", rejected)]
    assert c.stop() == 0


def test_killed_connector_does_not_duplicate_and_reconcile_finds_drift(
    produce, portal, connector, bus_settings, bus_env, monkeypatch, capsys
) -> None:
    events = [_record(n) for n in range(1, 31)] + [_snapshot("1.004227", 7)]
    produce(events)
    expected = {str(e.envelope.event_id) for e in events}
    # The first request is stored and then held: the connector is killed before the ack,
    # so nothing of that batch is committed and the restart posts it again.
    _send(portal + "/_control/faults", [{"hold_s": 10, "count": 1}])
    first = connector().start()
    _wait("first batch stored", lambda: len(_keys(portal)["stored"]) >= 1, 30, first.log)
    # Held by the portal for 10 s: the connector cannot have its answer, nothing is posted yet.
    assert first.health()["posted"] == 0
    first.kill()
    second = connector().start()
    _wait(
        "all records at the portal",
        lambda: set(_keys(portal)["stored"]) == expected,
        60,
        second.log,
    )
    keys = _keys(portal)
    assert set(keys["stored"].values()) == {1}
    reposted = keys["replayed"] + sum(keys["received"].values()) - len(keys["received"])
    assert reposted >= 1  # the killed batch really was sent twice, and absorbed
    assert _get(portal + "/records")["received"] == 30
    assert second.stop() == 0

    code, diffs = _reconcile(bus_env, monkeypatch, capsys, portal)
    assert (code, diffs) == (0, [])

    _send(portal + "/_control/records/H10.2601.0000004", None, method="DELETE")
    _send(
        portal + "/_control/records/H10.2601.0000009",
        {"TrangThaiHoSo": 10, "NgayHenTra": "20260130170000"},
        method="PATCH",
    )
    code, diffs = _reconcile(bus_env, monkeypatch, capsys, portal)
    assert code == 1
    assert [(d["kind"], d["key"]) for d in diffs] == [
        ("missing", "H10.2601.0000004"),
        ("stale", "H10.2601.0000009"),
    ]
    assert "TrangThaiHoSo bus=2 portal=10" in diffs[1]["detail"]
    assert "NgayHenTra" in diffs[1]["detail"]
