"""How ``lienthong up --demo`` starts the fake counterparts (registry lines ``fake-*``).

Each fake starts only in the demo and only when its real system is not configured; it tells
the plans after it where it answers (``Launch.serves``), so the connector it stands in for is
pointed at it. Light on purpose: the fakes' aiohttp servers are not imported to plan.
"""

from __future__ import annotations

from lienthong.runtime.registry import LOCAL, Launch, PlanContext


def fake_portal(context: PlanContext) -> list[Launch]:
    """The fake national portal, unless a portal (or the demo's real test portal) is set."""
    settings = context.settings
    if not settings.demo.enabled or settings.connectors.portal.url or settings.demo.portal_url:
        return []
    port = settings.demo.portal_port
    return [Launch(args=("--port", str(port)), serves=f"{LOCAL}:{port}")]


def fake_postal(context: PlanContext) -> list[Launch]:
    """The fake post, calling the postal connector's tracking webhook (signed in the demo)."""
    settings = context.settings
    demo = settings.demo
    if not demo.enabled or settings.connectors.postal.url is not None:
        return []
    webhook = f"{LOCAL}:{settings.connectors.postal.port}/webhooks/tracking"
    args = ["--port", str(demo.postal_port), "--time-scale", str(demo.postal_time_scale)]
    args += ["--webhook-url", webhook]
    if context.demo_secrets is not None:
        args.append(f"--webhook-secret={context.demo_secrets.webhook_secret}")
    return [Launch(args=tuple(args), serves=f"{LOCAL}:{demo.postal_port}")]


def fake_central(context: PlanContext) -> list[Launch]:
    """One fake central agency system, unless central endpoints are configured."""
    settings = context.settings
    if not settings.demo.enabled or settings.connectors.central.endpoints:
        return []
    port = settings.demo.central_port
    return [Launch(args=("--port", str(port)), serves=f"{LOCAL}:{port}")]
