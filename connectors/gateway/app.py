"""The ingest gateway: department systems POST dossier events as JSON; 202 once Kafka has them.

``POST /v1/events/{event_type}`` — body: the event's own fields plus the envelope parts
``dossier_id``, ``occurred_at`` and optionally ``event_id``, ``trace_id``, ``causation_id``
(and ``producer_agency``, which must then be the authenticated agency). Checks in order:

=====  ==================================================================================
401    no or wrong credential (``WWW-Authenticate: Bearer``), or an unknown client cert
429    the agency's token bucket is empty (``Retry-After``)
404    unknown event type
403    the agency's role may not publish this kind (bus-only kinds: nobody may)
415    content type is not JSON
413    body larger than ``max_body_bytes`` (Content-Length, and capped while streaming)
400    body is not JSON (or not UTF-8)
403    body names another ``producer_agency``, or a handoff names another acting agency
409    ``Idempotency-Key`` reused with a different body (same body: the original 202 again,
       header ``Idempotency-Replayed: true``, nothing published)
422    the pydantic model or the bus policy (agency registry, future skew) refuses the event
503    the broker did not acknowledge: nothing was accepted, the client retries
202    ``{"event_id", "topic", "partition", "offset"}`` after the broker acknowledged
=====  ==================================================================================

``GET /openapi.json`` serves the spec generated from the models, ``GET /health`` counters.
Every request logs exactly one line (agency, event_type, event_id, dossier_id, status,
latency_ms). Run: ``python -m lienthong.connectors.gateway``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

import structlog
from aiohttp import web
from pydantic import ValidationError

from lienthong.config import Settings
from lienthong.connectors.gateway import problems
from lienthong.connectors.gateway.auth import Authenticator, Client, presented_key
from lienthong.connectors.gateway.idempotency import (
    IdempotencyStore,
    Remembered,
    encode_value,
    request_digest,
    scoped,
    valid_key,
)
from lienthong.connectors.gateway.openapi import accepted_event_types, build_spec
from lienthong.connectors.gateway.ratelimit import TokenBuckets
from lienthong.domain.agencies import AgencyRegistry, load_agencies
from lienthong.domain.roles import check_publish
from lienthong.logs import get_logger
from lienthong.runtime.metrics import Metrics
from lienthong.schemas.errors import FutureEvent, UnknownAgency
from lienthong.schemas.models import MODELS_BY_EVENT_TYPE, Event
from lienthong.schemas.validate import Validator

log = get_logger("lienthong.connectors.gateway")

# Body keys that go into the envelope rather than the event's own fields.
ENVELOPE_PARTS = ("dossier_id", "occurred_at", "event_id", "trace_id", "causation_id")
# event_id derived from agency|Idempotency-Key when the body gives none: a retry that lost
# its remembered answer still carries the same event id, so consumers deduplicate it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-8f8e-5d9b-9a1e-676174657761")
JSON_TYPES = ("application/json",)
LOG_KEY = web.RequestKey("log", dict)


def access_logger(stream: TextIO) -> Any:
    """The one-line-per-request log: structlog straight to the stream, same JSON as
    :mod:`lienthong.logs` (timestamp, level, component, logger, event + fields).

    Why not through the stdlib handler like the other lines: at a few thousand requests/s
    the LogRecord + ProcessorFormatter path cost as much CPU as handling the request.
    """
    return structlog.wrap_logger(
        structlog.WriteLogger(stream),
        processors=[
            _add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        context_class=dict,
        component="gateway",
    )


class CoalescingStream:
    """Access-log lines written to ``stream`` in one write per loop tick, not one per request.

    Why: a write + flush per request is two syscalls on the gateway's hot path. Lines are
    collected and written ``delay`` seconds after the first one (also when the buffer is large
    and at shutdown via :meth:`drain`), so a crash can lose at most that much of the access
    log — never an event, which is in Kafka before its 202.
    """

    def __init__(self, stream: TextIO, delay: float = 0.05, limit: int = 1 << 16) -> None:
        self.stream = stream
        self.delay = delay
        self.limit = limit
        self._lines: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        if not self._lines:
            try:
                asyncio.get_running_loop().call_later(self.delay, self.drain)
            except RuntimeError:  # no loop (tests, shutdown): write through
                self.stream.write(text)
                self.stream.flush()
                return len(text)
        self._lines.append(text)
        self._size += len(text)
        if self._size >= self.limit:
            self.drain()
        return len(text)

    def flush(self) -> None:
        """structlog flushes after every line; the real flush happens in :meth:`drain`."""

    def drain(self) -> None:
        if not self._lines:
            return
        text, self._lines, self._size = "".join(self._lines), [], 0
        self.stream.write(text)
        self.stream.flush()


def _add_logger_name(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict["logger"] = "lienthong.connectors.gateway.access"
    return event_dict


_ACCESS_LEVEL = logging.getLogger("lienthong.connectors.gateway.access")


class Publisher(Protocol):
    """Where accepted events go; the Kafka one is :class:`KafkaPublisher`."""

    async def publish(self, event: Event) -> dict[str, Any]:
        """Send and wait for the broker's ack; ``{"topic", "partition", "offset"}``."""
        ...

    async def remember(self, key: str, value: bytes) -> None:
        """Persist an idempotency record (compacted topic)."""
        ...


class AckBridge:
    """Deliver kafka-python acks (completed on its I/O thread) to the event loop in batches.

    Why not one ``call_soon_threadsafe`` per record: each wakes the loop through its self-pipe
    (a syscall and a GIL hand-over per record); at a few thousand records/s on one core that
    dominates. Here the I/O thread queues completions and wakes the loop once per batch.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import collections
        import threading

        self.loop = loop
        self._pending: collections.deque[tuple[asyncio.Future[Any], Any, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def watch(self, kafka_future: Any) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = self.loop.create_future()
        kafka_future.add_callback(self._acked, waiter)
        kafka_future.add_errback(self._failed, waiter)
        return waiter

    def _acked(self, waiter: asyncio.Future[Any], metadata: Any) -> None:
        self._push(waiter, metadata, False)

    def _failed(self, waiter: asyncio.Future[Any], exc: BaseException) -> None:
        self._push(waiter, exc, True)

    def _push(self, waiter: asyncio.Future[Any], value: Any, failed: Any) -> None:
        self._pending.append((waiter, value, failed))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False
        pending = self._pending
        while pending:
            waiter, value, failed = pending.popleft()
            if waiter.done():
                continue
            if failed:
                waiter.set_exception(RuntimeError(f"broker did not acknowledge: {value}"))
            else:
                waiter.set_result(value)


# Idempotency records arriving within this window share one journal record on Kafka.
JOURNAL_WINDOW_S = 0.002


class KafkaPublisher:
    """:class:`~lienthong.connectors.sdk.producer.BusProducer` behind the gateway."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        from lienthong.connectors.sdk.producer import BusProducer

        # Never block the event loop for long: metadata is warmed at start (see warm_up).
        overrides.setdefault("max_block_ms", 2_000)
        overrides.setdefault("delivery_timeout_ms", 15_000)
        self.producer = BusProducer(settings, **overrides)
        self._bridge: AckBridge | None = None
        self._journal: list[tuple[str, bytes, asyncio.Future[None]]] = []

    def warm_up(self, topics: list[str]) -> None:
        for name in topics:
            self.producer.partitions_for(name)

    def _watch(self, kafka_future: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._bridge is None or self._bridge.loop is not loop:
            self._bridge = AckBridge(loop)
        return self._bridge.watch(kafka_future)

    async def publish(self, event: Event) -> dict[str, Any]:
        md = await self._watch(self.producer.send(event))
        return {"topic": md.topic, "partition": md.partition, "offset": md.offset}

    async def remember(self, key: str, value: bytes) -> None:
        """Journal the record; resolved when the batch holding it is acknowledged.

        Why batches: each Kafka send costs the event loop a wake-up of the producer's I/O
        thread, and one idempotency record per request doubled the gateway's sends. Records
        that arrive within one loop turn go out as one journal record (``JOURNAL_WINDOW_S``).
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self._journal:
            loop.call_later(JOURNAL_WINDOW_S, self._flush_journal)
        self._journal.append((key, value, done))
        await done

    def _flush_journal(self) -> None:
        from lienthong.connectors.gateway.idempotency import TOPIC, encode_journal

        batch, self._journal = self._journal, []
        if not batch:
            return
        waiters = [done for _, _, done in batch]
        try:
            value = encode_journal([(key, value) for key, value, _ in batch])
            acked = self._watch(self.producer.send_raw(TOPIC, batch[0][0], value))
        except Exception as exc:  # every waiter learns the failure
            for done in waiters:
                if not done.done():
                    done.set_exception(exc)
            return

        def settle(result: asyncio.Future[Any]) -> None:
            exc = result.exception()
            for done in waiters:
                if done.done():
                    continue
                if exc is None:
                    done.set_result(None)
                else:
                    done.set_exception(exc)

        acked.add_done_callback(settle)

    def close(self, timeout: float = 10.0) -> None:
        self.producer.flush(timeout)
        self.producer.close(timeout)


@dataclass
class Stats:
    accepted: int = 0
    replayed: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    started_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "replayed": self.replayed,
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "uptime_s": round(time.time() - self.started_at, 1),
        }


class _Refused(Exception):
    """Stop handling with this response (a problem)."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def _body_pointer_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors on the assembled event → errors located in the request body."""
    out = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] == "envelope":
            loc = loc[1:]
        out.append({"loc": loc, "type": err.get("type"), "msg": err.get("msg")})
    return out


class Gateway:
    """Request handling; holds the settings-derived state (clients, buckets, store, stats)."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        store: IdempotencyStore,
        authenticator: Authenticator,
        *,
        registry: AgencyRegistry | None = None,
        clock: Callable[[], datetime] | None = None,
        access_log: TextIO | None = None,
    ) -> None:
        gw = settings.connectors.gateway
        self.settings = settings
        self.max_body = gw.max_body_bytes
        self.publisher = publisher
        self.store = store
        self.auth = authenticator
        self.buckets = TokenBuckets(gw.rate_per_s, gw.burst)
        self.registry = registry or load_agencies()
        self.validator = Validator(
            None,  # type: ignore[arg-type]  # check_policy needs no codec
            is_known_agency=self.registry.is_known,
            **({"clock": clock} if clock else {}),
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.mtls = gw.tls_client_cafile is not None
        self.stats = Stats()
        self.metrics = Metrics("gateway")
        self.access_stream = CoalescingStream(access_log or sys.stderr)
        self.access = access_logger(self.access_stream)
        self.accepted_types = accepted_event_types()
        self.spec_bytes = json.dumps(build_spec(), ensure_ascii=False, indent=2).encode()

    # -- authentication -----------------------------------------------------------------------
    def authenticate(self, request: web.Request) -> Client:
        cert_client: Client | None = None
        if self.mtls:
            ssl_object = (
                request.transport.get_extra_info("ssl_object") if request.transport else None
            )
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            cert_client = self.auth.by_cert(der) if der else None
            if cert_client is None:
                raise _Refused(self._unauthenticated("client certificate is not registered"))
        key = presented_key(request.headers)
        if key is None:
            if cert_client is not None:
                return cert_client
            raise _Refused(self._unauthenticated("send Authorization: Bearer <api key>", False))
        key_client = self.auth.by_api_key(key) if key else None
        if key_client is None:
            raise _Refused(self._unauthenticated("the API key is not valid"))
        if cert_client is not None and cert_client.agency != key_client.agency:
            raise _Refused(self._unauthenticated("certificate and API key name different agencies"))
        return key_client

    @staticmethod
    def _unauthenticated(detail: str, wrong: bool = True) -> web.Response:
        challenge = 'Bearer realm="lienthong-gateway"'
        if wrong:
            challenge += ', error="invalid_token"'
        return problems.problem("unauthenticated", detail, headers={"WWW-Authenticate": challenge})

    # -- the endpoint ---------------------------------------------------------------------------
    async def post_event(self, request: web.Request) -> web.Response:
        info: dict[str, Any] = request[LOG_KEY]
        event_type = request.match_info["event_type"]
        info["event_type"] = event_type
        try:
            client = self.authenticate(request)
            info["agency"] = client.agency
            wait = self.buckets.take(client.agency)
            if wait is not None:
                return problems.problem(
                    "rate-limited",
                    f"agency {client.agency} is over {self.buckets.rate:g} requests/s",
                    headers={"Retry-After": TokenBuckets.retry_after_header(wait)},
                )
            cls = MODELS_BY_EVENT_TYPE.get(event_type)
            if cls is None:
                return problems.problem(
                    "unknown-event-type",
                    f"no event type {event_type!r}; see /openapi.json",
                    event_type=event_type,
                )
            if event_type not in client.allowed:
                denial = check_publish(client.roles, client.agency, event_type)
                reason = denial.reason if denial else f"{event_type} is not allowed"
                return problems.problem("forbidden-event", reason, event_type=event_type)
            raw = await self._read_json_body(request)
            return await self._accept(request, client, cls, raw, info)
        except _Refused as refused:
            return refused.response

    async def _read_json_body(self, request: web.Request) -> Any:
        ctype = request.content_type
        if ctype not in JSON_TYPES and not (
            ctype.startswith("application/") and ctype.endswith("+json")
        ):
            raise _Refused(
                problems.problem(
                    "unsupported-media-type",
                    f"got {ctype or 'no content type'}; send application/json",
                )
            )
        charset = request.charset
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            raise _Refused(problems.problem("unsupported-media-type", "charset must be utf-8"))
        length = request.content_length
        if length is not None and length > self.max_body:
            raise _Refused(self._too_large())
        try:
            data = await request.read()  # capped at client_max_size while streaming
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(self._too_large()) from None
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refused(problems.problem("bad-json", str(exc)[:300])) from None
        except RecursionError:
            raise _Refused(problems.problem("bad-json", "JSON nested too deeply")) from None

    def _too_large(self) -> web.Response:
        return problems.problem(
            "too-large", f"the limit is {self.max_body} bytes", max_body_bytes=self.max_body
        )

    async def _accept(
        self,
        request: web.Request,
        client: Client,
        cls: type[Event],
        raw: Any,
        info: dict[str, Any],
    ) -> web.Response:
        event_type = cls.EVENT_TYPE
        if not isinstance(raw, dict):
            return problems.problem(
                "validation",
                "the body must be a JSON object",
                errors=[{"pointer": "", "rule": "object_type", "detail": "expected an object"}],
            )
        if isinstance(raw.get("dossier_id"), str):
            info["dossier_id"] = raw["dossier_id"]
        named = raw.get("producer_agency")
        if named is not None and named != client.agency:
            return problems.problem(
                "forbidden-producer",
                f"authenticated as {client.agency}; the body names producer_agency {named!r}",
                event_type=event_type,
            )
        denial = check_publish(client.roles, client.agency, event_type, raw)
        if denial is not None:
            return problems.problem("forbidden-event", denial.reason, event_type=event_type)

        key = request.headers.get("Idempotency-Key")
        if key is not None:
            if not valid_key(key):
                return problems.problem(
                    "validation",
                    "Idempotency-Key must be 1-200 printable characters",
                    errors=[{"pointer": "", "rule": "idempotency_key", "detail": "invalid header"}],
                )
        elif raw.get("event_id") is not None:
            key = f"event_id:{raw['event_id']}"
        if key is None:
            return await self._validate_and_publish(cls, client, raw, info, None)

        skey = scoped(client.agency, key)
        digest = request_digest(event_type, raw)
        remembered = await self.store.claim(skey)
        if remembered is not None:
            return self._replay(remembered, digest, info)
        entry: Remembered | None = None
        try:
            response = await self._validate_and_publish(cls, client, raw, info, key)
            if response.status == 202:
                entry = self.store.new_entry(digest, info["answer"])
                try:
                    await self.publisher.remember(skey, encode_value(entry))
                except Exception as exc:  # the event itself is durable: still 202
                    log.error("idempotency record not persisted", key=skey, error=str(exc))
            return response
        finally:
            self.store.release(skey, entry)

    def _replay(self, remembered: Remembered, digest: str, info: dict[str, Any]) -> web.Response:
        if not _same_digest(remembered.digest, digest):
            return problems.problem(
                "idempotency-conflict",
                "this Idempotency-Key (or event_id) was used for a different request",
                event_id=remembered.answer.get("event_id"),
            )
        info["event_id"] = remembered.answer.get("event_id")
        info["replayed"] = True
        self.stats.replayed += 1
        return web.json_response(
            remembered.answer, status=202, headers={"Idempotency-Replayed": "true"}
        )

    def build_event(
        self, cls: type[Event], client: Client, raw: dict[str, Any], key: str | None
    ) -> Event:
        fields = {
            k: v for k, v in raw.items() if k not in ENVELOPE_PARTS and k != "producer_agency"
        }
        event_id = raw.get("event_id")
        if event_id is None:
            event_id = (
                uuid.uuid5(EVENT_ID_NAMESPACE, f"{client.agency}|{key}") if key else uuid.uuid4()
            )
        trace_id = raw.get("trace_id")
        if trace_id is None:
            trace_id = event_id.hex if isinstance(event_id, uuid.UUID) else str(event_id)
        envelope = {
            "event_id": event_id,
            "event_type": cls.EVENT_TYPE,
            "schema_version": cls.SCHEMA_VERSION,
            "dossier_id": raw.get("dossier_id"),
            "producer_agency": client.agency,
            "occurred_at": raw.get("occurred_at"),
            "recorded_at": self.clock(),
            "trace_id": trace_id,
            "causation_id": raw.get("causation_id"),
        }
        if "envelope" in fields:
            raise _Refused(
                problems.problem(
                    "validation",
                    "send the envelope parts at the top level, not an 'envelope' object",
                    errors=[
                        {
                            "pointer": "/envelope",
                            "rule": "extra_forbidden",
                            "detail": "Extra inputs are not permitted",
                        }
                    ],
                )
            )
        return cls.model_validate({"envelope": envelope, **fields})

    async def _validate_and_publish(
        self,
        cls: type[Event],
        client: Client,
        raw: dict[str, Any],
        info: dict[str, Any],
        key: str | None,
    ) -> web.Response:
        errors: list[dict[str, Any]] = []
        if cls.DOSSIER_SCOPED and raw.get("dossier_id") is None:
            errors.append({"loc": ("dossier_id",), "type": "missing", "msg": "Field required"})
        if "occurred_at" not in raw:
            errors.append({"loc": ("occurred_at",), "type": "missing", "msg": "Field required"})
        event: Event | None = None
        try:
            event = self.build_event(cls, client, raw, key)
        except ValidationError as exc:
            seen = {tuple(e["loc"]) for e in errors}
            errors.extend(e for e in _body_pointer_errors(exc) if e["loc"] and e["loc"] not in seen)
            if not errors:
                errors = _body_pointer_errors(exc)
        except _Refused as refused:
            return refused.response
        if event is not None and not errors:
            reason = self.validator.check_policy(event)
            if isinstance(reason, UnknownAgency):
                loc = tuple(reason.field.removeprefix("envelope.").split("."))
                errors.append({"loc": loc, "type": "unknown_agency", "msg": reason.reason})
            elif isinstance(reason, FutureEvent):
                errors.append(
                    {"loc": ("occurred_at",), "type": "future_event", "msg": reason.reason}
                )
            elif reason is not None:
                errors.append({"loc": (), "type": reason.error_class, "msg": reason.reason})
        if errors or event is None:
            return problems.problem(
                "validation",
                f"{len(errors)} error(s) in the {cls.EVENT_TYPE} event",
                event_type=cls.EVENT_TYPE,
                errors=problems.validation_errors(errors),
            )
        info["event_id"] = str(event.envelope.event_id)
        try:
            where = await self.publisher.publish(event)
        except Exception as exc:
            log.error("broker did not acknowledge", event_id=info["event_id"], error=str(exc))
            return problems.problem(
                "unavailable",
                "the broker did not acknowledge the event; retry later with the same "
                "Idempotency-Key",
                headers={"Retry-After": "5"},
            )
        self.stats.accepted += 1
        info["answer"] = answer = {"event_id": info["event_id"], **where}
        return web.json_response(answer, status=202)

    # -- other routes ------------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self.spec_bytes, content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "idempotency_keys": len(self.store), **self.stats.as_json()}
        )


def _same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GATEWAY_KEY = web.AppKey("gateway", Gateway)


def _middleware(gateway: Gateway) -> Any:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        info: dict[str, Any] = {}
        request[LOG_KEY] = info
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = problems.problem("not-found", f"no route {request.path}")
        except web.HTTPMethodNotAllowed as exc:
            response = problems.problem(
                "method-not-allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": ",".join(sorted(exc.allowed_methods))},
            )
        except web.HTTPException as exc:  # aiohttp's own refusals, as problems
            response = web.Response(
                status=exc.status,
                body=json.dumps(
                    {"type": "about:blank", "title": exc.reason, "status": exc.status}
                ).encode(),
                content_type=problems.PROBLEM_JSON,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error", path=request.path)
            response = problems.problem("internal", "unexpected error; nothing was accepted")
        status = response.status
        if request.path.startswith("/v1/"):
            gateway.metrics.gateway_request(
                status, info.get("agency"), time.perf_counter() - started
            )
            if status >= 400:
                gateway.stats.rejected[status] += 1
        if not _ACCESS_LEVEL.isEnabledFor(logging.INFO):
            return response
        gateway.access.info(
            "request",
            method=request.method,
            path=request.path,
            agency=info.get("agency"),
            event_type=info.get("event_type"),
            event_id=info.get("event_id"),
            dossier_id=info.get("dossier_id"),
            status=status,
            replayed=info.get("replayed", False),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    return observe


def create_app(gateway: Gateway) -> web.Application:
    """The aiohttp application for a configured :class:`Gateway`."""
    app = web.Application(middlewares=[_middleware(gateway)], client_max_size=gateway.max_body)
    app.router.add_post("/v1/events/{event_type}", gateway.post_event)
    app.router.add_get("/openapi.json", gateway.openapi)
    app.router.add_get("/health", gateway.health)
    app.router.add_get("/metrics", gateway.metrics.aiohttp_handler)
    app[GATEWAY_KEY] = gateway
    return app


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the listener; with ``tls_client_cafile`` every client must present a cert."""
    gw = settings.connectors.gateway
    if gw.tls_certfile is None:
        if gw.tls_client_cafile is not None:
            raise ValueError("connectors.gateway.tls_client_cafile needs tls_certfile (mTLS)")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(gw.tls_certfile), str(gw.tls_keyfile) if gw.tls_keyfile else None)
    if gw.tls_client_cafile is not None:
        context.load_verify_locations(cafile=str(gw.tls_client_cafile))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def build_gateway(
    settings: Settings,
    *,
    publisher: Publisher | None = None,
    store: IdempotencyStore | None = None,
    load_idempotency: bool = True,
) -> Gateway:
    """Everything from the settings: clients, producer (warmed up), remembered keys."""
    from lienthong.connectors.gateway.auth import load_clients
    from lienthong.connectors.gateway.idempotency import TOPIC, read_topic
    from lienthong.schemas import set_default_codec
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.registry import registry_from_settings

    gw = settings.connectors.gateway
    registry = load_agencies()
    authenticator = Authenticator(load_clients(gw.clients_file, registry))
    if not authenticator.clients:
        log.warning(
            "no gateway clients configured: every request will get 401",
            clients_file=str(gw.clients_file) if gw.clients_file else None,
        )
    if publisher is None:
        set_default_codec(AvroCodec(registry_from_settings(settings)))
        kafka = KafkaPublisher(settings)
        topics = sorted({MODELS_BY_EVENT_TYPE[t].TOPIC for t in accepted_event_types()})
        kafka.warm_up([*topics, TOPIC])
        publisher = kafka
    if store is None:
        store = IdempotencyStore(gw.idempotency_ttl_h * 3600)
        if load_idempotency:
            kept = store.load(read_topic(settings))
            log.info("idempotency keys loaded", keys=kept)
    return Gateway(settings, publisher, store, authenticator, registry=registry)


class GatewayServer:
    """The gateway's HTTP(S) listener on an asyncio loop (``start``/``stop``)."""

    def __init__(self, gateway: Gateway, host: str | None = None, port: int | None = None) -> None:
        gw = gateway.settings.connectors.gateway
        self.gateway = gateway
        self.host = host or gw.host
        self.port = gw.port if port is None else port
        self.runner: web.AppRunner | None = None

    async def start(self) -> int:
        self.runner = web.AppRunner(create_app(self.gateway), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner,
            self.host,
            self.port,
            ssl_context=server_ssl_context(self.gateway.settings),
            backlog=1024,
        )
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("gateway listening", host=self.host, port=self.port)
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self.gateway.access_stream.drain()
        close = getattr(self.gateway.publisher, "close", None)
        if close is not None:
            await asyncio.get_running_loop().run_in_executor(None, close)


class ThreadedGateway:
    """A gateway on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> None:
        import threading

        self.server = GatewayServer(gateway, host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.server.gateway.settings.connectors.gateway.tls_certfile else "http"
        return f"{scheme}://{self.server.host}:{self.server.port}"

    def start(self) -> ThreadedGateway:
        if self.thread.is_alive():  # already started (``with ThreadedGateway(...).start()``)
            return self
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def __enter__(self) -> ThreadedGateway:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m lienthong.connectors.gateway [--host H] [--port P]``."""
    import argparse
    import signal

    from lienthong.config import ConfigError, load_settings
    from lienthong.connectors.gateway.auth import ClientsFileError
    from lienthong.logs import configure_logging

    parser = argparse.ArgumentParser(prog="lienthong.connectors.gateway", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return 2
    configure_logging("gateway", settings.log_level)
    try:
        gateway = build_gateway(settings)
    except (ClientsFileError, ValueError, RuntimeError) as exc:
        print(f"lienthong gateway: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        server = GatewayServer(gateway, args.host, args.port)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("gateway stopping")
        await server.stop()

    asyncio.run(run())
    return 0


__all__ = [
    "ENVELOPE_PARTS",
    "Gateway",
    "GatewayServer",
    "KafkaPublisher",
    "ThreadedGateway",
    "build_gateway",
    "main",
    "Publisher",
    "create_app",
    "server_ssl_context",
]
