"""Portal connector: portal-status and live-stats records POSTed to the national portal.

Why a separate connector and not the stream processor itself: the portal is slow and often
unavailable, and a portal outage must never back-pressure the bus. The connector reads the
two topics with its own consumer group, posts in small batches, and retries with exponential
back-off (bounded, like AS4's retry window); it commits offsets only after the portal accepted
the batch, so a crash re-posts (the portal keeps the latest record per MaHoSo, so re-posting
is harmless).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from lienthong.logs import get_logger
from lienthong.schemas.models import LiveStatsSnapshot, PortalStatusRecord

log = get_logger(__name__)

Poster = Callable[[str, list[dict[str, Any]]], None]


class PortalUnavailable(Exception):
    """The portal did not accept a batch within the retry budget."""


def record_payload(event: PortalStatusRecord) -> dict[str, Any]:
    """The portal's JSON for one status record (its own field names, no envelope)."""
    data = event.model_dump(mode="json", exclude={"envelope"})
    return data


def stats_payload(event: LiveStatsSnapshot) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude={"envelope"})
    data["key"] = event.key
    return data


def http_poster(base_url: str, timeout: float = 5.0) -> Poster:
    def post(path: str, items: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            base_url.rstrip("/") + path,
            data=json.dumps(items, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()

    return post


def post_with_retry(
    post: Poster,
    path: str,
    items: list[dict[str, Any]],
    *,
    attempts: int = 8,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST ``items``; retry server errors and network failures; 4xx is not retried."""
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            post(path, items)
            return attempt
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                raise
            log.warning("portal_retry", path=path, status=exc.code, attempt=attempt)
        except OSError as exc:
            log.warning("portal_retry", path=path, error=str(exc), attempt=attempt)
        if attempt < attempts:
            sleep(delay)
            delay = min(max_delay, delay * 2)
    raise PortalUnavailable(f"portal did not accept {len(items)} items at {path}")


def forward(events: Iterable[Any], post: Poster, batch: int = 100) -> int:
    """Post decoded events in batches per endpoint; returns how many were posted."""
    pending: dict[str, list[dict[str, Any]]] = {"/records": [], "/stats": []}
    sent = 0
    for event in events:
        if isinstance(event, PortalStatusRecord):
            pending["/records"].append(record_payload(event))
        elif isinstance(event, LiveStatsSnapshot):
            pending["/stats"].append(stats_payload(event))
        else:
            continue
        for path, items in pending.items():
            if len(items) >= batch:
                post_with_retry(post, path, items)
                sent += len(items)
                items.clear()
    for path, items in pending.items():
        if items:
            post_with_retry(post, path, items)
            sent += len(items)
    return sent


def run(
    settings: Any,
    portal_url: str,
    group_id: str = "lienthong-portal-connector",
    *,
    stop_after_idle_polls: int | None = None,
) -> int:
    """Forward portal-status and live-stats to ``portal_url``; returns items posted.

    Partitions are assigned manually (no group join, which some brokers make slow) and the
    group id is used only to store offsets, committed after the portal accepted a batch.
    ``stop_after_idle_polls`` ends the loop after that many empty polls (tests, one-shot runs).
    """
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.schemas import decode_or_reason

    consumer = KafkaConsumer(
        **kafka_python_config(settings), group_id=group_id, enable_auto_commit=False
    )
    post = http_poster(portal_url)
    sent = 0
    try:
        tps = []
        for name in (PortalStatusRecord.TOPIC, LiveStatsSnapshot.TOPIC):
            topic = settings.topic(name)
            tps += [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(tps)
        for tp in tps:
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        idle = 0
        while stop_after_idle_polls is None or idle < stop_after_idle_polls:
            batch = consumer.poll(timeout_ms=1000, max_records=500)
            if not batch:
                idle += 1
                continue
            idle = 0
            events = [decode_or_reason(r.value) for rs in batch.values() for r in rs]
            n = forward(events, post)
            consumer.commit()
            sent += n
            log.info("portal_forwarded", items=n)
    finally:
        consumer.close()
    return sent


def main(argv: list[str] | None = None) -> int:
    import argparse

    from lienthong.config import load_settings
    from lienthong.logs import configure_logging

    parser = argparse.ArgumentParser(description="forward portal-status/live-stats to a portal")
    parser.add_argument("--portal-url", required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("portal-connector", settings.log_level)
    run(settings, args.portal_url)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
