"""How ``lienthong up`` starts the national portal connector (registry line ``portal-connector``).

Light on purpose: the supervisor imports this to plan its children, never the connector loop.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """A configured portal, the demo's real (test) portal URL, or the demo's fake portal."""
    settings = context.settings
    url = (
        settings.connectors.portal.url or settings.demo.portal_url or context.url_of("fake-portal")
    )
    return [] if url is None else [Launch(args=("--portal-url", url))]
