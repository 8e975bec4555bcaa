"""How ``lienthong up`` starts the broker probe (registry line ``broker-probe``).

Beside :mod:`lienthong.runtime.broker_probe` rather than in it: that module imports aiohttp
and prometheus at the top, and the supervisor only needs to know what to start.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def broker_probe(context: PlanContext) -> list[Launch]:
    """Always: broker liveness and every consumer group's lag (the connectors' groups too)."""
    return [Launch()]
