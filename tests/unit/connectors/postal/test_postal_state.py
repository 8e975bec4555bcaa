"""Pure parts of the postal connector: ids, signatures, scan parsing, order state, rebuild."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lienthong.connectors.backoff import doubling_delay
from lienthong.connectors.postal import (
    PostalState,
    Scan,
    alert_value,
    classify_status,
    order_body,
    overdue_alert_id,
    parse_scan,
    result_event_id,
    scan_event_id,
    verify_signature,
)
from lienthong.schemas.models import VN_TZ, PostalOrderRequested, PostalTracking
from lienthong.simulators.postal import sign

CENTER = "000.00.01.H10"
AT = datetime(2026, 1, 5, 9, 0, tzinfo=VN_TZ)


def order(
    order_id: str = "O-1",
    dossier: str = "HS-1",
    kind: str = "delivery",
    deliver_by: datetime | None = None,
) -> PostalOrderRequested:
    return PostalOrderRequested.create(
        dossier_id=dossier,
        producer_agency=CENTER,
        occurred_at=AT,
        order_id=order_id,
        kind=kind,
        requesting_agency=CENTER,
        recipient_name="Nguyễn Văn C",
        address="12 Đồng Khởi",
        deliver_by=deliver_by,
    )


def tracking(code: str, kind: str, dossier: str = "HS-1", minutes: int = 0) -> PostalTracking:
    at = AT + timedelta(minutes=minutes)
    return PostalTracking.create(
        event_id=scan_event_id(code, kind, at),
        dossier_id=dossier,
        producer_agency=CENTER,
        occurred_at=at,
        tracking_code=code,
        kind=kind,
        place="Bưu cục",
        scanned_at=at,
    )


def test_scan_ids_depend_on_the_instant_not_its_timezone_and_differ_by_kind() -> None:
    utc = AT.astimezone(UTC)
    assert scan_event_id("EP1VN", "collected", AT) == scan_event_id("EP1VN", "collected", utc)
    assert scan_event_id("EP1VN", "collected", AT) != scan_event_id("EP1VN", "failed", AT)
    assert scan_event_id("EP1VN", "collected", AT) != scan_event_id(
        "EP1VN", "collected", AT + timedelta(microseconds=1)
    )
    assert result_event_id("EP1VN") == result_event_id("EP1VN") != result_event_id("EP2VN")
    assert isinstance(result_event_id("EP1VN"), uuid.UUID)


def test_signature_made_by_the_post_verifies_and_anything_else_does_not() -> None:
    body = b'{"tracking_code":"EP1VN"}'
    assert verify_signature("s3cret", body, sign("s3cret", body))
    assert not verify_signature("s3cret", body, sign("other", body))
    assert not verify_signature("s3cret", body + b" ", sign("s3cret", body))
    assert not verify_signature("s3cret", body, None)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "ok"),
        (201, "ok"),
        (400, "reject"),
        (422, "reject"),
        (401, "retry"),
        (403, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_status_classification(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


def test_back_off_doubles_up_to_the_cap() -> None:
    delays = [doubling_delay(attempt, 0.5, 10.0) for attempt in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and delays[-1] == 10.0


def test_parse_scan_accepts_the_posts_json_and_names_what_is_wrong() -> None:
    scan = parse_scan(
        {
            "tracking_code": "EP1VN",
            "kind": "delivered_to_citizen",
            "place": "Bưu cục phát",
            "scanned_at": "2026-01-05T02:00:00+00:00",
            "note": None,
        }
    )
    assert scan == Scan("EP1VN", "delivered_to_citizen", "Bưu cục phát", AT)
    good = {"tracking_code": "X", "kind": "failed", "place": "p", "scanned_at": AT.isoformat()}
    for broken, words in [
        ([], "object"),
        ({**good, "tracking_code": " "}, "tracking_code"),
        ({**good, "kind": "lost"}, "kind"),
        ({**good, "place": ""}, "place"),
        ({**good, "scanned_at": "yesterday"}, "ISO"),
        ({**good, "scanned_at": "2026-01-05T02:00:00"}, "timezone"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_scan(broken)


def test_delivery_due_time_from_deliver_by_or_the_configured_hours() -> None:
    state = PostalState(due_hours=48)
    plain = state.add_order(order("O-1"))
    assert plain.due_at == AT + timedelta(hours=48)
    by = state.add_order(order("O-2", deliver_by=AT + timedelta(hours=5)))
    assert by.due_at == AT + timedelta(hours=5)
    assert state.add_order(order("O-3", kind="pickup")).due_at is None
    assert state.add_order(order("O-1", dossier="HS-other")) is plain  # idempotent by order id


def test_overdue_once_per_open_delivery() -> None:
    state = PostalState(due_hours=1)
    late = state.add_order(order("O-late", dossier="HS-1"))
    done = state.add_order(order("O-done", dossier="HS-2"))
    state.add_order(order("O-pickup", dossier="HS-3", kind="pickup"))
    state.bind(done, "EP2VN")
    state.apply_scan(done, "delivered_to_citizen")
    assert done.closed and done.delivered
    assert state.overdue(AT + timedelta(minutes=59)) == []
    assert state.overdue(AT + timedelta(hours=2)) == [late]
    state.alerts.add(overdue_alert_id("O-late"))
    assert state.overdue(AT + timedelta(hours=3)) == []


def test_returned_closes_without_delivery_and_pickups_close_at_the_center() -> None:
    state = PostalState()
    delivery = state.add_order(order("O-1"))
    pickup = state.add_order(order("O-2", kind="pickup"))
    state.apply_scan(delivery, "failed")
    assert not delivery.closed
    state.apply_scan(delivery, "returned")
    assert delivery.closed and not delivery.delivered
    state.apply_scan(pickup, "collected")
    assert not pickup.closed
    state.apply_scan(pickup, "delivered_to_center")
    assert pickup.closed
    assert state.open_orders() == []


def test_rebuild_binds_unambiguous_codes_and_leaves_the_rest_to_a_lookup() -> None:
    state = PostalState()
    orders = [
        order("D-1", dossier="HS-1"),
        order("P-1", dossier="HS-1", kind="pickup"),
        order("D-2", dossier="HS-2"),
        order("D-3a", dossier="HS-3"),
        order("D-3b", dossier="HS-3"),
    ]
    scans = [
        tracking("EP-P1", "pickup_ordered", "HS-1"),
        tracking("EP-P1", "collected", "HS-1", 1),
        tracking("EP-D1", "result_dispatched", "HS-1", 2),
        tracking("EP-D1", "delivered_to_citizen", "HS-1", 3),
        tracking("EP-D2", "result_dispatched", "HS-2", 4),
        tracking("EP-D3", "result_dispatched", "HS-3", 5),
    ]
    alerts = ["postal:D-2:overdue", "documents:0:7"]
    state.rebuild(orders, scans, alerts)
    assert state.orders["D-1"].tracking_code == "EP-D1" and state.orders["D-1"].closed
    assert state.orders["P-1"].tracking_code == "EP-P1" and not state.orders["P-1"].closed
    assert state.orders["D-2"].tracking_code == "EP-D2" and not state.orders["D-2"].closed
    assert state.orders["D-3a"].tracking_code is None  # two candidates: ask the post
    assert state.orders["D-3b"].tracking_code is None
    assert state.seen == {e.envelope.event_id for e in scans}
    assert state.alerts == {"postal:D-2:overdue"}
    assert {o.order_id for o in state.open_orders()} == {"P-1", "D-2", "D-3a", "D-3b"}
    assert state.overdue(AT + timedelta(days=30)) == [state.orders["D-3a"], state.orders["D-3b"]]


def test_order_body_carries_the_dossier_as_reference_and_alert_has_the_shared_shape() -> None:
    body = order_body(order("O-9", dossier="HS-9", deliver_by=AT))
    assert body["reference"] == "HS-9" and body["order_id"] == "O-9"
    assert body["deliver_by"] == "2026-01-05T02:00:00+00:00"
    state = PostalState()
    o = state.add_order(order("O-9", dossier="HS-9"))
    value = alert_value(
        alert_type="postal_delivery_overdue",
        alert_id="postal:O-9:overdue",
        order=o,
        reason="late",
        detail={},
        now=AT,
    )
    assert {"alert_type", "alert_id", "raised_at", "dossier_id", "agency", "reason"} <= set(value)
    assert value["dossier_id"] == "HS-9" and value["agency"] == CENTER
