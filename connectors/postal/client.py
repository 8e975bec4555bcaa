"""HTTP side of the postal connector: the post's order API, with retries, and its scan history.

No Kafka here. Orders are idempotent at the post by ``order_id``, so an order re-posted after a
lost answer or a restart is the same order; that is what makes retrying safe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from lienthong.connectors.postal.policy import OrderRejected, classify_status, order_body
from lienthong.connectors.skeleton import Retry, retry
from lienthong.schemas.models import PostalOrderRequested


class PostalClient:
    """The post's API on one aiohttp session (bearer token when configured)."""

    def __init__(
        self,
        session: Any,
        url: str,
        *,
        token: str | None,
        base_delay_s: float,
        max_delay_s: float,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.token = token
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.stopping = stopping

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def place(
        self,
        event: PostalOrderRequested,
        on_retry: Callable[[int, str, float], Any] | None = None,
    ) -> dict[str, Any]:
        """POST the order until the post answers; 4xx (but auth/throttling) is final
        (:class:`OrderRejected`); 5xx, auth, throttling and network errors are retried."""
        import aiohttp

        body = order_body(event)

        async def attempt() -> dict[str, Any]:
            try:
                async with self.session.post(
                    f"{self.url}/orders", json=body, headers=self.headers()
                ) as resp:
                    text = await resp.text()
                    verdict = classify_status(resp.status)
                    if verdict == "ok":
                        return dict(json.loads(text))
                    if verdict == "reject":
                        raise OrderRejected(
                            f"postal service refused order {event.order_id}: "
                            f"{resp.status} {' '.join(text.split())[:200]}"
                        )
                    raise Retry(f"status {resp.status}")
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                raise Retry(f"{type(exc).__name__}: {exc}") from exc

        return await retry(
            attempt,
            base_s=self.base_delay_s,
            cap_s=self.max_delay_s,
            stopping=self.stopping,
            on_retry=on_retry,
        )

    async def get_json(self, path: str, **params: str) -> Any | None:
        """GET from the post; None on 404."""
        async with self.session.get(
            f"{self.url}{path}", params=params or None, headers=self.headers()
        ) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            return await resp.json()

    async def find_order(self, order_id: str) -> Any | None:
        """The post's record of an order placed before a restart (None: not placed yet)."""
        return await self.get_json("/orders", order_id=order_id)

    async def history(self, tracking_code: str) -> Any | None:
        """Every scan the post has for a tracking code."""
        return await self.get_json(f"/orders/{tracking_code}/events")
