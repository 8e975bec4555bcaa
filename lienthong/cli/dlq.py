"""``lienthong dlq list|show|replay``: inspect dead letters and send them back once fixed.

Records are addressed as ``PARTITION:OFFSET`` in the dead-letter topic. ``replay`` re-publishes
the original key, value and headers to the source topic named in the dead letter, without the
``lienthong.dlq.*`` headers and with ``lienthong.dlq.replayed_from`` = ``topic:partition:offset``.
Reading uses manual partition assignment (no consumer group), so inspecting never moves anyone's
committed offsets.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import Any

from lienthong.cli.main import UsageError

_ADDRESS = re.compile(r"^(\d+):(\d+)$")
_RANGE = re.compile(r"^(\d+):(\d+)-(\d+)$")


def _client_config(args: argparse.Namespace) -> tuple[dict[str, Any], str, Any]:
    from lienthong.config import load_settings
    from lienthong.connectors.kafka import kafka_python_config

    settings = load_settings()
    config = kafka_python_config(settings)
    if args.bootstrap:
        config["bootstrap_servers"] = args.bootstrap.split(",")
    topic = args.topic or settings.topic("dead-letters")
    return config, topic, settings


def read_topic(config: dict[str, Any], topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every record currently in ``topic``, ordered by partition and offset."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    from lienthong.runtime.offsets import high_watermarks

    consumer = KafkaConsumer(**config, group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise UsageError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        # The fetched high watermarks mark the end (Tansu under-reports ListOffsets).
        end = high_watermarks(consumer, tps, timeout_s)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while not all(consumer.position(tp) >= end[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
            if time.monotonic() > deadline:
                raise UsageError(f"timed out reading {topic!r}")
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def _dlq(record: Any) -> dict[str, str]:
    from lienthong.connectors.deadletter import dlq_header_map

    return dlq_header_map(record.headers)


def _summary(record: Any) -> str:
    from lienthong.connectors import headers as h

    d = _dlq(record)
    source = f"{d.get(h.DLQ_SOURCE_TOPIC, '?')}[{d.get(h.DLQ_SOURCE_PARTITION, '?')}]"
    source += f"@{d.get(h.DLQ_SOURCE_OFFSET, '?')}"
    return (
        f"{record.partition}:{record.offset}\t{source}\t{d.get(h.DLQ_ERROR_CLASS, '?')}\t"
        f"{d.get(h.DLQ_REASON, '')}"
    )


def _list(args: argparse.Namespace) -> int:
    from lienthong.connectors import headers as h

    config, topic, _ = _client_config(args)
    records = read_topic(config, topic)
    if args.error_class:
        records = [r for r in records if _dlq(r).get(h.DLQ_ERROR_CLASS) == args.error_class]
    print("dlq\tsource\terror_class\treason")
    for record in records[-args.limit :] if args.limit else records:
        print(_summary(record))
    return 0


def _hexdump(data: bytes, limit: int = 512) -> list[str]:
    lines = []
    for start in range(0, min(len(data), limit), 16):
        chunk = data[start : start + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {start:08x}  {chunk.hex(' '):<47}  {text}")
    if len(data) > limit:
        lines.append(f"  … {len(data) - limit} more bytes")
    return lines


def _find(records: list[Any], address: str) -> Any:
    match = _ADDRESS.match(address)
    if match:
        wanted = (int(match.group(1)), int(match.group(2)))
        found = [r for r in records if (r.partition, r.offset) == wanted]
    elif address.isdigit():
        found = [r for r in records if r.offset == int(address)]
        if len(found) > 1:
            raise UsageError(f"offset {address} exists in several partitions; use PARTITION:OFFSET")
    else:
        raise UsageError(f"expected PARTITION:OFFSET, got {address!r}")
    if not found:
        raise UsageError(f"no dead letter at {address}")
    return found[0]


def _show(args: argparse.Namespace) -> int:
    from lienthong.schemas import DecodeError, RegistryUnavailable, default_codec
    from lienthong.schemas.codec import unframe

    config, topic, _ = _client_config(args)
    record = _find(read_topic(config, topic), args.address)
    print(f"dead letter {topic} {record.partition}:{record.offset}")
    print(f"key: {record.key!r}")
    print("headers:")
    for name, value in record.headers or []:
        try:
            shown = value.decode("utf-8")
        except UnicodeDecodeError:
            shown = "0x" + value.hex()
        print(f"  {name}: {shown}")
    value = record.value or b""
    print(f"value: {len(value)} bytes")
    for line in _hexdump(value):
        print(line)
    try:
        schema_id, _ = unframe(value)
        model, body = default_codec().decode_record(value)
        print(f"avro (schema id {schema_id}, {model.EVENT_TYPE}, not validated):")
        print(json.dumps(body, default=str, ensure_ascii=False, indent=2))
    except (DecodeError, RegistryUnavailable) as exc:
        print(f"avro: cannot decode: {type(exc).__name__}: {exc}")
    return 0


def _selected(records: list[Any], args: argparse.Namespace) -> list[Any]:
    from lienthong.connectors import headers as h

    if not (args.offset or args.range or args.error_class or args.all):
        raise UsageError("select records with --offset, --range, --error-class or --all")
    chosen: dict[tuple[int, int], Any] = {}
    for record in records:
        key = (record.partition, record.offset)
        if args.all:
            chosen[key] = record
        if args.error_class and _dlq(record).get(h.DLQ_ERROR_CLASS) == args.error_class:
            chosen[key] = record
    for address in args.offset or []:
        record = _find(records, address)
        chosen[(record.partition, record.offset)] = record
    for spec in args.range or []:
        match = _RANGE.match(spec)
        if not match:
            raise UsageError(f"expected PARTITION:FIRST-LAST, got {spec!r}")
        part, first, last = (int(g) for g in match.groups())
        for record in records:
            if record.partition == part and first <= record.offset <= last:
                chosen[(record.partition, record.offset)] = record
    return [chosen[k] for k in sorted(chosen)]


def replay_record(
    producer: Any, topic: str, record: Any, extra_headers: Sequence[tuple[str, bytes]] = ()
) -> str | None:
    """Send one dead letter of ``topic`` back to its source topic (``producer`` None: dry run).

    The one code path of ``dlq replay`` and the console's redrive. Returns the source topic,
    or None when the record names none (nothing is sent).
    """
    from lienthong.connectors import headers as h
    from lienthong.connectors.deadletter import replay_headers

    source = _dlq(record).get(h.DLQ_SOURCE_TOPIC)
    if not source:
        return None
    if producer is not None:
        origin = f"{topic}:{record.partition}:{record.offset}"
        producer.send(
            source,
            key=record.key,
            value=record.value,
            headers=replay_headers(record.headers, origin) + list(extra_headers),
        )
    return source


def _replay(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    from lienthong.connectors import headers as h

    config, topic, _ = _client_config(args)
    records = _selected(read_topic(config, topic), args)
    producer = None if args.dry_run else KafkaProducer(**config, acks="all")
    try:
        for record in records:
            source = replay_record(producer, topic, record)
            if not source:
                print(f"skip {record.partition}:{record.offset}: no {h.DLQ_SOURCE_TOPIC} header")
                continue
            verb = "would replay" if args.dry_run else "replayed"
            print(f"{verb} {record.partition}:{record.offset} -> {source}")
        if producer is not None:
            producer.flush()
    finally:
        if producer is not None:
            producer.close()
    print(f"{len(records)} record(s) selected")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dlq", help="inspect and replay dead letters")
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topic", help="dead-letter topic (default: catalogue dead-letters)")
        p.add_argument("--bootstrap", help="host:port[,host:port] (default: from settings)")

    lst = sub.add_parser("list", help="one line per dead letter: address, source, class, reason")
    common(lst)
    lst.add_argument("--error-class", help="only this error class, e.g. UnknownAgency")
    lst.add_argument("--limit", type=int, default=0, help="only the last N")
    lst.set_defaults(func=_list)

    show = sub.add_parser("show", help="one dead letter with headers, hex and Avro view")
    common(show)
    show.add_argument("address", help="PARTITION:OFFSET in the dead-letter topic")
    show.set_defaults(func=_show)

    replay = sub.add_parser("replay", help="re-publish dead letters to their source topic")
    common(replay)
    replay.add_argument("--offset", action="append", help="PARTITION:OFFSET (repeatable)")
    replay.add_argument("--range", action="append", help="PARTITION:FIRST-LAST (inclusive)")
    replay.add_argument("--error-class", help="every dead letter of this error class")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--dry-run", action="store_true", help="print what would be replayed")
    replay.set_defaults(func=_replay)
