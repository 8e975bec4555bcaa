"""Shared helpers of the gateway tests: clients file, sample bodies, a fake publisher."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from lienthong.config import load_settings
from lienthong.connectors.gateway.app import Gateway, create_app
from lienthong.connectors.gateway.auth import Authenticator, load_clients
from lienthong.connectors.gateway.idempotency import IdempotencyStore

CENTER = "000.00.01.H10"  # province service center
LAND_OFFICE = "000.01.11.H10"  # department unit
TAX = "000.00.60.H10"  # central vertical agency
DISTRICT = "000.00.31.H10"
UNREGISTERED = "999.99.99.H10"  # well-formed, not in the registry

KEYS = {
    CENTER: "center-secret-key-0001",
    LAND_OFFICE: "land-office-secret-0002",
    TAX: "tax-office-secret-0003",
    DISTRICT: "district-secret-0004",
    "postal": "postal-secret-0005",
}
SUBJECT = {"kind": "citizen", "identifier_hash": "ab" * 32}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_clients(path: Path, certs: dict[str, str] | None = None) -> Path:
    certs = certs or {}
    lines = []
    for agency in (CENTER, LAND_OFFICE, TAX, DISTRICT):
        lines += [
            "[[client]]",
            f'agency = "{agency}"',
            f'name = "client of {agency}"',
            f'api_key_sha256 = "{sha(KEYS[agency])}"',
        ]
        if agency in certs:
            lines.append(f'cert_sha256 = "{certs[agency]}"')
        lines.append("")
    lines += [
        "[[client]]",
        f'agency = "{CENTER}"',
        'name = "Bưu điện tỉnh (postal connector)"',
        'role = "postal"',
        f'api_key_sha256 = "{sha(KEYS["postal"])}"',
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def auth(agency: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[agency]}"}


# Fixed per test session so that two bodies built alike are equal (idempotency replays).
_BASE = datetime.now(UTC).replace(microsecond=0)


def now_iso(delta_s: float = 0) -> str:
    return (_BASE + timedelta(seconds=delta_s)).isoformat()


def received_body(dossier_id: str = "HS-GW-0001", **overrides: Any) -> dict[str, Any]:
    at = now_iso(-60)
    body = {
        "dossier_id": dossier_id,
        "occurred_at": at,
        "channel": "counter",
        "procedure_code": "1.004227",
        "receiving_agency": CENTER,
        "subject": SUBJECT,
        "received_at": at,
        "appointment_at": now_iso(10 * 86400),
    }
    body.update(overrides)
    return body


def finished_body(dossier_id: str = "HS-GW-0001", **overrides: Any) -> dict[str, Any]:
    body = {
        "dossier_id": dossier_id,
        "occurred_at": now_iso(-5),
        "agency": LAND_OFFICE,
        "outcome": "approved",
    }
    body.update(overrides)
    return body


class Meta:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


class FakePublisher:
    """Records what would reach Kafka; can fail or be slow on demand."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.remembered: list[tuple[str, bytes]] = []
        self.fail = False
        self.delay = 0.0

    async def publish(self, event: Any) -> dict[str, Any]:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("broker down")
        self.events.append(event)
        return {"topic": event.TOPIC, "partition": 0, "offset": len(self.events) - 1}

    async def remember(self, key: str, value: bytes) -> None:
        self.remembered.append((key, value))


def make_settings(tmp_path: Path, **gateway: Any):
    clients = write_clients(tmp_path / "clients.toml", gateway.pop("certs", None))
    env = {
        "LIENTHONG_RUN_DIR": str(tmp_path / "run"),
        "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(clients),
    }
    for key, value in gateway.items():
        env[f"LIENTHONG_CONNECTORS__GATEWAY__{key.upper()}"] = str(value)
    return load_settings(environ=env)


def make_gateway(settings, publisher: FakePublisher | None = None, **kw: Any) -> Gateway:
    gw = settings.connectors.gateway
    return Gateway(
        settings,
        publisher or FakePublisher(),
        kw.pop("store", None) or IdempotencyStore(gw.idempotency_ttl_h * 3600),
        Authenticator(load_clients(gw.clients_file)),
        **kw,
    )


class Harness:
    """An in-process aiohttp test server around a gateway; synchronous calls for tests."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self.client = TestClient(TestServer(create_app(gateway)), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    @property
    def published(self) -> list[Any]:
        return self.gateway.publisher.events  # type: ignore[attr-defined]

    async def _call(self, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
        async with self.client.request(method, path, **kw) as r:
            raw = await r.read()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw
            return r.status, r.headers, data

    def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return self.loop.run_until_complete(self._call(method, path, **kw))

    def post(
        self, event_type: str, body: Any, agency: str | None = CENTER, **kw: Any
    ) -> tuple[int, Any, Any]:
        headers = dict(kw.pop("headers", {}))
        if agency is not None:
            headers.update(auth(agency))
        if "data" not in kw:
            kw["json"] = body
        return self.call("POST", f"/v1/events/{event_type}", headers=headers, **kw)

    def gather(self, *calls: tuple[str, str, dict[str, Any]]) -> list[tuple[int, Any, Any]]:
        async def run() -> list[tuple[int, Any, Any]]:
            return list(await asyncio.gather(*(self._call(m, p, **kw) for m, p, kw in calls)))

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()
