"""Central vertical agency adapter (ngành dọc): handoffs to a ministry's own HTTP system.

- :mod:`.policy`: correlation ids, status folding, ``no_answer``, events built (pure);
- :mod:`.client`: one HTTP call to a central system;
- :mod:`.connector`: Kafka loop, per-request drivers, callbacks, ``/health``.

Run it with ``python -m lienthong.connectors.central``.
"""

from lienthong.connectors.backoff import doubling_delay as backoff_delay
from lienthong.connectors.central.client import Remote, RemoteError
from lienthong.connectors.central.connector import CentralAdapter, main
from lienthong.connectors.central.policy import (
    ALERTS_TOPIC,
    DOSSIER_EVENTS,
    STATE_TOPIC,
    CentralRequest,
    answer_overdue,
    apply_remote,
    build_event,
    correlation_id,
    counters,
    event_id_for,
    mark_no_answer,
    no_answer_alert,
    request_for,
)

__all__ = [
    "ALERTS_TOPIC",
    "DOSSIER_EVENTS",
    "STATE_TOPIC",
    "CentralAdapter",
    "CentralRequest",
    "Remote",
    "RemoteError",
    "answer_overdue",
    "apply_remote",
    "backoff_delay",
    "build_event",
    "correlation_id",
    "counters",
    "event_id_for",
    "main",
    "mark_no_answer",
    "no_answer_alert",
    "request_for",
]
