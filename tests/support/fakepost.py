"""The fake post (``lienthong.simulators.postal``) served for a test on its own event loop in a
background thread, so a synchronous test can run it beside the bus's subprocesses."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from aiohttp import web

from lienthong.runtime.probe import free_port
from lienthong.simulators.postal import PostalService, make_app

TIME_SCALE = 100_000.0  # 26 h of delivery ≈ 0.9 s


class FakePost:
    """``with FakePost(webhook_url, secret) as post:`` — a real HTTP server on a free port."""

    def __init__(
        self, webhook_url: str, secret: str, *, time_scale: float = TIME_SCALE, **options: Any
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = PostalService(
            time_scale=time_scale, webhook_url=webhook_url, webhook_secret=secret, **options
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.event_polls: dict[str, int] = {}  # GET /orders/{code}/events per tracking code

    def __enter__(self) -> FakePost:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    @web.middleware
    async def _count_polls(self, request: web.Request, handler: Any) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 3 and parts[::2] == ["orders", "events"]:
            self.event_polls[parts[1]] = self.event_polls.get(parts[1], 0) + 1
        return await handler(request)

    async def _start(self) -> None:
        app = make_app(self.service)
        app.middlewares.append(self._count_polls)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __exit__(self, *_: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Read the order book on the server's loop (no torn reads)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def control(self, **changes: Any) -> None:
        request = urllib.request.Request(
            f"{self.url}/control",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def orders(self) -> list[dict[str, Any]]:
        """A copy of the whole order book."""
        return self.call(lambda: json.loads(json.dumps(list(self.service.orders.values()))))

    def order_by_id(self, order_id: str) -> dict[str, Any] | None:
        def find() -> dict[str, Any] | None:
            code = self.service.by_order_id.get(order_id)
            return json.loads(json.dumps(self.service.orders[code])) if code else None

        return self.call(find)

    def polls_of(self, order_id: str) -> int:
        """How often the connector has polled this order's scans: poll rounds, countable."""
        code = self.call(lambda: self.service.by_order_id.get(order_id))
        return self.call(lambda: self.event_polls.get(code, 0)) if code else 0

    def post_attempts(self) -> int:
        c = self.call(lambda: dict(self.service.counters))
        return c["orders_created"] + c["orders_repeated"] + c["orders_refused_503"]
