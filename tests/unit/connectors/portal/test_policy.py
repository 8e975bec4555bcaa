"""Retry verdicts, jittered back-off, Retry-After parsing and the token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from lienthong.connectors.portal.policy import (
    TokenBucket,
    Verdict,
    backoff_delay,
    classify,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.OK),
        (202, Verdict.OK),
        (None, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.THROTTLED),
        (400, Verdict.REJECT),
        (404, Verdict.REJECT),
        (409, Verdict.REJECT),
        (422, Verdict.REJECT),
        (401, Verdict.AUTH),
        (403, Verdict.AUTH),
    ],
)
def test_classify(status, verdict) -> None:
    assert classify(status) is verdict


def test_backoff_doubles_within_jitter_bounds_and_caps() -> None:
    low = [backoff_delay(a, 0.5, 10.0, rng=lambda: 0.0) for a in range(1, 8)]
    high = [backoff_delay(a, 0.5, 10.0, rng=lambda: 1.0) for a in range(1, 8)]
    assert low == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_has_jitter() -> None:
    import random

    rng = random.Random(1)
    delays = {backoff_delay(4, 0.5, 60.0, rng=rng.random) for _ in range(50)}
    assert len(delays) > 40
    assert all(2.0 <= d <= 4.0 for d in delays)


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, 0.5, 10.0)


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 5, 2, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("Mon, 05 Jan 2026 02:01:00 GMT", now=now) == 60.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "Mon, 99 Foo 2026"])
def test_retry_after_garbage_is_ignored(value) -> None:
    assert parse_retry_after(value) is None


def test_token_bucket_allows_burst_then_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=4.0, burst=2, clock=lambda: now[0])
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.25)
    assert bucket.reserve() == pytest.approx(0.5)
    now[0] = 10.0  # refilled, but never above the burst
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.25)
