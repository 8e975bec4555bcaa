"""Central vertical agency adapter (ngành dọc): handoffs to a ministry's own HTTP system.

- :mod:`.policy`: correlation ids, status folding, ``no_answer``, events built (pure);
- :mod:`.client`: one HTTP call to a central system;
- :mod:`.connector`: Kafka loop, per-request drivers, callbacks, ``/health``.

Run it with ``python -m lienthong.connectors.central``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lienthong.connectors.lazy import lazy_exports

if TYPE_CHECKING:
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

# Loaded on first use: `component` (what `up` starts) must not import the connector.
__getattr__ = lazy_exports(
    __name__,
    {
        "backoff_delay": "lienthong.connectors.backoff:doubling_delay",
        "Remote": "client",
        "RemoteError": "client",
        "CentralAdapter": "connector",
        "main": "connector",
        "ALERTS_TOPIC": "policy",
        "DOSSIER_EVENTS": "policy",
        "STATE_TOPIC": "policy",
        "CentralRequest": "policy",
        "answer_overdue": "policy",
        "apply_remote": "policy",
        "build_event": "policy",
        "correlation_id": "policy",
        "counters": "policy",
        "event_id_for": "policy",
        "mark_no_answer": "policy",
        "no_answer_alert": "policy",
        "request_for": "policy",
    },
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
