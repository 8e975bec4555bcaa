"""National portal connector (Cổng Dịch vụ công quốc gia): portal-status and live-stats out.

Why a separate connector and not the stream processor itself: the portal is slow, throttled
and often unavailable, and a portal outage must never back-pressure the bus. Modules:

- :mod:`.policy`: retry verdicts, jittered back-off, ``Retry-After``, the token bucket;
- :mod:`.client`: batches over HTTP with bearer token, idempotency keys, item-by-item fallback;
- :mod:`.connector`: the Kafka loop (commit after ack, parking, dead letters, ``/health``);
- :mod:`.reconcile`: what the portal holds versus what the bus sent.

Run it with ``python -m lienthong.connectors.portal [--portal-url URL]``.
"""

from lienthong.connectors.portal.connector import (
    PortalConnector,
    main,
    record_payload,
    run,
    stats_payload,
)

__all__ = ["PortalConnector", "main", "record_payload", "run", "stats_payload"]
