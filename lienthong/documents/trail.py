"""Topic formats of the document trail, and reading them back (issue 7, stream part).

The stream agent (``lienthong.streams.documents``) writes three JSON topics, all keyed by
dossier id so that one dossier's history is in one partition and in order:

* ``documents-verified`` — the receiving agencies' view: one record per document that passed
  every check of docs/documents.md §4 (and per accepted receipt). Nothing else reaches it.
* ``documents-quarantine`` — one record per rejected document or receipt, with the first check
  that failed (``reason``) and why (``detail``).
* ``audit-chain`` — the tamper-evident trail: ``{"kind": "link", ...}`` per accepted record
  (the exact canonical record text, its index and link) and ``{"kind": "checkpoint", ...}`` per
  bus-signed checkpoint (canonical text + base64 DER signature).

The record text is carried as a JSON *string* so that the bytes that were hashed are the bytes
that are read back: re-serialising a parsed object could change them and break the chain for
the wrong reason. The helpers here are pure; :func:`read_topic` is the Kafka record source the
CLI uses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lienthong.documents.canonical import canonical_json
from lienthong.documents.chain import Checkpoint, SignedCheckpoint
from lienthong.runtime.offsets import high_watermarks

LINK = "link"
CHECKPOINT = "checkpoint"


def link_value(dossier_id: str, index: int, link: str, record: bytes) -> bytes:
    """``audit-chain`` value for one accepted record."""
    return canonical_json(
        {
            "kind": LINK,
            "dossier_id": dossier_id,
            "index": index,
            "link": link,
            "record": record.decode("utf-8"),
        }
    )


def checkpoint_value(signed: SignedCheckpoint) -> bytes:
    """``audit-chain`` value for one bus-signed checkpoint."""
    cp = signed.checkpoint
    return canonical_json(
        {
            "kind": CHECKPOINT,
            "dossier_id": cp.dossier_id,
            "index": cp.index,
            "link": cp.link,
            "checkpoint": signed.data.decode("utf-8"),
            "signature_b64": base64.b64encode(signed.signature).decode("ascii"),
        }
    )


@dataclass(slots=True)
class DossierTrail:
    """One dossier's trail as read from ``audit-chain`` (topic order)."""

    dossier_id: str
    entries: list[tuple[bytes, str]] = field(default_factory=list)  # (record bytes, link)
    indexes: list[int] = field(default_factory=list)
    checkpoints: list[SignedCheckpoint] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(data.decode("utf-8")) for data, _ in self.entries]

    @property
    def checkpoint_pairs(self) -> list[tuple[bytes, bytes]]:
        return [(cp.data, cp.signature) for cp in self.checkpoints]


def collect_trail(dossier_id: str, values: Iterable[Mapping[str, Any]]) -> DossierTrail:
    """Gather a dossier's links and checkpoints from parsed ``audit-chain`` values.

    A redelivered source event makes the agent write the same link again (at-least-once); an
    exact repeat of an index already read is dropped. A *different* record under a seen index is
    kept, so that :func:`~lienthong.documents.chain.verify_chain` reports it.
    """
    trail = DossierTrail(dossier_id)
    seen_links: set[tuple[int, str, str]] = set()
    seen_checkpoints: set[int] = set()
    for value in values:
        if value.get("dossier_id") != dossier_id:
            continue
        if value.get("kind") == LINK:
            marker = (int(value["index"]), str(value["link"]), str(value["record"]))
            if marker in seen_links:
                continue
            seen_links.add(marker)
            trail.entries.append((str(value["record"]).encode("utf-8"), str(value["link"])))
            trail.indexes.append(int(value["index"]))
        elif value.get("kind") == CHECKPOINT:
            index = int(value["index"])
            if index in seen_checkpoints:
                continue
            seen_checkpoints.add(index)
            data = str(value["checkpoint"]).encode("utf-8")
            trail.checkpoints.append(
                SignedCheckpoint(
                    Checkpoint.from_bytes(data), data, base64.b64decode(value["signature_b64"])
                )
            )
    return trail


def read_topic(
    client_config: Mapping[str, Any],
    topic: str,
    *,
    key: str | None = None,
    timeout_s: float = 5.0,
) -> Iterator[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    """Every record of ``topic`` from the beginning up to the end offsets at call time.

    Reads to the end offsets captured first (not "until idle"), so a slow broker cannot cut the
    trail short. ``key`` filters on the record key (dossier id). Yields (key, value, headers).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **dict(client_config),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        end = high_watermarks(consumer, tps)  # not ListOffsets: Tansu under-reports it
        consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        wanted = key.encode("utf-8") if key is not None else None
        while remaining:
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= end[tp]:
                        remaining.discard(tp)
                        continue
                    if wanted is None or message.key == wanted:
                        yield message.key, message.value, list(message.headers or [])
                    if message.offset + 1 >= end[tp]:
                        remaining.discard(tp)
    finally:
        consumer.close()


def read_json_values(
    client_config: Mapping[str, Any], topic: str, *, key: str | None = None, timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """Parsed JSON values of a topic (records that are not JSON objects are skipped)."""
    values = []
    for _key, value, _headers in read_topic(client_config, topic, key=key, timeout_s=timeout_s):
        try:
            parsed = json.loads(value or b"")
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(parsed, dict):
            values.append(parsed)
    return values
