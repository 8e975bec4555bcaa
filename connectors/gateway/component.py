"""How ``lienthong up`` starts the ingest gateway (registry line ``gateway``)."""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """Always: it is how department systems reach the bus.

    In the demo without a clients file it takes the demo's generated clients (hashes only).
    """
    env = {}
    secrets = context.demo_secrets
    if secrets is not None and context.settings.connectors.gateway.clients_file is None:
        env["LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE"] = str(secrets.clients_file)
    return [Launch(env=env)]
