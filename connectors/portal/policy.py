"""Retry policy of the portal connector: what to retry, how long to wait, how fast to send.

Pure functions and a small token bucket, kept apart from HTTP and Kafka so each decision can be
unit-tested with a fake clock. Why these rules: the national portal (Cổng DVC quốc gia) is
shared by 63 provinces and throttles callers; a province that retries in lock-step or ignores
``Retry-After`` makes an outage longer for everyone, hence jittered back-off and obedience to
the portal's own pacing.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from lienthong.connectors.backoff import doubling_delay


class Verdict(enum.Enum):
    """What to do after one HTTP attempt."""

    OK = "ok"
    RETRY = "retry"  # 5xx, 408, network error, timeout: back off and try again
    THROTTLED = "throttled"  # 429: wait as the portal says, not counted against the record
    REJECT = "reject"  # other 4xx: the portal will never accept this as sent
    AUTH = "auth"  # 401/403: our credentials are wrong; no record is at fault


def classify(status: int | None) -> Verdict:
    """Verdict for an HTTP status; ``None`` stands for a network error or timeout."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.OK
    if status == 429:
        return Verdict.THROTTLED
    if status in (401, 403):
        return Verdict.AUTH
    if status == 408 or status >= 500:
        return Verdict.RETRY
    return Verdict.REJECT


def backoff_delay(
    attempt: int,
    base_delay: float,
    max_delay: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): "full jitter" back-off.

    The ceiling doubles per attempt up to ``max_delay``; the delay is uniform in
    [ceiling/2, ceiling] so that many connectors restarting together spread out while each
    still waits long enough to let the portal recover.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = doubling_delay(attempt, base_delay, max_delay)
    return ceiling / 2 + rng() * ceiling / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None.

    A date in the past means "now" (0); an unparsable value is ignored (None) so the caller
    falls back to its own back-off instead of trusting garbage.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN check
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class TokenBucket:
    """Client-side rate limit: ``rate`` requests per second, bursts of up to ``burst``.

    Why client side: the portal's quota is per province; staying under it avoids 429s and the
    penalty waits they bring. Thread-safe; :meth:`reserve` returns how long to wait instead of
    sleeping, so asyncio callers can ``await asyncio.sleep`` on it.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; seconds the caller must wait before using it (0 if available)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate
