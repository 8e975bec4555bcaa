"""Wait for a condition, never for a time window (issue 17).

A loaded CI machine stretches every window; a condition polled against a generous deadline holds
on a fast laptop and on a busy 2-core runner alike, and a test that times out says what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    tail: Callable[[], str] | None = None,
    interval: float = 0.2,
) -> Any:
    """Poll ``check`` until it returns something truthy and return that value.

    An ``OSError`` from ``check`` (a service not listening yet, a connection reset) counts as
    "not yet". On timeout the assertion names ``what``, the last value or error, and ``tail()``
    (a process's log, say) so the failure can be read without re-running.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = f"\n{tail()}" if tail is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}{detail}")
