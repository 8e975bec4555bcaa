"""PortalClient against the fake portal (in-process aiohttp server): retries, Retry-After,
fallback item by item, parking decisions, idempotency, bearer token."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lienthong.connectors.portal.client import (
    Item,
    PortalAuthError,
    PortalClient,
    batch_key,
)
from lienthong.simulators.portal import PortalState, make_app


class RecordingClient(PortalClient):
    """Waits are recorded, not slept, so tests are fast and can check the delays."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waits.append(seconds)


def item(n: int) -> Item:
    code = f"H10.2601.{n:07d}"
    payload = {
        "MaHoSo": code,
        "MaTTHC": "1.004227",
        "TrangThaiHoSo": 2,
        "KenhThucHien": 1,
        "idempotency_key": f"key-{n}",
    }
    return Item("/records", f"key-{n}", payload)


def with_portal(
    test: Callable[[PortalState, Callable[..., RecordingClient]], Awaitable[None]],
    state: PortalState | None = None,
) -> None:
    state = state or PortalState()

    async def main() -> None:
        runner = web.AppRunner(make_app(state))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:

            def client(**kwargs: Any) -> RecordingClient:
                options = {"base_delay_s": 0.1, "max_delay_s": 1.0, "rate_per_s": 1000.0}
                options.update(kwargs)
                return RecordingClient(session, f"http://127.0.0.1:{port}", **options)

            try:
                await test(state, client)
            finally:
                await runner.cleanup()

    asyncio.run(main())


def test_server_errors_are_retried_with_backoff_then_delivered() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.faults.append({"status": 500, "count": 3})
        c = client(max_attempts=5)
        outcome = await c.deliver("/records", [item(1), item(2)])
        assert [i.key for i in outcome.delivered] == ["key-1", "key-2"]
        assert outcome.parked == []
        assert c.counters.retried == 3 and c.counters.posted == 2
        assert len(c.waits) == 3
        assert 0.05 <= c.waits[0] <= 0.1 and 0.1 <= c.waits[1] <= 0.2

    with_portal(check)


def test_429_waits_retry_after_and_does_not_use_up_attempts() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.faults.append({"status": 429, "retry_after": 7, "count": 4})
        state.faults.append({"status": 429, "retry_after": 30, "http_date": True, "count": 1})
        c = client(max_attempts=2)
        outcome = await c.deliver("/records", [item(1)])
        assert len(outcome.delivered) == 1 and not outcome.parked
        assert c.waits[:4] == [7.0] * 4
        assert 28.0 <= c.waits[4] <= 30.0  # HTTP-date form
        assert c.counters.throttled == 5 and c.counters.retried == 0

    with_portal(check)


def test_rejected_batch_falls_back_to_items_and_parks_only_the_bad_one() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.rejects["H10.2601.0000002"] = 422
        c = client()
        outcome = await c.deliver("/records", [item(1), item(2), item(3)])
        assert [i.key for i in outcome.delivered] == ["key-1", "key-3"]
        [parked] = outcome.parked
        assert parked.item.key == "key-2"
        assert parked.error_class == "PortalRejected" and parked.status == 422
        assert c.waits == []  # a 4xx is never retried
        assert sorted(state.records) == ["H10.2601.0000001", "H10.2601.0000003"]

    with_portal(check)


def test_retry_budget_exhausted_parks_the_batch() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.faults.append({"status": 503, "count": 10})
        c = client(max_attempts=3)
        outcome = await c.deliver("/records", [item(1), item(2)])
        assert outcome.delivered == []
        assert [p.error_class for p in outcome.parked] == ["PortalRetryExhausted"] * 2
        assert all(p.attempts == 3 and p.status == 503 for p in outcome.parked)
        assert c.counters.requests == 3

    with_portal(check)


def test_408_and_timeouts_are_retried() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.faults.append({"status": 408, "count": 1})
        state.faults.append({"delay_s": 1.0, "count": 1})
        c = client(timeout_s=0.3, max_attempts=4)
        outcome = await c.deliver("/records", [item(1)])
        assert len(outcome.delivered) == 1
        assert c.counters.retried == 2
        assert "TimeoutError" in (c.counters.last_error or "")

    with_portal(check)


def test_lost_answer_is_absorbed_by_idempotency() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        state.faults.append({"status": 502, "after_store": True, "count": 1})
        c = client()
        outcome = await c.deliver("/records", [item(1), item(2)])
        assert len(outcome.delivered) == 2
        assert state.received == {"key-1": 1, "key-2": 1}  # 2nd POST replayed by header key
        assert dict(state.stored) == {"key-1": 1, "key-2": 1}
        assert len(state.history) == 2
        # The same items in a different batch: acknowledged, not stored again.
        again = await c.deliver("/records", [item(2), item(1)])
        assert len(again.delivered) == 2
        assert dict(state.stored) == {"key-1": 1, "key-2": 1}
        assert len(state.history) == 2

    with_portal(check)


def test_bearer_token_required_and_sent() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        with pytest.raises(PortalAuthError):
            await client().deliver("/records", [item(1)])
        outcome = await client(token="s3cret").deliver("/records", [item(1)])
        assert len(outcome.delivered) == 1

    with_portal(check, PortalState(token="s3cret"))


def test_fake_portal_rate_limit_answers_429() -> None:
    async def check(state: PortalState, client: Callable[..., RecordingClient]) -> None:
        c = client()
        for n in range(4):
            await c.deliver("/records", [item(n)])
        assert c.counters.throttled >= 1
        assert c.counters.posted == 4

    with_portal(check, PortalState(rate_limit=2))


def test_batch_key_is_deterministic_and_order_sensitive() -> None:
    assert batch_key([item(1), item(2)]) == batch_key([item(1), item(2)])
    assert batch_key([item(1), item(2)]) != batch_key([item(2), item(1)])
    assert batch_key([item(1)]) != batch_key([item(1), item(2)])
