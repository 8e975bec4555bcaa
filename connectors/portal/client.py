"""HTTP side of the portal connector: batches, bearer token, rate limit, retries, fallback.

One :class:`PortalClient` turns "deliver these items to this endpoint" into HTTP requests and
reports, per item, whether the portal acknowledged it or why it must be parked. It never
touches Kafka: the connector decides what to commit from the outcome.

Idempotency: every item carries its record's ``idempotency_key`` (the envelope event id, which
the tracker derives deterministically from the dossier record), and every request carries an
``Idempotency-Key`` header derived from the keys of the items in it, so a re-posted batch (after
a lost response, a timeout or a crash) is recognised by the portal and not counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lienthong.connectors.portal.policy import (
    TokenBucket,
    Verdict,
    backoff_delay,
    classify,
    parse_retry_after,
)
from lienthong.logs import get_logger

log = get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class PortalAuthError(Exception):
    """The portal refused our credentials (401/403): a configuration fault, not a record's."""


class Stopped(Exception):
    """The connector was asked to stop while waiting to retry; nothing is committed."""


@dataclass
class Item:
    """One record on its way to the portal."""

    path: str  # "/records" or "/stats"
    key: str  # idempotency key
    payload: dict[str, Any]
    source: Any = None  # the ConsumerRecord it came from (for parking)


@dataclass
class Parked:
    item: Item
    error_class: str  # PortalRejected | PortalRetryExhausted
    reason: str
    status: int | None
    attempts: int


@dataclass
class Outcome:
    delivered: list[Item] = field(default_factory=list)
    parked: list[Parked] = field(default_factory=list)


@dataclass
class Counters:
    """What ``GET /health`` shows an operator."""

    posted: int = 0  # items the portal acknowledged
    requests: int = 0
    items_sent: int = 0  # items in requests, each attempt
    retried: int = 0  # attempts repeated after 5xx/408/network/timeout
    throttled: int = 0  # 429 answers
    parked: int = 0
    dead_lettered: int = 0
    last_success_at: float | None = None  # epoch seconds
    last_error: str | None = None
    lag: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "posted": self.posted,
            "requests": self.requests,
            "items_sent": self.items_sent,
            "retried": self.retried,
            "throttled": self.throttled,
            "parked": self.parked,
            "dead_lettered": self.dead_lettered,
            "last_success_at": (
                None
                if self.last_success_at is None
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_success_at))
            ),
            "last_error": self.last_error,
            "lag": self.lag,
        }


def batch_key(items: Sequence[Item]) -> str:
    """``Idempotency-Key`` of a request: the same items always give the same key."""
    digest = hashlib.sha256("\n".join(i.key for i in items).encode()).hexdigest()
    return f"lt-{digest[:40]}"


@dataclass
class _Answer:
    status: int | None
    retry_after: float | None
    detail: str


@dataclass
class _BatchResult:
    verdict: Verdict  # OK, REJECT, or RETRY (= retry budget exhausted)
    status: int | None
    detail: str
    attempts: int


class PortalClient:
    """Posts item batches with the connector's retry rules (see :mod:`.policy`)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None = None,
        rate_per_s: float = 20.0,
        timeout_s: float = 10.0,
        max_attempts: int = 8,
        base_delay_s: float = 0.5,
        max_delay_s: float = 60.0,
        counters: Counters | None = None,
        stop: asyncio.Event | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.bucket = TokenBucket(rate_per_s)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.counters = counters or Counters()
        self.stop = stop or asyncio.Event()
        self.rng = rng

    async def _wait(self, seconds: float) -> None:
        """Sleep, but wake up at once when asked to stop (records stay uncommitted)."""
        if seconds <= 0:
            if self.stop.is_set():
                raise Stopped()
            return
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopped()

    async def _attempt(self, path: str, items: Sequence[Item]) -> _Answer:
        await self._wait(self.bucket.reserve())
        headers = {"Content-Type": "application/json", "Idempotency-Key": batch_key(items)}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = json.dumps([i.payload for i in items], ensure_ascii=False).encode()
        self.counters.requests += 1
        self.counters.items_sent += len(items)
        try:
            async with self.session.post(
                self.base_url + path, data=body, headers=headers, timeout=self.timeout
            ) as response:
                text = await response.text()
                return _Answer(
                    response.status,
                    parse_retry_after(response.headers.get("Retry-After")),
                    " ".join(text.split())[:300],
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _Answer(None, None, f"{type(exc).__name__}: {exc}".strip())

    async def post_batch(self, path: str, items: Sequence[Item]) -> _BatchResult:
        """One batch until acknowledged, rejected, or out of attempts.

        429 answers wait ``Retry-After`` (or the back-off when absent) and do not use up the
        record's attempts: throttling says nothing about the record.
        """
        attempts = 0
        throttles = 0
        while True:
            answer = await self._attempt(path, items)
            verdict = classify(answer.status)
            if verdict is Verdict.OK:
                self.counters.posted += len(items)
                self.counters.last_success_at = time.time()
                return _BatchResult(Verdict.OK, answer.status, answer.detail, attempts + 1)
            self.counters.last_error = f"{answer.status or 'network'}: {answer.detail}"
            if verdict is Verdict.AUTH:
                raise PortalAuthError(f"portal answered {answer.status}: {answer.detail}")
            if verdict is Verdict.REJECT:
                return _BatchResult(Verdict.REJECT, answer.status, answer.detail, attempts + 1)
            if verdict is Verdict.THROTTLED:
                throttles += 1
                self.counters.throttled += 1
                delay = answer.retry_after
                if delay is None:
                    delay = backoff_delay(
                        min(throttles, 30), self.base_delay_s, self.max_delay_s, self.rng
                    )
                log.warning("portal_throttled", path=path, items=len(items), wait_s=delay)
                await self._wait(delay)
                continue
            attempts += 1
            if attempts >= self.max_attempts:
                return _BatchResult(Verdict.RETRY, answer.status, answer.detail, attempts)
            self.counters.retried += 1
            delay = backoff_delay(attempts, self.base_delay_s, self.max_delay_s, self.rng)
            log.warning(
                "portal_retry",
                path=path,
                status=answer.status,
                detail=answer.detail,
                attempt=attempts,
                wait_s=round(delay, 3),
            )
            await self._wait(delay)

    async def deliver(self, path: str, items: Sequence[Item]) -> Outcome:
        """Deliver ``items``; a rejected batch is retried item by item so only the bad item
        is parked, and a batch that exhausted its retries is parked whole."""
        outcome = Outcome()
        if not items:
            return outcome
        result = await self.post_batch(path, items)
        if result.verdict is Verdict.OK:
            outcome.delivered.extend(items)
        elif result.verdict is Verdict.REJECT and len(items) > 1:
            log.warning("portal_batch_rejected", path=path, items=len(items), status=result.status)
            for item in items:
                single = await self.deliver(path, [item])
                outcome.delivered.extend(single.delivered)
                outcome.parked.extend(single.parked)
        else:
            rejected = result.verdict is Verdict.REJECT
            for item in items:
                outcome.parked.append(
                    Parked(
                        item=item,
                        error_class="PortalRejected" if rejected else "PortalRetryExhausted",
                        reason=(
                            f"portal rejected it with {result.status}: {result.detail}"
                            if rejected
                            else f"no acknowledgement after {result.attempts} attempts; "
                            f"last: {result.status or 'network error'} {result.detail}"
                        ),
                        status=result.status,
                        attempts=result.attempts,
                    )
                )
        return outcome
