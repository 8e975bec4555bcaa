"""Fake portal, fake postal service and the portal connector, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from lienthong.runtime.probe import free_port
from lienthong.schemas.models import VN_TZ, LiveStatsSnapshot, PortalStatusRecord
from lienthong.simulators.postal import PostalService, make_app
from lienthong.simulators.truth import COUNT_FIELDS

AT = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)


def _record(dossier: str, status: int) -> PortalStatusRecord:
    return PortalStatusRecord.create(
        dossier_id=dossier,
        producer_agency="000.00.01.H10",
        occurred_at=AT,
        recorded_at=AT,
        MaHoSo=dossier,
        MaTTHC="1.004227",
        NgayTiepNhan="20260105090000",
        NgayHenTra="20260119170000",
        TrangThaiHoSo=status,
        KenhThucHien=3,
        DonViXuLy="000.00.01.H10",
        QuaTrinhXuLy=[],
    )


def _snapshot(received: int) -> LiveStatsSnapshot:
    zero = dict.fromkeys((f for f in COUNT_FIELDS if f != "received"), 0)
    return LiveStatsSnapshot.create(
        dossier_id=None,
        producer_agency="000.00.01.H10",
        occurred_at=AT,
        recorded_at=AT,
        agency="000.00.07.H10",
        procedure_code="2.000620",
        channel="counter",
        period_kind="month",
        period_key="2026-01",
        as_of=AT,
        received=received,
        **zero,
    )


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def portal():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lienthong.simulators.portal",
            "--port",
            str(port),
            "--fail-rate",
            "0.5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            assert _get(url + "/health") == {"status": "ok"}
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_portal_stores_records_and_stats_through_retries(portal: str) -> None:
    # Retry rules themselves are unit-tested in tests/unit/connectors/portal/.
    from aiohttp import ClientSession

    from lienthong.connectors.portal.client import PortalClient
    from lienthong.connectors.portal.connector import to_item

    async def deliver() -> tuple[int, int]:
        async with ClientSession() as session:
            client = PortalClient(session, portal, base_delay_s=0.01, max_delay_s=0.05)
            for i in range(8):
                await client.deliver("/records", [to_item(_record(f"H10.X.{i}", 2))])
            for event in (_record("H10.X.1", 4), _record("H10.X.1", 9), _snapshot(12)):
                item = to_item(event)
                await client.deliver(item.path, [item])
            return client.counters.posted, client.counters.retried

    posted, retried = asyncio.run(deliver())
    assert posted == 11
    assert retried > 0  # the 50 % failure rate forced at least one retry
    got = _get(portal + "/records?MaHoSo=H10.X.1")
    assert got["record"]["TrangThaiHoSo"] == 9 and got["record"]["KenhThucHien"] == 3
    assert [r["TrangThaiHoSo"] for r in got["history"]] == [2, 4, 9]
    stats = _get(portal + "/stats?agency=000.00.07.H10")["stats"]
    assert stats["000.00.07.H10|2.000620|counter|month:2026-01"]["received"] == 12
    assert _get(portal + "/stats?agency=000.00.99.H10")["stats"] == {}
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(portal + "/records?MaHoSo=nope", timeout=5)
    assert exc.value.code == 404


def test_postal_service_emits_tracking_with_failures() -> None:
    from aiohttp import ClientSession, web

    events = []
    service = PostalService(events.append, time_scale=1e7, failure_rate=1.0)

    async def scenario() -> tuple[dict, dict]:
        runner = web.AppRunner(make_app(service))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{port}/health") as r:
                    health = await r.json()
                async with s.post(
                    f"http://127.0.0.1:{port}/orders",
                    json={"dossier_id": "H10.2601.0000001", "kind": "delivery"},
                ) as r:
                    assert r.status == 201
                    code = (await r.json())["tracking_code"]
                async with s.post(f"http://127.0.0.1:{port}/orders", json={"kind": "x"}) as r:
                    assert r.status == 400
                for _ in range(200):
                    if len(events) >= 3:
                        break
                    await asyncio.sleep(0.01)
                async with s.get(f"http://127.0.0.1:{port}/orders/{code}") as r:
                    order = await r.json()
            return health, order
        finally:
            await runner.cleanup()

    health, order = asyncio.run(scenario())
    assert health == {"status": "ok"}
    assert [e.kind.value for e in events] == ["result_dispatched", "failed", "delivered_to_citizen"]
    assert order["scans"] == ["result_dispatched", "failed", "delivered_to_citizen"]
    assert all(e.envelope.dossier_id == "H10.2601.0000001" for e in events)


def test_demo_components_only_when_enabled() -> None:
    from lienthong.config import load_settings
    from lienthong.runtime.supervisor import component_specs

    plain = {s.name: s for s in component_specs(load_settings(environ={}))}
    # Without outside systems configured only the workers, the ingest gateway, the REST
    # view of the embedded schema registry and the broker probe run.
    assert set(plain) == {"worker-1", "gateway", "schema-registry", "broker-probe"}
    assert plain["gateway"].command[-2:] == ["run", "gateway"]
    demo = {
        s.name: s
        for s in component_specs(load_settings(environ={"LIENTHONG_DEMO__ENABLED": "true"}))
    }
    assert {
        "fake-portal",
        "portal-connector",
        "fake-postal",
        "postal-connector",
        "fake-central",
        "central-adapter",
        "simulator",
    } <= set(demo)
    assert demo["fake-portal"].health_path == "/health"
    assert "http://127.0.0.1:6080" in demo["portal-connector"].command
    assert "http://127.0.0.1:6092/webhooks/tracking" in demo["fake-postal"].command
    central_env = demo["central-adapter"].env
    assert central_env == {
        "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__000.00.64.H10": "http://127.0.0.1:6082"
    }
    assert load_settings(environ=central_env).connectors.central.endpoints == {
        "000.00.64.H10": "http://127.0.0.1:6082"
    }
    real = {
        s.name: s
        for s in component_specs(
            load_settings(
                environ={
                    "LIENTHONG_DEMO__ENABLED": "true",
                    "LIENTHONG_DEMO__PORTAL_URL": "https://dvc.example",
                }
            )
        )
    }
    assert "fake-portal" not in real
    assert "https://dvc.example" in real["portal-connector"].command
    # A province's own systems: connectors start without any demo fake.
    province = {
        s.name: s
        for s in component_specs(
            load_settings(
                environ={
                    "LIENTHONG_CONNECTORS__PORTAL__URL": "https://dvc.example",
                    "LIENTHONG_CONNECTORS__POSTAL__URL": "https://post.example",
                }
            )
        )
    }
    assert {"portal-connector", "postal-connector"} <= set(province)
    assert not any(name.startswith("fake-") for name in province)
