"""Dead-letter monitor: counts what consumers rejected and raises one alert per dead letter.

Monitoring consoles need to know, live, that some agency is sending records the bus cannot
accept, and why. This agent reads ``dead-letters``, keeps exact counts per source topic and
error class in a changelog-backed table, and publishes an alert per dead letter on
``monitoring-alerts``.

Exactness under at-least-once delivery: the table also remembers the highest dead-letter
offset applied per partition, so a record redelivered after a crash (offset not yet
committed, table already updated) is recognised and not counted twice. The alert key is
``dead-letters:<partition>:<offset>``, so a repeated alert is recognisable by consumers.

Failures (see :mod:`lienthong.streams.failures`): a dead letter the monitor cannot read (a bug
its headers reach) is logged with ``log.exception`` and counted under the error class
``MonitorFailed`` (it cannot be dead-lettered: it would come back to this agent), and the
stream carries on. The alert is acknowledged by the broker before the next record is taken; a
send failing after the producer's retries stops the process before the record is
acknowledged, so it is read again after the restart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from lienthong.connectors import headers as H
from lienthong.logs import get_logger
from lienthong.streams.app import StreamsApp
from lienthong.streams.failures import stop_process
from lienthong.streams.gaps import GapGuard

log = get_logger(__name__)


class MonitorStage:
    """The dead-letter monitor of one app: its topics, its table, its gap guard."""

    def __init__(self, streams: StreamsApp) -> None:
        self.app = app = streams.app
        self.dead_letters = streams.topic("dead-letters")
        self.monitoring_alerts = streams.topic("monitoring-alerts")
        # One record per dead-letter partition holding both the counts and the highest offset
        # applied: a single changelog write per event keeps the two consistent after a crash
        # (two tables could be restored to different points and under- or over-count).
        self.dead_letter_state = app.Table(
            "dead-letter-state", default=dict, partitions=streams.partitions_of("dead-letters")
        )
        self.gap_guard = GapGuard(
            app,
            self.dead_letters.get_topic_name(),
            lambda partition: self.dead_letter_state[str(partition)].get("applied", -1),
        )

    def register(self) -> None:
        """The agent, the tail-gap timer and the summary page, on this app."""
        app, stage = self.app, self

        @app.timer(interval=2.0, name="lienthong.streams.monitor.repair_dead_letter_tail_gaps")
        async def repair_dead_letter_tail_gaps() -> None:
            await stage.gap_guard.check_idle_partitions()

        @app.agent(self.dead_letters, name="lienthong.streams.monitor.monitor_dead_letters")
        async def monitor_dead_letters(stream: faust.StreamT) -> None:
            await stage.monitor_dead_letters(stream)

        @app.page("/dead-letters/summary")
        class DeadLetterSummary(View):
            """Counts of dead letters seen by this worker's partitions, per source and class."""

            async def get(self, request: Request) -> Response:
                return self.json(stage.dead_letter_summary())

    async def monitor_dead_letters(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                if not await self.gap_guard.admit(message):
                    continue
                await self._handle(message)
            except Exception as exc:
                stop_process(
                    log,
                    "dead_letter_monitor_failed",
                    exc,
                    partition=message.partition,
                    offset=message.offset,
                )

    async def _handle(self, message: Any) -> None:
        partition_key = str(message.partition)
        state = self.dead_letter_state[partition_key]
        alert: dict[str, Any] | None = None
        value = b""
        try:
            alert = dead_letter_alert(
                _header_map(message.headers), message.key, message.partition, message.offset
            )
            value = json.dumps(alert).encode("utf-8")
            count_key = f"{alert['source_topic']}|{alert['error_class']}"
        except Exception as exc:
            log.exception(
                "dead_letter_unreadable",
                partition=message.partition,
                offset=message.offset,
                error_type=type(exc).__name__,
            )
            alert, count_key = None, "unknown|MonitorFailed"
        counts = dict(state.get("counts", {}))
        counts[count_key] = counts.get(count_key, 0) + 1
        if alert is not None:
            # Acknowledged before the count is saved: a count ahead of a lost alert would skip
            # the record when it is read again.
            key = alert["alert_id"].encode()
            await (await self.monitoring_alerts.send(key=key, value=value))
        self.dead_letter_state[partition_key] = {"applied": message.offset, "counts": counts}
        if alert is not None:
            log.warning(
                "dead_letter_seen",
                dossier_id=alert["dossier_id"],
                source_topic=alert["source_topic"],
                error_class=alert["error_class"],
                reason=alert["reason"],
            )

    def dead_letter_summary(self) -> dict[str, Any]:
        totals: dict[str, dict[str, int]] = defaultdict(dict)
        for state in self.dead_letter_state.values():
            for key, count in state.get("counts", {}).items():
                source, error_class = key.split("|", 1)
                totals[source][error_class] = totals[source].get(error_class, 0) + count
        return {"by_source": totals, "total": sum(sum(v.values()) for v in totals.values())}


def _header_map(raw_headers: Any) -> dict[str, str]:
    items = raw_headers.items() if isinstance(raw_headers, dict) else (raw_headers or [])
    result = {}
    for name, value in items:
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", errors="replace")
        result[str(name)] = "" if value is None else str(value)
    return result


def dead_letter_alert(
    headers: dict[str, str], key: bytes | None, partition: int, offset: int
) -> dict[str, Any]:
    """The alert published for one dead letter (pure: unit-testable without Kafka)."""
    return {
        "alert_type": "dead_letter",
        "alert_id": f"dead-letters:{partition}:{offset}",
        "raised_at": datetime.now(UTC).isoformat(),
        "dead_letter": {"partition": partition, "offset": offset},
        "dossier_id": key.decode("utf-8", errors="replace") if key else None,
        "source_topic": headers.get(H.DLQ_SOURCE_TOPIC, "unknown"),
        "source_partition": headers.get(H.DLQ_SOURCE_PARTITION),
        "source_offset": headers.get(H.DLQ_SOURCE_OFFSET),
        "error_class": headers.get(H.DLQ_ERROR_CLASS, "unknown"),
        "reason": headers.get(H.DLQ_REASON, "dead letter without lienthong.dlq.reason header"),
        "consumer": headers.get(H.DLQ_CONSUMER),
    }
