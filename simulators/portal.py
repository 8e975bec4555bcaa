"""Fake national public service portal (Cổng Dịch vụ công quốc gia) for demos and tests.

Accepts dossier status records and statistics as the connector posts them, keeps the latest
record per MaHoSo (and every record in arrival order), and answers the queries a portal
operator would ask. Why a fake: the real DVCQG needs credentials and is not a test fixture.
``POST /records`` and ``POST /stats`` take one JSON object or a list; ``--fail-rate`` makes a
share of POSTs answer 503 so the connector's retry is exercised.

    python -m lienthong.simulators.portal --port 6080
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from aiohttp import web

from lienthong.logs import configure_logging, get_logger

log = get_logger(__name__)


class PortalState:
    def __init__(self, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.stats: dict[str, dict[str, Any]] = {}
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)


def _items(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(i, dict) for i in items):
        raise web.HTTPBadRequest(text="expected a JSON object or a list of objects")
    return items


def make_app(state: PortalState | None = None) -> web.Application:
    state = state or PortalState()
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def post_records(request: web.Request) -> web.Response:
        if state.rng.random() < state.fail_rate:
            raise web.HTTPServiceUnavailable(text="portal busy")
        items = _items(await request.json())
        for item in items:
            if not item.get("MaHoSo") or item.get("TrangThaiHoSo") is None:
                raise web.HTTPBadRequest(text="MaHoSo and TrangThaiHoSo are required")
            if item.get("KenhThucHien") not in (1, 2, 3):
                raise web.HTTPBadRequest(text="KenhThucHien must be 1, 2 or 3")
        for item in items:
            state.records[item["MaHoSo"]] = item
            state.history.append(item)
        return web.json_response({"accepted": len(items)})

    async def get_records(request: web.Request) -> web.Response:
        code = request.query.get("MaHoSo")
        if code:
            if code not in state.records:
                raise web.HTTPNotFound(text=f"no dossier {code}")
            history = [r for r in state.history if r["MaHoSo"] == code]
            return web.json_response({"record": state.records[code], "history": history})
        return web.json_response({"count": len(state.records), "received": len(state.history)})

    async def post_stats(request: web.Request) -> web.Response:
        if state.rng.random() < state.fail_rate:
            raise web.HTTPServiceUnavailable(text="portal busy")
        items = _items(await request.json())
        for item in items:
            key = item.get("key")
            if not key:
                raise web.HTTPBadRequest(text="each statistic needs a key")
            state.stats[key] = item
        return web.json_response({"accepted": len(items)})

    async def get_stats(request: web.Request) -> web.Response:
        agency = request.query.get("agency")
        period = request.query.get("period")
        out = {
            k: v
            for k, v in state.stats.items()
            if (not agency or k.split("|")[0] == agency)
            and (not period or k.split("|")[3] == period)
        }
        return web.json_response({"stats": out})

    app.router.add_get("/health", health)
    app.router.add_post("/records", post_records)
    app.router.add_get("/records", get_records)
    app.router.add_post("/stats", post_stats)
    app.router.add_get("/stats", get_stats)
    app["state"] = state
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake national portal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6080)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    configure_logging("fake-portal")
    log.info("fake_portal_listening", host=args.host, port=args.port)
    web.run_app(make_app(PortalState(args.fail_rate)), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
