"""Fake national public service portal (Cổng Dịch vụ công quốc gia) for demos and tests.

Accepts dossier status records and statistics as the connector posts them, keeps the latest
record per MaHoSo (and every stored record in arrival order), and answers the queries a portal
operator would ask. Why a fake: the real DVCQG needs credentials and is not a test fixture.

Behaviour the connector must cope with, on purpose:

- ``POST /records`` and ``POST /stats`` take one JSON object or a list; the batch is validated
  as a whole (one bad item → 400/422 for the batch, nothing stored).
- Idempotency: an item whose ``idempotency_key`` was already stored is acknowledged but not
  stored again; a request whose ``Idempotency-Key`` header was already answered gets the same
  answer again (422 if the same header comes with different items).
- ``--token``: POSTs and exports need ``Authorization: Bearer <token>`` (401 otherwise).
- ``--rate-limit N``: more than N requests/s answer 429 with ``Retry-After``.
- ``--fail-rate``: that share of POSTs answers 503.
- Test control (no token): ``POST /_control/faults`` queues faults, e.g.
  ``{"status": 500, "count": 20}``, ``{"status": 429, "retry_after": 1, "count": 5}``
  (``"http_date": true`` sends Retry-After as a date), ``{"delay_s": 3, "count": 1}`` (slow
  answer → client timeout), ``"after_store": true`` (store, then fail: a lost answer),
  ``{"hold_s": 8}`` (store, then answer late: a window to kill the client in);
  ``POST /_control/reject {"MaHoSo": ..., "status": 422}`` rejects every batch holding that
  dossier; ``DELETE``/``PATCH /_control/records/{MaHoSo}`` delete or alter what is held;
  ``GET /_control/keys`` returns, per idempotency key, how often it was stored and received,
  and how many requests were answered from the ``Idempotency-Key`` cache.
- Exports for reconciliation: ``GET /records/export`` and ``GET /stats/export`` page the latest
  record per MaHoSo / statistic key (``?after=<cursor>&limit=<n>``, answer has ``next``).

    python -m lienthong.simulators.portal --port 6080 [--token T] [--rate-limit 50]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from email.utils import formatdate
from typing import Any

from aiohttp import web

from lienthong.logs import configure_logging, get_logger

log = get_logger(__name__)

CONTROL_PREFIX = "/_control/"


class PortalState:
    def __init__(
        self,
        fail_rate: float = 0.0,
        seed: int = 0,
        *,
        token: str | None = None,
        rate_limit: float = 0.0,
    ) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.stats: dict[str, dict[str, Any]] = {}
        self.stats_history: list[dict[str, Any]] = []
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.token = token
        self.rate_limit = rate_limit
        self._window: list[float] = []
        self.faults: list[dict[str, Any]] = []
        self.rejects: dict[str, int] = {}  # MaHoSo -> status
        self.stored = Counter[str]()  # idempotency key -> times stored (must stay 1)
        self.received = Counter[str]()  # idempotency key -> times posted
        self.answers: dict[str, tuple[list[str], int, dict[str, Any]]] = {}
        self.replayed = 0  # requests answered from the Idempotency-Key cache

    def over_rate(self) -> bool:
        if self.rate_limit <= 0:
            return False
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 1.0]
        if len(self._window) >= self.rate_limit:
            return True
        self._window.append(now)
        return False

    def next_fault(self) -> dict[str, Any] | None:
        while self.faults:
            fault = self.faults[0]
            if fault.get("count", 1) <= 0:
                self.faults.pop(0)
                continue
            fault["count"] = fault.get("count", 1) - 1
            return fault
        return None


STATE: web.AppKey[PortalState] = web.AppKey("state", PortalState)


def _items(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(i, dict) for i in items):
        raise web.HTTPBadRequest(text="expected a JSON object or a list of objects")
    return items


def _fault_response(fault: dict[str, Any]) -> web.Response:
    status = int(fault.get("status", 500))
    headers = {}
    if status == 429:
        wait = float(fault.get("retry_after", 1))
        if fault.get("http_date"):
            headers["Retry-After"] = formatdate(time.time() + wait, usegmt=True)
        else:
            headers["Retry-After"] = str(int(wait))
    return web.json_response({"error": "injected fault"}, status=status, headers=headers)


def make_app(state: PortalState | None = None) -> web.Application:
    state = state or PortalState()

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/health" or request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        if state.token is not None:
            if request.headers.get("Authorization") != f"Bearer {state.token}":
                raise web.HTTPUnauthorized(text="bearer token required")
        if state.over_rate():
            return web.json_response(
                {"error": "rate limit"}, status=429, headers={"Retry-After": "1"}
            )
        return await handler(request)

    app = web.Application(middlewares=[guard])

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def validate_records(items: list[dict[str, Any]]) -> None:
        for item in items:
            if not item.get("MaHoSo") or item.get("TrangThaiHoSo") is None:
                raise web.HTTPBadRequest(text="MaHoSo and TrangThaiHoSo are required")
            if item.get("KenhThucHien") not in (1, 2, 3):
                raise web.HTTPBadRequest(text="KenhThucHien must be 1, 2 or 3")

    def validate_stats(items: list[dict[str, Any]]) -> None:
        for item in items:
            if not item.get("key"):
                raise web.HTTPBadRequest(text="each statistic needs a key")

    async def accept(request: web.Request, kind: str) -> web.Response:
        if state.rng.random() < state.fail_rate:
            raise web.HTTPServiceUnavailable(text="portal busy")
        fault = state.next_fault()
        if fault and fault.get("delay_s"):
            await asyncio.sleep(float(fault["delay_s"]))
        if fault and fault.get("status") and not fault.get("after_store"):
            return _fault_response(fault)
        items = _items(await request.json())
        keys = [str(i.get("idempotency_key") or "") for i in items]
        header_key = request.headers.get("Idempotency-Key")
        if header_key and header_key in state.answers:
            seen_keys, status, body = state.answers[header_key]
            if seen_keys != keys:
                raise web.HTTPUnprocessableEntity(text="Idempotency-Key reused with other items")
            state.replayed += 1
            return web.json_response({**body, "replayed": True}, status=status)
        if kind == "records":
            validate_records(items)
            for item in items:
                refused = state.rejects.get(item["MaHoSo"])
                if refused:
                    return web.json_response(
                        {"error": f"dossier {item['MaHoSo']} refused"}, status=refused
                    )
        else:
            validate_stats(items)
        stored = duplicates = 0
        for key, item in zip(keys, items, strict=True):
            if key:
                state.received[key] += 1
                if state.stored[key]:
                    duplicates += 1
                    continue
                state.stored[key] += 1
            stored += 1
            if kind == "records":
                state.records[item["MaHoSo"]] = item
                state.history.append(item)
            else:
                state.stats[item["key"]] = item
                state.stats_history.append(item)
        body = {"accepted": len(items), "stored": stored, "duplicates": duplicates}
        if header_key:
            state.answers[header_key] = (keys, 200, body)
        if fault and fault.get("hold_s"):
            await asyncio.sleep(float(fault["hold_s"]))  # stored, answer late (crash window)
        if fault and fault.get("status"):
            return _fault_response(fault)  # stored, but the answer is "lost"
        return web.json_response(body)

    async def post_records(request: web.Request) -> web.Response:
        return await accept(request, "records")

    async def post_stats(request: web.Request) -> web.Response:
        return await accept(request, "stats")

    async def get_records(request: web.Request) -> web.Response:
        code = request.query.get("MaHoSo")
        if code:
            if code not in state.records:
                raise web.HTTPNotFound(text=f"no dossier {code}")
            history = [r for r in state.history if r["MaHoSo"] == code]
            return web.json_response({"record": state.records[code], "history": history})
        return web.json_response({"count": len(state.records), "received": len(state.history)})

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

    def export(source: dict[str, dict[str, Any]], request: web.Request) -> web.Response:
        after = request.query.get("after", "")
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "500"))))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer") from None
        keys = sorted(k for k in source if k > after)
        page = keys[:limit]
        more = len(keys) > limit
        return web.json_response(
            {"items": [source[k] for k in page], "next": page[-1] if more else None}
        )

    async def export_records(request: web.Request) -> web.Response:
        return export(state.records, request)

    async def export_stats(request: web.Request) -> web.Response:
        return export(state.stats, request)

    async def control_faults(request: web.Request) -> web.Response:
        body = await request.json()
        faults = body if isinstance(body, list) else [body]
        state.faults.extend(dict(f) for f in faults)
        return web.json_response({"queued": len(state.faults)})

    async def control_clear(_: web.Request) -> web.Response:
        state.faults.clear()
        state.rejects.clear()
        return web.json_response({"queued": 0})

    async def control_reject(request: web.Request) -> web.Response:
        body = await request.json()
        state.rejects[str(body["MaHoSo"])] = int(body.get("status", 422))
        return web.json_response({"rejecting": sorted(state.rejects)})

    async def control_delete(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if state.records.pop(code, None) is None:
            raise web.HTTPNotFound(text=f"no dossier {code}")
        return web.json_response({"deleted": code})

    async def control_alter(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if code not in state.records:
            raise web.HTTPNotFound(text=f"no dossier {code}")
        state.records[code] = {**state.records[code], **(await request.json())}
        return web.json_response({"record": state.records[code]})

    async def control_keys(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "stored": dict(state.stored),
                "received": dict(state.received),
                "replayed": state.replayed,
            }
        )

    app.router.add_get("/health", health)
    app.router.add_post("/records", post_records)
    app.router.add_get("/records", get_records)
    app.router.add_get("/records/export", export_records)
    app.router.add_post("/stats", post_stats)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/stats/export", export_stats)
    app.router.add_post("/_control/faults", control_faults)
    app.router.add_delete("/_control/faults", control_clear)
    app.router.add_post("/_control/reject", control_reject)
    app.router.add_delete("/_control/records/{code}", control_delete)
    app.router.add_patch("/_control/records/{code}", control_alter)
    app.router.add_get("/_control/keys", control_keys)
    app[STATE] = state
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake national portal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6080)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="requests/s, 0 = none")
    args = parser.parse_args(argv)
    configure_logging("fake-portal")
    log.info("fake_portal_listening", host=args.host, port=args.port)
    state = PortalState(args.fail_rate, token=args.token, rate_limit=args.rate_limit)
    # Short shutdown: a held request (test fault) must not delay SIGTERM.
    web.run_app(make_app(state), host=args.host, port=args.port, print=None, shutdown_timeout=1.0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
