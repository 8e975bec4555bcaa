"""National portal connector (Cổng Dịch vụ công quốc gia): portal-status and live-stats out.

Why a separate connector and not the stream processor itself: the portal is slow, throttled
and often unavailable, and a portal outage must never back-pressure the bus. Modules:

- :mod:`.policy`: retry verdicts, jittered back-off, ``Retry-After``, the token bucket;
- :mod:`.client`: batches over HTTP with bearer token, idempotency keys, item-by-item fallback;
- :mod:`.connector`: the Kafka loop (commit after ack, parking, dead letters, ``/health``);
- :mod:`.reconcile`: what the portal holds versus what the bus sent.

Run it with ``python -m lienthong.connectors.portal [--portal-url URL]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lienthong.connectors.lazy import lazy_exports

if TYPE_CHECKING:
    from lienthong.connectors.portal.connector import (
        PortalConnector,
        main,
        record_payload,
        run,
        stats_payload,
    )

# Loaded on first use: `component` (what `up` starts) must not import the connector.
__getattr__ = lazy_exports(
    __name__,
    {
        "PortalConnector": "connector",
        "main": "connector",
        "record_payload": "connector",
        "run": "connector",
        "stats_payload": "connector",
    },
)

__all__ = ["PortalConnector", "main", "record_payload", "run", "stats_payload"]
