"""How ``lienthong up`` starts the stream workers (the registry line ``worker``).

Light on purpose: the supervisor imports this to plan its children, never Faust.
"""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext, get


def plan(context: PlanContext) -> list[Launch]:
    """``worker.count`` workers, worker N on ``worker.web_port + N - 1``."""
    settings = context.settings
    first = get("worker").port(settings) or 0
    return [
        Launch(
            name=f"worker-{index + 1}",
            args=("--web-port", str(first + index)),
            port=first + index,
            # Pinned so a restarted worker keeps the clock state.json records.
            env={"LIENTHONG_STREAMS__CLOCK": settings.streams.clock},
        )
        for index in range(settings.worker.count)
    ]
