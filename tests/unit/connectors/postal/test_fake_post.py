"""The fake post over real HTTP: idempotent orders, scan history, signed webhooks, controls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import ClientSession, web

from lienthong.connectors.postal import parse_scan, verify_signature
from lienthong.runtime.probe import free_port
from lienthong.simulators.postal import SIGNATURE_HEADER, PostalService, make_app


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` (the fake's scans run on its own clock) until true or ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_orders_are_idempotent_scans_are_polled_and_webhooks_signed_or_dropped() -> None:
    received: list[tuple[dict, bool]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_signature("s3cret", body, request.headers.get(SIGNATURE_HEADER))
        received.append((json.loads(body), ok))
        return web.json_response({})

    async def scenario() -> None:
        hook_app = web.Application()
        hook_app.router.add_post("/hook", hook)
        hook_runner, hook_url = await _serve(hook_app)
        service = PostalService(
            time_scale=1e6,
            failure_rate=0.0,
            webhook_url=f"{hook_url}/hook",
            webhook_secret="s3cret",
            token="tok",
        )
        runner, url = await _serve(make_app(service))
        auth = {"Authorization": "Bearer tok"}
        order = {"order_id": "O-1", "kind": "delivery", "reference": "HS-1", "address": "x"}
        try:
            async with ClientSession() as s:
                async with s.post(f"{url}/orders", json=order) as r:
                    assert r.status == 401
                async with s.post(f"{url}/orders", json=order, headers=auth) as r:
                    assert r.status == 201
                    code = (await r.json())["tracking_code"]
                async with s.post(f"{url}/orders", json=order, headers=auth) as r:
                    assert r.status == 200 and (await r.json())["tracking_code"] == code
                async with s.get(f"{url}/orders", params={"order_id": "O-1"}, headers=auth) as r:
                    assert (await r.json())["tracking_code"] == code
                async with s.get(f"{url}/orders", params={"order_id": "nope"}, headers=auth) as r:
                    assert r.status == 404
                await until(lambda: service.orders[code]["status"] == "delivered_to_citizen")
                async with s.get(f"{url}/orders/{code}/events", headers=auth) as r:
                    history = (await r.json())["events"]
                assert [parse_scan(e).kind for e in history] == [
                    "result_dispatched",
                    "delivered_to_citizen",
                ]
                assert [(body["kind"], ok) for body, ok in received] == [
                    ("result_dispatched", True),
                    ("delivered_to_citizen", True),
                ]
                # Lost webhooks, stalled parcels and a busy post, switched on at run time.
                async with s.post(
                    f"{url}/control", json={"webhook_drop_rate": 1.0, "stall": True}
                ) as r:
                    assert (await r.json())["stall"] is True
                async with s.post(
                    f"{url}/orders", json={**order, "order_id": "O-2"}, headers=auth
                ) as r:
                    code2 = (await r.json())["tracking_code"]
                # A stalled parcel's run ends after its first scan (bưu gửi thất lạc); an order
                # that is not stalled would still be on its way to the citizen.
                await until(lambda: not service.tasks)
                assert service.orders[code2]["scans"] == ["result_dispatched"]
                assert service.counters["webhooks_dropped"] == 1 and len(received) == 2
                async with s.post(f"{url}/control", json={"error_rate": 1.0}) as r:
                    pass
                async with s.post(f"{url}/orders", json=order, headers=auth) as r:
                    assert r.status == 503
                async with s.get(f"{url}/stats") as r:
                    stats = await r.json()
                assert stats["orders_created"] == 2 and stats["orders_repeated"] == 1
        finally:
            await runner.cleanup()
            await hook_runner.cleanup()

    asyncio.run(scenario())
