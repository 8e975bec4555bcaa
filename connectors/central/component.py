"""How ``lienthong up`` starts the central agency adapter (registry line ``central-adapter``).

Light on purpose: the supervisor imports this to plan its children, never the connector loop.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """Configured endpoints, or the one central agency the demo's fake central system plays."""
    from lienthong.runtime.demo import DEMO_CENTRAL_AGENCY

    endpoints = dict(context.settings.connectors.central.endpoints)
    fake = context.url_of("fake-central")
    if not endpoints and fake is not None:
        endpoints = {DEMO_CENTRAL_AGENCY: fake}
    if not endpoints:
        return []
    env = {
        f"LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__{code}": url for code, url in endpoints.items()
    }
    return [Launch(env=env)]
