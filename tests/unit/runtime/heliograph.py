"""A component that exists only in a test: its ``main`` and start plan, nothing else.

Why: adding a component should take its own module and one registry line; this is that
module (see ``test_adding_a_component``).
"""

from __future__ import annotations

from collections.abc import Sequence

from lienthong.runtime.registry import Launch, PlanContext

RAN: list[list[str]] = []  # what ``lienthong run heliograph ARGS`` handed to main


def main(argv: Sequence[str] | None = None) -> int:
    RAN.append(list(argv or ()))
    return 0


def plan(context: PlanContext) -> list[Launch]:
    """In the demo only, pointed at the fake portal when it runs (a demo dependency)."""
    if not context.settings.demo.enabled:
        return []
    mirror = context.url_of("fake-portal") or "none"
    return [Launch(args=("--mirror", mirror), env={"HELIOGRAPH_MODE": "demo"})]
