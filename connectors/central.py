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
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from lienthong.config import CentralAdapterSettings, Settings
from lienthong.connectors.backoff import doubling_delay as backoff_delay
from lienthong.logs import get_logger
from lienthong.runtime.metrics import CountersCollector, Metrics, install
from lienthong.schemas.models import (
    Event,
    HandoffAccepted,
    HandoffReturned,
    HandoffSent,
    StepOutcome,
)

log = get_logger(__name__)

STATE_TOPIC = "central-requests"
ALERTS_TOPIC = "monitoring-alerts"
DOSSIER_EVENTS = "dossier-events"
CENTRAL_NS = uuid.UUID("6c3f3f1e-8a0b-5b7e-9c55-63656e747261")

# Request status, in the only order it may advance (a late or repeated answer never moves back).
PENDING = "pending"  # known, not yet delivered
SENT = "sent"  # delivered (the central system answered POST /requests)
ACKNOWLEDGED = "acknowledged"
ANSWERED = "answered"
_RANK = {PENDING: 0, SENT: 1, ACKNOWLEDGED: 2, ANSWERED: 3}
_REMOTE_RANK = {"received": 1, "acknowledged": 2, "answered": 3}


# --- pure decision logic ------------------------------------------------------------------------


def correlation_id(dossier_id: str, handoff_id: str, to_agency: str) -> str:
    """Deterministic: the same handoff always maps to the same request at the central system."""
    return str(uuid.uuid5(CENTRAL_NS, f"{dossier_id}|{handoff_id}|{to_agency}"))


def event_id_for(cid: str, kind: str) -> uuid.UUID:
    return uuid.uuid5(CENTRAL_NS, f"{cid}|{kind}")


@dataclass(frozen=True)
class CentralRequest:
    """One request to a central system; the value kept on ``central-requests``."""

    correlation_id: str
    dossier_id: str
    handoff_id: str
    central_agency: str
    from_agency: str
    step: int
    step_due_at: str
    handoff_event_id: str
    trace_id: str
    created_at: float  # wall clock (epoch s) the adapter first saw the handoff
    status: str = PENDING
    attempts: int = 0
    sent_at: float | None = None
    outcome: str | None = None  # completed | rejected | supplement_needed | no_answer
    note: str | None = None
    acknowledged_at: str | None = None
    answered_at: str | None = None
    accepted_published: bool = False
    returned_published: bool = False
    no_answer: bool = False
    no_answer_reason: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CentralRequest:
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def done(self) -> bool:
        """Nothing left to do: answered and both events on the bus."""
        return self.status == ANSWERED and self.returned_published

    def payload(self, callback_url: str | None) -> dict[str, Any]:
        """Body of ``POST /requests``: the step the central agency has to perform."""
        body: dict[str, Any] = {
            "correlation_id": self.correlation_id,
            "dossier_id": self.dossier_id,
            "handoff_id": self.handoff_id,
            "step": self.step,
            "from_agency": self.from_agency,
            "to_agency": self.central_agency,
            "step_due_at": self.step_due_at,
        }
        if callback_url:
            body["callback_url"] = callback_url
        return body


def request_for(
    event: Event, endpoints: dict[str, str], known: dict[str, CentralRequest], now: float
) -> CentralRequest | None:
    """A new request for a HandoffSent to a configured central agency; None if not ours or
    already known (a re-read handoff after a restart must not create a second request)."""
    if not isinstance(event, HandoffSent) or event.to_agency not in endpoints:
        return None
    dossier = event.envelope.dossier_id or ""
    cid = correlation_id(dossier, event.handoff_id, event.to_agency)
    if cid in known:
        return None
    return CentralRequest(
        correlation_id=cid,
        dossier_id=dossier,
        handoff_id=event.handoff_id,
        central_agency=event.to_agency,
        from_agency=event.from_agency,
        step=event.step,
        step_due_at=event.step_due_at.isoformat(),
        handoff_event_id=str(event.envelope.event_id),
        trace_id=event.envelope.trace_id,
        created_at=now,
    )


def apply_remote(req: CentralRequest, remote: dict[str, Any]) -> tuple[CentralRequest, list[str]]:
    """Fold the central system's view of the request into ours.

    Returns the new state and the events now due, in order (``accepted``, ``returned``). The
    status only advances; an answer implies the acknowledgement (some systems skip it). An
    answer with an unknown outcome raises ValueError (the caller reports it; nothing invented).
    """
    status = str(remote.get("status", ""))
    rank = _REMOTE_RANK.get(status)
    if rank is None:
        raise ValueError(f"status: {status!r} is not received|acknowledged|answered")
    changes: dict[str, Any] = {}
    if rank >= 2 and _RANK[req.status] < 2:
        changes["status"] = ACKNOWLEDGED
        changes["acknowledged_at"] = remote.get("acknowledged_at") or remote.get("answered_at")
    if rank == 3 and req.status != ANSWERED:
        outcome = remote.get("outcome")
        if outcome not in {o.value for o in StepOutcome}:
            raise ValueError(f"outcome: {outcome!r} is not one of {[o.value for o in StepOutcome]}")
        changes.update(
            status=ANSWERED,
            outcome=outcome,
            note=remote.get("note"),
            answered_at=remote.get("answered_at"),
        )
    if rank >= 1 and req.status == PENDING and "status" not in changes:
        changes["status"] = SENT
    new = replace(req, **changes) if changes else req
    due: list[str] = []
    if _RANK[new.status] >= 2 and not new.accepted_published:
        due.append("accepted")
    if new.status == ANSWERED and not new.returned_published:
        due.append("returned")
    return new, due


def answer_overdue(req: CentralRequest, now: float, answer_timeout_s: float) -> bool:
    """No result within the window (counted from the first delivery, or from first sight if
    never delivered), and not yet declared."""
    if req.no_answer or req.status == ANSWERED:
        return False
    start = req.sent_at if req.sent_at is not None else req.created_at
    return now - start >= answer_timeout_s


def mark_no_answer(req: CentralRequest, reason: str) -> CentralRequest:
    return replace(req, no_answer=True, no_answer_reason=reason, outcome=req.outcome or "no_answer")


def no_answer_alert(req: CentralRequest, now: datetime) -> dict[str, Any]:
    """Alert record on monitoring-alerts (same shape family as streams.monitor's)."""
    return {
        "alert_type": "central_no_answer",
        "alert_id": f"{STATE_TOPIC}:{req.correlation_id}:no_answer",
        "raised_at": now.isoformat(),
        "dossier_id": req.dossier_id,
        "handoff_id": req.handoff_id,
        "step": req.step,
        "central_agency": req.central_agency,
        "from_agency": req.from_agency,
        "correlation_id": req.correlation_id,
        "attempts": req.attempts,
        "reason": req.no_answer_reason,
        "consumer": "connectors.central",
    }


def build_event(req: CentralRequest, kind: str, now: datetime) -> Event:
    """HandoffAccepted / HandoffReturned produced on the central agency's behalf."""

    def at(value: str | None) -> datetime:
        if value:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        return now

    common: dict[str, Any] = {
        "event_id": event_id_for(req.correlation_id, kind),
        "dossier_id": req.dossier_id,
        "producer_agency": req.central_agency,
        "trace_id": req.trace_id,
        "causation_id": uuid.UUID(req.handoff_event_id),
        "handoff_id": req.handoff_id,
        "from_agency": req.from_agency,
        "to_agency": req.central_agency,
        "step": req.step,
    }
    if kind == "accepted":
        return HandoffAccepted.create(occurred_at=at(req.acknowledged_at), **common)
    return HandoffReturned.create(
        occurred_at=at(req.answered_at), outcome=req.outcome, note=req.note, **common
    )


def counters(states: dict[str, CentralRequest]) -> dict[str, int]:
    """Health figures, derived from the persisted state so they survive a restart."""
    values = list(states.values())
    return {
        "requests": len(values),
        "sent": sum(r.sent_at is not None for r in values),
        "acknowledged": sum(_RANK[r.status] >= 2 for r in values),
        "answered": sum(r.status == ANSWERED for r in values),
        "no_answer": sum(r.no_answer for r in values),
        "pending": sum(r.status != ANSWERED for r in values),
    }


# --- runtime ----------------------------------------------------------------------------------


class Remote:
    """HTTP client of the central systems (aiohttp)."""

    def __init__(self, cfg: CentralAdapterSettings) -> None:
        from aiohttp import ClientSession, ClientTimeout

        self.cfg = cfg
        self.session = ClientSession(timeout=ClientTimeout(total=cfg.timeout_s))

    async def post(self, base: str, body: dict[str, Any]) -> dict[str, Any]:
        """One delivery attempt; raises on network errors, timeouts and non-2xx."""
        async with self.session.post(
            f"{base}/requests", json=body, headers={"Idempotency-Key": body["correlation_id"]}
        ) as response:
            if response.status >= 300:
                raise RemoteError(response.status, await response.text())
            return dict(await response.json())

    async def get(self, base: str, cid: str) -> dict[str, Any] | None:
        async with self.session.get(f"{base}/requests/{cid}") as response:
            if response.status == 404:
                return None
            if response.status >= 300:
                raise RemoteError(response.status, await response.text())
            return dict(await response.json())

    async def close(self) -> None:
        await self.session.close()


class RemoteError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:200]}")
        self.status = status


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
        self._kafka = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-kafka")
        self._consumer: Any = None
        self._stop = asyncio.Event()
        self.posts = 0
        self.callbacks = 0
        self.rejected_answers = 0
        self.metrics = Metrics("central-adapter")
        self.metrics.add(CountersCollector("central-adapter", self._figures, gauges=("pending",)))
        self._remote: Remote | None = None
        self._runner: Any = None

    # state ----------------------------------------------------------------------------------

    def load_state(self, timeout_s: float = 10.0) -> int:
        """Read ``central-requests`` to its end (last value per key wins)."""
        from kafka import KafkaConsumer, TopicPartition

        from lienthong.connectors.kafka import kafka_python_config

        topic = self.settings.topic(STATE_TOPIC)
        consumer = KafkaConsumer(**kafka_python_config(self.settings), enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=500, max_records=5000)
                if not batch:
                    # end offsets are a lower bound on some brokers: stop after a quiet poll
                    if all(consumer.position(tp) >= ends[tp] for tp in tps):
                        break
                    continue
                for records in batch.values():
                    for record in records:
                        key = record.key.decode()
                        if record.value is None:
                            self.states.pop(key, None)
                            continue
                        try:
                            self.states[key] = CentralRequest.from_json(record.value)
                        except (ValueError, TypeError) as exc:
                            log.error("central_state_unreadable", key=key, error=str(exc))
        finally:
            consumer.close()
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
                log.error(
                    "central_answer_rejected",
                    correlation_id=cid,
                    dossier_id=req.dossier_id,
                    agency=req.central_agency,
                    error=str(exc),
                    via=via,
                )
                return False
            if req.no_answer and new.status == ANSWERED and req.status != ANSWERED:
                log.warning(
                    "central_late_answer",
                    correlation_id=cid,
                    dossier_id=req.dossier_id,
                    agency=req.central_agency,
                    outcome=new.outcome,
                )
            now = datetime.now(UTC)
            for kind in due:
                event = build_event(new, kind, now)
                await wait_acked(self.producer.send(event))
                new = replace(
                    new,
                    **({"accepted_published": True} if kind == "accepted" else {}),
                    **({"returned_published": True} if kind == "returned" else {}),
                )
                log.info(
                    f"central_handoff_{kind}",
                    correlation_id=cid,
                    dossier_id=new.dossier_id,
                    event_id=str(event.envelope.event_id),
                    agency=new.central_agency,
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
        log.warning(
            "central_no_answer",
            correlation_id=cid,
            dossier_id=new.dossier_id,
            agency=new.central_agency,
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
                log.info(
                    "central_request_sent",
                    correlation_id=cid,
                    dossier_id=req.dossier_id,
                    agency=req.central_agency,
                    attempts=req.attempts,
                )
                await self._apply(cid, remote, "response")
                return True
            await self.save(req)
            log.warning(
                "central_request_retry",
                correlation_id=cid,
                dossier_id=req.dossier_id,
                agency=req.central_agency,
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
                    log.warning("central_poll_failed", correlation_id=cid, error=str(exc))
                    continue
                if remote is not None:
                    await self._apply(cid, remote, "poll")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("central_request_failed", correlation_id=cid)

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

    def _open_consumer(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from lienthong.connectors.kafka import kafka_python_config, resume_from_committed

        consumer = KafkaConsumer(
            **kafka_python_config(self.settings),
            group_id=self.cfg.group_id,
            enable_auto_commit=False,
        )
        topic = self.settings.topic(DOSSIER_EVENTS)
        parts: set[int] | None = None
        deadline = time.monotonic() + 30.0
        while not parts and time.monotonic() < deadline:  # metadata may lag at start
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.5)
        if not parts:
            raise RuntimeError(f"topic {topic} not found")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        resume_from_committed(consumer, tps)
        self._consumer = consumer
        log.info("central_consuming", topic=topic, partitions=len(tps))

    def _poll(self) -> list[Any]:
        batch = self._consumer.poll(timeout_ms=500, max_records=500)
        return [record for records in batch.values() for record in records]

    async def consume(self) -> None:
        from lienthong.schemas import decode_or_reason
        from lienthong.schemas.errors import DecodeError

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._kafka, self._open_consumer)
        skipped = 0
        while not self._stop.is_set():
            records = await loop.run_in_executor(self._kafka, self._poll)
            if not records:
                continue
            for record in records:
                event = decode_or_reason(record.value)
                if isinstance(event, DecodeError):
                    # dossier-events is validated (and dead-lettered) by the tracker
                    skipped += 1
                    log.info(
                        "central_skip_undecodable",
                        offset=record.offset,
                        error_class=event.error_class,
                        skipped=skipped,
                    )
                    continue
                req = request_for(event, self.cfg.endpoints, self.states, time.time())
                if req is None:
                    continue
                await self.save(req)
                log.info(
                    "central_handoff_seen",
                    correlation_id=req.correlation_id,
                    dossier_id=req.dossier_id,
                    agency=req.central_agency,
                    handoff_id=req.handoff_id,
                )
                self._start(req.correlation_id)
            await loop.run_in_executor(self._kafka, self._consumer.commit)

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

    async def handle_health(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(
            {"status": "ok", **self._figures(), "endpoints": sorted(self.cfg.endpoints)}
        )

    async def start_http(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/callbacks/{cid}", self.handle_callback)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/metrics", self.metrics.aiohttp_handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.host, self.cfg.port).start()

    # lifetime ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        if stop is not None:
            self._stop = stop
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._kafka, self.load_state)
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
                await loop.run_in_executor(self._kafka, self._consumer.close)
            self._kafka.shutdown(wait=True)
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
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        adapter = CentralAdapter(settings)
        install(adapter.metrics)
        await adapter.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
