"""Central vertical agency adapter: handoffs to a ministry's own system, over request/response.

A central vertical agency (ngành dọc: thuế, công an, BHXH, ...) does not read the bus; it has
its own system with an HTTP API. For every ``HandoffSent`` addressed to an agency that has a
configured endpoint, the adapter sends the step to that system and turns the system's answers
back into bus events *on the central agency's behalf*:

- ``POST {base}/requests`` with a correlation id derived from the handoff (a repeat is the same
  request, so retries are safe), per-request timeout, retries with exponential back-off;
- the system acknowledges (→ ``HandoffAccepted``) and later answers with the step outcome
  (→ ``HandoffReturned``), either by calling ``POST /callbacks/{correlation_id}`` here or when
  the adapter polls ``GET {base}/requests/{correlation_id}``. Both events get ids derived from
  the correlation id, so a repeat is recognisable downstream;
- no delivery after all attempts, or no answer within ``answer_timeout_s``, is the explicit
  outcome ``no_answer``: one alert on ``monitoring-alerts`` and a log line, and *nothing* on
  ``dossier-events`` — the tracker then escalates the unaccepted handoff / raises the step
  overdue exactly as for any agency. A late answer is still applied.

State (correlation id → status, attempts, outcome) lives on the compacted ``central-requests``
topic and is reloaded at start, so a restarted adapter neither re-sends answered requests nor
forgets pending ones.

Modules: :mod:`.policy` (pure rules), :mod:`.client` (HTTP to the central systems) and this one
(Kafka side, callbacks, built on :mod:`lienthong.connectors.skeleton`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from structlog.stdlib import BoundLogger

from lienthong.config import Settings
from lienthong.connectors.backoff import doubling_delay as backoff_delay
from lienthong.connectors.central.client import Remote
from lienthong.connectors.central.policy import (
    ALERTS_TOPIC,
    ANSWERED,
    DOSSIER_EVENTS,
    PENDING,
    SENT,
    STATE_TOPIC,
    CentralRequest,
    answer_overdue,
    apply_remote,
    build_event,
    counters,
    mark_no_answer,
    no_answer_alert,
    request_for,
)
from lienthong.connectors.skeleton import (
    ConsumeLoop,
    KafkaThread,
    health_app,
    latest_by_key,
    open_consumer,
    per_record,
    read_topics,
    start_site,
    stop_on_signals,
)
from lienthong.logs import get_logger
from lienthong.runtime.metrics import CountersCollector, Metrics, install
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import Event

log = get_logger(__name__)


def request_log(req: CentralRequest) -> BoundLogger:
    """The logger of one central request: every line names it, its dossier and its agency."""
    return log.bind(
        correlation_id=req.correlation_id, dossier_id=req.dossier_id, agency=req.central_agency
    )


class CentralAdapter:
    """Consume handoffs, drive each request to an answer or ``no_answer``, serve callbacks."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        from lienthong.connectors.sdk import BusProducer

        self.settings = settings
        self.cfg = settings.connectors.central
        self.producer = producer or BusProducer(settings)
        self._owns_producer = producer is None
        self.states: dict[str, CentralRequest] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.kafka = KafkaThread("central-kafka")
        self._consumer: Any = None
        self._stop = asyncio.Event()
        self.posts = 0
        self.callbacks = 0
        self.rejected_answers = 0
        self.skipped = 0
        self.metrics = Metrics("central-adapter")
        self.metrics.add(CountersCollector("central-adapter", self._figures, gauges=("pending",)))
        self._remote: Remote | None = None
        self._runner: Any = None

    # state ----------------------------------------------------------------------------------

    def load_state(self, timeout_s: float = 10.0) -> int:
        """Read ``central-requests`` to its end (last value per key wins)."""
        records = read_topics(self.settings, [STATE_TOPIC], idle_timeout_s=timeout_s, strict=False)
        for key, value in latest_by_key(records[STATE_TOPIC]).items():
            try:
                self.states[key.decode()] = CentralRequest.from_json(value)
            except (ValueError, TypeError) as exc:
                log.error("central_state_unreadable", key=key.decode(), error=str(exc))
        log.info("central_state_loaded", **counters(self.states))
        return len(self.states)

    async def save(self, req: CentralRequest) -> None:
        from lienthong.connectors.sdk import wait_acked

        self.states[req.correlation_id] = req
        await wait_acked(self.producer.send_raw(STATE_TOPIC, req.correlation_id, req.to_json()))

    # events ---------------------------------------------------------------------------------

    async def _apply(self, cid: str, remote: dict[str, Any], via: str) -> bool:
        """Fold a remote state in and publish what became due; True if the state changed."""
        from lienthong.connectors.sdk import wait_acked

        async with self._locks.setdefault(cid, asyncio.Lock()):
            req = self.states[cid]
            try:
                new, due = apply_remote(req, remote)
            except ValueError as exc:
                self.rejected_answers += 1
                request_log(req).error("central_answer_rejected", error=str(exc), via=via)
                return False
            if req.no_answer and new.status == ANSWERED and req.status != ANSWERED:
                request_log(req).warning("central_late_answer", outcome=new.outcome)
            now = datetime.now(UTC)
            for kind in due:
                event = build_event(new, kind, now)
                await wait_acked(self.producer.send(event))
                new = replace(
                    new,
                    **({"accepted_published": True} if kind == "accepted" else {}),
                    **({"returned_published": True} if kind == "returned" else {}),
                )
                request_log(new).info(
                    f"central_handoff_{kind}",
                    event_id=str(event.envelope.event_id),
                    outcome=new.outcome if kind == "returned" else None,
                    via=via,
                )
            if new != req:
                await self.save(new)
                return True
            return False

    async def _declare_no_answer(self, cid: str, reason: str) -> None:
        from lienthong.connectors.sdk import wait_acked

        async with self._locks.setdefault(cid, asyncio.Lock()):
            req = self.states[cid]
            if req.no_answer or req.status == ANSWERED:
                return
            new = mark_no_answer(req, reason)
            alert = no_answer_alert(new, datetime.now(UTC))
            await wait_acked(
                self.producer.send_raw(
                    ALERTS_TOPIC, alert["alert_id"], json.dumps(alert, ensure_ascii=False).encode()
                )
            )
            await self.save(new)
        request_log(new).warning(
            "central_no_answer",
            handoff_id=new.handoff_id,
            attempts=new.attempts,
            reason=reason,
        )

    # driving one request ----------------------------------------------------------------------

    def callback_url(self, cid: str) -> str:
        base = self.cfg.callback_url or f"http://{self.cfg.host}:{self.cfg.port}"
        return f"{base.rstrip('/')}/callbacks/{cid}"

    async def _deliver(self, cid: str) -> bool:
        """POST until the central system took the request or attempts are spent."""
        assert self._remote is not None
        cfg = self.cfg
        while not self._stop.is_set():
            req = self.states[cid]
            base = cfg.endpoints[req.central_agency]
            if req.attempts >= cfg.attempts:
                await self._declare_no_answer(cid, f"not delivered after {req.attempts} attempts")
                return False
            try:
                self.posts += 1
                remote = await self._remote.post(base, req.payload(self.callback_url(cid)))
                error = None
            except Exception as exc:  # HTTP error status, network, timeout, bad JSON
                remote, error = None, exc
            req = replace(self.states[cid], attempts=self.states[cid].attempts + 1)
            if remote is not None:
                await self.save(replace(req, sent_at=req.sent_at or time.time(), status=SENT))
                request_log(req).info("central_request_sent", attempts=req.attempts)
                await self._apply(cid, remote, "response")
                return True
            await self.save(req)
            request_log(req).warning(
                "central_request_retry",
                attempt=req.attempts,
                error=str(error),
            )
            if req.attempts < cfg.attempts:
                await self._sleep(
                    cid, backoff_delay(req.attempts, cfg.base_delay_s, cfg.max_delay_s)
                )
        return False

    async def _sleep(self, cid: str, seconds: float) -> None:
        wake = self._wake.setdefault(cid, asyncio.Event())
        try:
            await asyncio.wait_for(wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        wake.clear()

    async def drive(self, cid: str) -> None:
        """Deliver, then wait for callbacks / poll until answered; declare no_answer once."""
        assert self._remote is not None
        try:
            if self.states[cid].status == PENDING:
                if not await self._deliver(cid):
                    return
            while not self._stop.is_set() and not self.states[cid].done:
                req = self.states[cid]
                if req.status == ANSWERED:  # answered but an event not yet published
                    await self._apply(
                        cid,
                        {
                            "status": "answered",
                            "outcome": req.outcome,
                            "note": req.note,
                            "answered_at": req.answered_at,
                            "acknowledged_at": req.acknowledged_at,
                        },
                        "state",
                    )
                    continue
                if answer_overdue(req, time.time(), self.cfg.answer_timeout_s):
                    await self._declare_no_answer(
                        cid, f"no answer within {self.cfg.answer_timeout_s:g} s"
                    )
                wait = self.cfg.poll_interval_s
                if not req.no_answer:
                    start = req.sent_at or req.created_at
                    wait = min(wait, max(0.05, start + self.cfg.answer_timeout_s - time.time()))
                await self._sleep(cid, wait)
                if self._stop.is_set() or self.states[cid].done:
                    break
                try:
                    remote = await self._remote.get(self.cfg.endpoints[req.central_agency], cid)
                except Exception as exc:  # a failed poll is retried next round
                    request_log(req).warning("central_poll_failed", error=str(exc))
                    continue
                if remote is not None:
                    await self._apply(cid, remote, "poll")
        except asyncio.CancelledError:
            raise
        except Exception:
            request = self.states.get(cid)
            if request is None:
                log.exception("central_request_failed", correlation_id=cid)
            else:
                request_log(request).exception("central_request_failed")

    def _start(self, cid: str) -> None:
        task = self._tasks.get(cid)
        if task is not None and not task.done():
            return
        req = self.states[cid]
        if req.done or req.central_agency not in self.cfg.endpoints:
            return
        if req.status == PENDING and req.no_answer:
            return  # never delivered and given up: the tracker's escalation has taken over
        self._tasks[cid] = asyncio.get_running_loop().create_task(self.drive(cid))

    # consuming dossier-events -----------------------------------------------------------------

    async def consume(self) -> None:
        """``dossier-events`` → a request per handoff to a configured central agency; each
        batch is committed after its new requests were saved on ``central-requests``."""
        self._consumer = await self.kafka.call(
            open_consumer, self.settings, self.cfg.group_id, [DOSSIER_EVENTS], wait_s=30.0
        )
        loop = ConsumeLoop(self.kafka, self._consumer, per_record(self.handle, self.skip))
        await loop.run(self._stop)

    async def skip(self, record: Any, error: DecodeError) -> None:
        """dossier-events is validated (and dead-lettered) by the tracker: only log here."""
        self.skipped += 1
        log.info(
            "central_skip_undecodable",
            offset=record.offset,
            error_class=error.error_class,
            skipped=self.skipped,
        )

    async def handle(self, event: Event, record: Any) -> None:
        req = request_for(event, self.cfg.endpoints, self.states, time.time())
        if req is None:
            return
        await self.save(req)
        request_log(req).info("central_handoff_seen", handoff_id=req.handoff_id)
        self._start(req.correlation_id)

    # HTTP: callbacks and health ---------------------------------------------------------------

    async def handle_callback(self, request: Any) -> Any:
        from aiohttp import web

        cid = request.match_info["cid"]
        if cid not in self.states:
            return web.json_response({"error": "unknown correlation id"}, status=404)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return web.json_response({"error": f"invalid JSON: {exc}"}, status=400)
        self.callbacks += 1
        req = self.states[cid]
        if req.status == PENDING:  # a callback proves delivery
            await self.save(replace(req, status=SENT, sent_at=req.sent_at or time.time()))
        before = self.rejected_answers
        changed = await self._apply(cid, body, "callback")
        if self.rejected_answers != before:
            return web.json_response({"error": "invalid status or outcome"}, status=422)
        wake = self._wake.get(cid)
        if wake is not None:
            wake.set()
        self._start(cid)
        return web.json_response({"applied": changed, "status": self.states[cid].status})

    def _figures(self) -> dict[str, Any]:
        return {
            **counters(self.states),
            "posts": self.posts,
            "callbacks": self.callbacks,
            "rejected_answers": self.rejected_answers,
        }

    def health(self) -> dict[str, Any]:
        return {"status": "ok", **self._figures(), "endpoints": sorted(self.cfg.endpoints)}

    async def start_http(self) -> None:
        app = health_app(self.health, self.metrics)
        app.router.add_post("/callbacks/{cid}", self.handle_callback)
        self._runner = await start_site(app, self.cfg.host, self.cfg.port)

    # lifetime ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        if stop is not None:
            self._stop = stop
        loop = asyncio.get_running_loop()
        await self.kafka.call(self.load_state)
        self._remote = Remote(self.cfg)
        await self.start_http()
        log.info(
            "central_adapter_started",
            port=self.cfg.port,
            endpoints=sorted(self.cfg.endpoints),
            **counters(self.states),
        )
        for cid in list(self.states):
            self._start(cid)
        consumer = loop.create_task(self.consume())
        try:
            stop_wait = loop.create_task(self._stop.wait())
            await asyncio.wait({consumer, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done() and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
        finally:
            self._stop.set()
            for task in [*self._tasks.values(), consumer]:
                task.cancel()
            await asyncio.gather(*self._tasks.values(), consumer, return_exceptions=True)
            await self._runner.cleanup()
            await self._remote.close()
            if self._consumer is not None:
                await self.kafka.call(self._consumer.close)
            self.kafka.shutdown()
            self.producer.flush()
            if self._owns_producer:
                self.producer.close()
            log.info("central_adapter_stopped", **counters(self.states))


def main(argv: list[str] | None = None) -> int:
    import argparse

    from lienthong.config import load_settings
    from lienthong.logs import configure_logging

    parser = argparse.ArgumentParser(description="central vertical agency adapter")
    parser.parse_args(argv)
    settings = load_settings()
    configure_logging("central", settings.log_level)
    if not settings.connectors.central.endpoints:
        log.warning("central_no_endpoints", hint="set connectors.central.endpoints")

    async def serve() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        adapter = CentralAdapter(settings)
        install(adapter.metrics)
        await adapter.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
