"""What a parked record and its alert look like, and how items are built from events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lienthong.connectors.deadletter import dlq_header_map
from lienthong.connectors.headers import DLQ_ERROR_CLASS, DLQ_REASON, DLQ_SOURCE_OFFSET
from lienthong.connectors.portal.client import Item, Parked
from lienthong.connectors.portal.connector import (
    PARKED_KEY,
    PARKED_STATUS,
    parked_alert,
    parked_headers,
    to_item,
)
from lienthong.schemas.models import VN_TZ, PortalStatusRecord

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@dataclass
class FakeRecord:
    topic: str = "t.portal-status"
    partition: int = 0
    offset: int = 41
    key: bytes | None = b"H10.2601.0000007"
    value: bytes | None = b"\x00\x00\x00\x00\x01avro"
    headers: list = field(default_factory=lambda: [("traceparent", b"00-abc")])


def _parked(status: int | None = 422) -> Parked:
    item = Item("/records", "key-7", {"MaHoSo": "H10.2601.0000007"}, FakeRecord())
    return Parked(item, "PortalRejected", "portal rejected it with 422: bad", status, 1)


def test_parked_record_keeps_original_headers_and_explains() -> None:
    headers = parked_headers(_parked(), NOW)
    assert headers[0] == ("traceparent", b"00-abc")
    dlq = dlq_header_map(headers)
    assert dlq[DLQ_ERROR_CLASS] == "PortalRejected"
    assert dlq[DLQ_REASON] == "portal rejected it with 422: bad"
    assert dlq[DLQ_SOURCE_OFFSET] == "41"
    named = dict(headers)
    assert named[PARKED_KEY] == b"key-7" and named[PARKED_STATUS] == b"422"


def test_alert_has_the_monitor_shape() -> None:
    alert = parked_alert(_parked(None), NOW)
    assert alert["alert_type"] == "portal_parked"
    assert alert["alert_id"] == "portal-parked:t.portal-status:0:41"
    assert alert["dossier_id"] == "H10.2601.0000007"
    for name in ("raised_at", "source_topic", "source_offset", "error_class", "reason"):
        assert alert[name]
    assert alert["http_status"] is None
    json.dumps(alert)


def test_items_carry_the_event_id_as_idempotency_key() -> None:
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, "x")
    at = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)
    event = PortalStatusRecord.create(
        event_id=event_id,
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
    item = to_item(event)
    assert item is not None and item.path == "/records"
    assert item.key == str(event_id) == item.payload["idempotency_key"]
    assert "envelope" not in item.payload
