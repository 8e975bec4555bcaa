"""How ``lienthong up`` starts the schema registry's read API (registry line ``schema-registry``).

Light on purpose: the supervisor imports this to plan its children, never the aiohttp server.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """The embedded file registry served as the Confluent read API, for standard clients.

    Not started with an external registry (``schema_registry_url``): clients use that one.
    """
    return [Launch()] if context.settings.schema_registry_url is None else []
