"""Fake system of a central vertical agency (thuế, công an, ...) for the central adapter.

Why a fake with knobs: the adapter's interesting behaviour is what it does when the ministry's
system is slow, down or silent, so the fake can be told to answer late, return HTTP 500s for a
while, fail a share of requests at random, or never answer chosen correlation ids.

Protocol (the adapter's contract, docs/connectors/central.md):

- ``POST /requests`` JSON ``{"correlation_id", "callback_url"?, ...step data}`` → ``202`` with
  the request's state the first time, ``200`` with the same state on a repeat (idempotent by
  correlation id: a repeat never creates a second request).
- ``GET /requests/{correlation_id}`` → the state ``{"status": received|acknowledged|answered,
  "outcome", "note", "acknowledged_at", "answered_at"}``; ``404`` if unknown.
- Acknowledgement after ``ack_delay_s`` and the answer after ``answer_delay_s``; with a
  ``callback_url`` each is also POSTed there (``{"status": ..., ...}``), unless ``answer_via``
  is ``poll``.
- ``GET /_stats`` (test hook): creations, POSTs and polls (GETs) per correlation id;
  ``POST /_control`` changes knobs at run time (``down_for_s``, ``never_answer``, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from lienthong.logs import configure_logging, get_logger

log = get_logger(__name__)

OUTCOMES = ("completed", "rejected", "supplement_needed")


@dataclass
class Knobs:
    ack_delay_s: float = 0.2
    answer_delay_s: float = 0.5
    answer_via: str = "callback"  # callback | poll
    failure_rate: float = 0.0  # share of HTTP requests answered 500 at random
    down_until: float = 0.0  # monotonic instant until which every request gets 500
    never_answer: set[str] = field(default_factory=set)  # correlation ids left unanswered
    never_answer_rate: float = 0.0
    outcome: str = "completed"
    note: str | None = None


@dataclass
class Request:
    body: dict[str, Any]
    received: float
    status: str = "received"
    outcome: str | None = None
    note: str | None = None
    silent: bool = False
    acknowledged_at: str | None = None
    answered_at: str | None = None

    def state(self) -> dict[str, Any]:
        return {
            "correlation_id": self.body["correlation_id"],
            "status": self.status,
            "outcome": self.outcome,
            "note": self.note,
            "acknowledged_at": self.acknowledged_at,
            "answered_at": self.answered_at,
        }


class FakeCentral:
    def __init__(self, knobs: Knobs, seed: int = 7) -> None:
        self.knobs = knobs
        self.random = random.Random(seed)
        self.requests: dict[str, Request] = {}
        self.posts: dict[str, int] = {}
        self.polls: dict[str, int] = {}  # GET /requests/{cid} answered, per correlation id
        self.errors = 0
        self.callbacks_failed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: ClientSession | None = None

    def _failing(self) -> bool:
        if time.monotonic() < self.knobs.down_until:
            return True
        return self.knobs.failure_rate > 0 and self.random.random() < self.knobs.failure_rate

    @web.middleware
    async def faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(("/_", "/health")):  # test hooks and probes never fail
            return await handler(request)
        if self._failing():
            self.errors += 1
            if request.method == "POST" and request.path == "/requests":
                body = await request.json()
                cid = str(body.get("correlation_id"))
                self.posts[cid] = self.posts.get(cid, 0) + 1
            return web.json_response({"error": "internal error (injected)"}, status=500)
        return await handler(request)

    async def post_request(self, request: web.Request) -> web.Response:
        body = await request.json()
        cid = body.get("correlation_id")
        if not isinstance(cid, str) or not cid:
            return web.json_response({"error": "correlation_id is required"}, status=400)
        self.posts[cid] = self.posts.get(cid, 0) + 1
        known = self.requests.get(cid)
        if known is not None:  # idempotent repeat
            return web.json_response(known.state(), status=200)
        silent = cid in self.knobs.never_answer or (
            self.knobs.never_answer_rate > 0 and self.random.random() < self.knobs.never_answer_rate
        )
        entry = Request(body=body, received=time.monotonic(), silent=silent)
        self.requests[cid] = entry
        log.info("central_request_received", correlation_id=cid, silent=silent)
        if not silent:
            task = asyncio.get_running_loop().create_task(self._progress(entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(entry.state(), status=202)

    async def _progress(self, entry: Request) -> None:
        await asyncio.sleep(self.knobs.ack_delay_s)
        entry.status = "acknowledged"
        entry.acknowledged_at = datetime.now(UTC).isoformat()
        await self._callback(entry)
        await asyncio.sleep(max(0.0, self.knobs.answer_delay_s - self.knobs.ack_delay_s))
        entry.outcome = self.knobs.outcome
        entry.note = self.knobs.note
        entry.status = "answered"
        entry.answered_at = datetime.now(UTC).isoformat()
        await self._callback(entry)

    async def _callback(self, entry: Request) -> None:
        url = entry.body.get("callback_url")
        if not url or self.knobs.answer_via != "callback":
            return
        assert self._session is not None
        for attempt in range(3):
            try:
                async with self._session.post(url, json=entry.state()) as response:
                    if response.status < 500:
                        return
            except Exception as exc:  # network error or timeout: try again
                log.warning("central_callback_failed", url=url, error=str(exc), attempt=attempt)
            await asyncio.sleep(0.2 * 2**attempt)
        self.callbacks_failed += 1

    async def get_request(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        self.polls[cid] = self.polls.get(cid, 0) + 1
        entry = self.requests.get(cid)
        if entry is None:
            return web.json_response({"error": "unknown correlation id"}, status=404)
        return web.json_response(entry.state())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": len(self.requests),
                "created": dict.fromkeys(self.requests, 1),
                "posts": self.posts,
                "polls": self.polls,
                "errors": self.errors,
                "callbacks_failed": self.callbacks_failed,
            }
        )

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        knobs = self.knobs
        if "down_for_s" in body:
            knobs.down_until = time.monotonic() + float(body["down_for_s"])
        if "never_answer" in body:
            knobs.never_answer = set(body["never_answer"])
        for name in ("failure_rate", "never_answer_rate", "ack_delay_s", "answer_delay_s"):
            if name in body:
                setattr(knobs, name, float(body[name]))
        for name in ("answer_via", "outcome", "note"):
            if name in body:
                setattr(knobs, name, body[name])
        return web.json_response({"ok": True})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "requests": len(self.requests)})

    async def on_startup(self, app: web.Application) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=5))

    async def on_cleanup(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.faults])
        app.router.add_post("/requests", self.post_request)
        app.router.add_get("/requests/{cid}", self.get_request)
        app.router.add_get("/health", self.health)
        app.router.add_get("/_stats", self.stats)
        app.router.add_post("/_control", self.control)
        app.on_startup.append(self.on_startup)
        app.on_cleanup.append(self.on_cleanup)
        return app


async def serve(host: str, port: int, central: FakeCentral) -> None:
    runner = web.AppRunner(central.app())
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("fake_central_listening", host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake central vertical agency system")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ack-delay", type=float, default=0.2, help="seconds to acknowledge")
    parser.add_argument("--answer-delay", type=float, default=0.5, help="seconds to answer")
    parser.add_argument("--answer-via", choices=("callback", "poll"), default="callback")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="random HTTP 500 share")
    parser.add_argument("--down-for", type=float, default=0.0, help="HTTP 500s for S seconds")
    parser.add_argument("--never-answer", default="", help="comma-separated correlation ids")
    parser.add_argument("--never-answer-rate", type=float, default=0.0)
    parser.add_argument("--outcome", choices=OUTCOMES, default="completed")
    parser.add_argument("--note", default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    configure_logging("fake-central", "INFO")
    knobs = Knobs(
        ack_delay_s=args.ack_delay,
        answer_delay_s=args.answer_delay,
        answer_via=args.answer_via,
        failure_rate=args.failure_rate,
        down_until=time.monotonic() + args.down_for if args.down_for else 0.0,
        never_answer={c for c in args.never_answer.split(",") if c},
        never_answer_rate=args.never_answer_rate,
        outcome=args.outcome,
        note=args.note,
    )
    asyncio.run(serve(args.host, args.port, FakeCentral(knobs, args.seed)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
