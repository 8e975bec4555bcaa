"""Idempotency keys: a retried request gets the original answer and publishes nothing new.

Keys are scoped per agency (``agency|key``) and remembered ``idempotency_ttl_h``. Every
remembered answer is also journalled to the topic ``gateway-idempotency`` *before* the 202
goes out, and the topic is read back at start, so a restarted gateway still recognises a
retry. The answers of requests accepted at the same moment share one journal record (value
JSON ``{"entries": [{"key", "digest", "answer", "expires_at"}, ...]}``): one Kafka send per
request would double the gateway's cost. The topic is time-retained (longer than the TTL)
rather than compacted, since a journal record holds many keys.

Two requests with the same key in flight at once: the second waits for the first. If the first
was accepted, the second is answered from it (replay or conflict); if it was refused or failed,
the second runs on its own. So at most one of them ever publishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lienthong.logs import get_logger
from lienthong.runtime.offsets import high_watermarks

log = get_logger(__name__)

TOPIC = "gateway-idempotency"
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Remembered:
    digest: str
    answer: dict[str, Any]
    expires_at: float  # epoch seconds


def request_digest(event_type: str, body: Any) -> str:
    """SHA-256 of the event type and the canonical JSON of the body (key order ignored)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{event_type}\n{canonical}".encode()).hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def scoped(agency: str, key: str) -> str:
    return f"{agency}|{key}"


def encode_value(entry: Remembered) -> bytes:
    return json.dumps(
        {"digest": entry.digest, "answer": entry.answer, "expires_at": entry.expires_at},
        separators=(",", ":"),
    ).encode()


def decode_value(value: bytes) -> Remembered:
    raw = json.loads(value)
    return _entry(raw)


def _entry(raw: dict[str, Any]) -> Remembered:
    return Remembered(str(raw["digest"]), dict(raw["answer"]), float(raw["expires_at"]))


def encode_journal(items: list[tuple[str, bytes]]) -> bytes:
    """One journal record for several (scoped key, encoded entry) pairs.

    Each entry is already a JSON object (:func:`encode_value`); the key is spliced in front
    of its fields instead of decoding and re-encoding it (this runs once per request).
    """
    parts = []
    for key, value in items:
        if not value.startswith(b"{"):
            raise ValueError("an idempotency entry must be a JSON object")
        key_field = b'{"key":' + json.dumps(key).encode()
        parts.append(key_field + (b"," + value[1:] if value != b"{}" else b"}"))
    return b'{"entries":[' + b",".join(parts) + b"]}"


def decode_journal(key: str, value: bytes) -> list[tuple[str, Remembered]]:
    """(scoped key, entry) pairs of a journal record; a single-entry record is its own key."""
    raw = json.loads(value)
    if isinstance(raw, dict) and "entries" in raw:
        return [(str(item["key"]), _entry(item)) for item in raw["entries"]]
    return [(key, _entry(raw))]


class IdempotencyStore:
    """In-memory table of remembered answers plus the in-flight claims of this process."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._done: dict[str, Remembered] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._last_prune = 0.0

    def __len__(self) -> int:
        return len(self._done)

    def lookup(self, key: str) -> Remembered | None:
        entry = self._done.get(key)
        if entry is not None and entry.expires_at <= self.clock():
            del self._done[key]
            return None
        return entry

    async def claim(self, key: str) -> Remembered | None:
        """The remembered answer, or None after marking ``key`` in flight for this caller.

        A caller that got None must call :meth:`release` exactly once, whatever happens.
        """
        while True:
            entry = self.lookup(key)
            if entry is not None:
                return entry
            pending = self._inflight.get(key)
            if pending is None:
                self._inflight[key] = asyncio.get_running_loop().create_future()
                return None
            await asyncio.shield(pending)

    def new_entry(self, digest: str, answer: dict[str, Any]) -> Remembered:
        return Remembered(digest, answer, self.clock() + self.ttl_s)

    def release(self, key: str, entry: Remembered | None = None) -> None:
        """End the claim; with ``entry`` the answer is remembered (the request was accepted)."""
        if entry is not None:
            self._done[key] = entry
        pending = self._inflight.pop(key, None)
        if pending is not None and not pending.done():
            pending.set_result(None)
        self._maybe_prune()

    def load(self, records: Iterable[tuple[bytes | str, bytes | None]]) -> int:
        """Replay topic records (key, value); tombstones forget. Returns entries kept."""
        now = self.clock()
        for raw_key, value in records:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if value is None:
                self._done.pop(key, None)
                continue
            try:
                entries = decode_journal(key, value)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("idempotency record unreadable", key=key, error=str(exc))
                continue
            for scoped_key, entry in entries:
                if entry.expires_at > now:
                    self._done[scoped_key] = entry
                else:
                    self._done.pop(scoped_key, None)
        return len(self._done)

    def _maybe_prune(self) -> None:
        now = self.clock()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        for key in [k for k, e in self._done.items() if e.expires_at <= now]:
            del self._done[key]


def read_topic(settings: Any, timeout_s: float = 30.0) -> list[tuple[bytes, bytes | None]]:
    """Every record of ``gateway-idempotency`` from the beginning to the current end."""
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.connectors.kafka import kafka_python_config

    topic = settings.topic(TOPIC)
    consumer = KafkaConsumer(
        **kafka_python_config(settings), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout_s
        while partitions is None and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            raise RuntimeError(f"topic {topic} does not exist: run `lienthong topics apply` first")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        end = high_watermarks(consumer, tps)  # not ListOffsets: Tansu under-reports it
        consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, bytes | None]] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} took longer than {timeout_s}s")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in records if r.key is not None)
        return out
    finally:
        consumer.close()
