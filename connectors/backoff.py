"""Retry delays shared by the connectors that call outside systems (portal, post, central).

One formula so that every connector backs off the same way: the delay doubles per attempt from
``base`` up to ``cap``. The portal connector adds jitter on top (many connectors restarting
together must spread out); the others use the plain ceiling.
"""

from __future__ import annotations


def doubling_delay(attempt: int, base: float, cap: float) -> float:
    """Delay after failed attempt ``attempt`` (counting from 1): base, 2·base, 4·base … ≤ cap."""
    return min(cap, base * 2 ** max(0, attempt - 1))
