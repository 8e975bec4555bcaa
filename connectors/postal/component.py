"""How ``lienthong up`` starts the postal connector (registry line ``postal-connector``).

Light on purpose: the supervisor imports this to plan its children, never the connector loop.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """A configured postal API, or the demo's fake post (which calls our webhook).

    With the fake post and this run's demo keys, the connector checks the webhook signature
    with the same generated secret the fake signs with.
    """
    url = context.settings.connectors.postal.url
    env = {}
    fake = context.url_of("fake-postal")
    if url is None and fake is not None:
        url = fake
        if context.demo_secrets is not None:
            secret = context.demo_secrets.webhook_secret
            env["LIENTHONG_CONNECTORS__POSTAL__WEBHOOK_SECRET"] = secret
    return [] if url is None else [Launch(args=("--url", url), env=env)]
