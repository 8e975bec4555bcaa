"""Postal connector (Bưu điện): orders to the post, its scans back onto the bus.

- :mod:`.policy`: ids, signatures, status verdicts, scan parsing, order state (pure);
- :mod:`.client`: the post's HTTP API, retried with bounded back-off;
- :mod:`.connector`: Kafka loop, webhook server, poller and delivery watch.

Run it with ``python -m lienthong.connectors.postal [--url URL] [--port PORT]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lienthong.connectors.lazy import lazy_exports

if TYPE_CHECKING:
    from lienthong.connectors.postal.connector import PostalConnector, main, rebuild_state, serve
    from lienthong.connectors.postal.policy import (
        CONSUMER_NAME,
        NAMESPACE,
        SIGNATURE_HEADER,
        Order,
        OrderRejected,
        PostalState,
        Scan,
        UnexpectedEvent,
        alert_value,
        classify_status,
        due_at_for,
        order_body,
        overdue_alert_id,
        parse_scan,
        result_event_id,
        scan_alert_id,
        scan_event_id,
        verify_signature,
    )

# Loaded on first use: `component` (what `up` starts) must not import the connector.
__getattr__ = lazy_exports(
    __name__,
    {
        "PostalConnector": "connector",
        "main": "connector",
        "rebuild_state": "connector",
        "serve": "connector",
        "CONSUMER_NAME": "policy",
        "NAMESPACE": "policy",
        "SIGNATURE_HEADER": "policy",
        "Order": "policy",
        "OrderRejected": "policy",
        "PostalState": "policy",
        "Scan": "policy",
        "UnexpectedEvent": "policy",
        "alert_value": "policy",
        "classify_status": "policy",
        "due_at_for": "policy",
        "order_body": "policy",
        "overdue_alert_id": "policy",
        "parse_scan": "policy",
        "result_event_id": "policy",
        "scan_alert_id": "policy",
        "scan_event_id": "policy",
        "verify_signature": "policy",
    },
)

__all__ = [
    "CONSUMER_NAME",
    "NAMESPACE",
    "SIGNATURE_HEADER",
    "Order",
    "OrderRejected",
    "PostalConnector",
    "PostalState",
    "Scan",
    "UnexpectedEvent",
    "alert_value",
    "classify_status",
    "due_at_for",
    "main",
    "order_body",
    "overdue_alert_id",
    "parse_scan",
    "rebuild_state",
    "result_event_id",
    "scan_alert_id",
    "scan_event_id",
    "serve",
    "verify_signature",
]
