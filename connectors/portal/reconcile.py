"""Reconciliation: what the portal holds versus what the bus sent it.

Why: the connector's guarantees (at-least-once, idempotent, parking instead of blocking) are
only as good as the evidence that the portal ended up with the bus's latest view of every
dossier. This compares the latest ``portal-status`` record per MaHoSo and the latest
``live-stats`` snapshot per key with the portal's export, and names every difference.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lienthong.connectors.portal.connector import (
    PARKED_KEY,
    record_payload,
    stats_payload,
)
from lienthong.schemas.models import LiveStatsSnapshot, PortalStatusRecord

# Not compared: the key itself is metadata, and a snapshot's as_of moves on every flush even
# when no figure changed.
IGNORED = {"records": {"idempotency_key"}, "stats": {"idempotency_key", "as_of"}}


@dataclass(frozen=True)
class Difference:
    kind: str  # missing | stale | unknown | parked
    feed: str  # records | stats
    key: str  # MaHoSo or statistic key
    detail: str

    def line(self) -> str:
        return f"{self.kind}\t{self.feed}\t{self.key}\t{self.detail}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def field_differences(bus: Mapping[str, Any], portal: Mapping[str, Any], ignored: set[str]) -> str:
    """``field bus=X portal=Y`` for each differing field, '; '-joined ('' when equal)."""
    names = sorted((set(bus) | set(portal)) - ignored)
    parts = [
        f"{n} bus={_short(bus.get(n))} portal={_short(portal.get(n))}"
        for n in names
        if bus.get(n) != portal.get(n)
    ]
    return "; ".join(parts)


def compare(
    feed: str,
    bus: Mapping[str, Mapping[str, Any]],
    portal: Mapping[str, Mapping[str, Any]],
    parked: Mapping[str, str] | None = None,
) -> list[Difference]:
    """Differences for one feed. ``parked`` maps an idempotency key to its parking reason: a
    latest bus record that was parked is reported as ``parked`` rather than missing/stale."""
    parked = parked or {}
    out: list[Difference] = []
    for key in sorted(bus):
        want = bus[key]
        have = portal.get(key)
        diff = None if have is None else field_differences(want, have, IGNORED[feed])
        if have is not None and not diff:
            continue
        ikey = str(want.get("idempotency_key", ""))
        if ikey in parked:
            out.append(Difference("parked", feed, key, f"{ikey}: {parked[ikey]}"))
        elif have is None:
            out.append(Difference("missing", feed, key, f"not at portal ({ikey})"))
        else:
            out.append(Difference("stale", feed, key, diff or ""))
    for key in sorted(set(portal) - set(bus)):
        ikey = portal[key].get("idempotency_key")
        out.append(Difference("unknown", feed, key, f"not sent by the bus ({ikey})"))
    return out


def latest_from_bus(records: Iterable[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latest portal payload per MaHoSo and per statistic key from raw Kafka records."""
    from lienthong.schemas import decode_or_reason

    status: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        event = decode_or_reason(record.value)
        if isinstance(event, PortalStatusRecord):
            status[event.MaHoSo] = record_payload(event)
        elif isinstance(event, LiveStatsSnapshot):
            stats[event.key] = stats_payload(event)
    return status, stats


def parked_reasons(records: Iterable[Any]) -> dict[str, str]:
    """Idempotency key → reason, from the ``portal-parked`` topic's headers."""
    from lienthong.connectors.deadletter import dlq_header_map, normalise_headers
    from lienthong.connectors.headers import DLQ_REASON

    out: dict[str, str] = {}
    for record in records:
        headers = dict(normalise_headers(record.headers))
        key = headers.get(PARKED_KEY, b"").decode()
        if key:
            out[key] = dlq_header_map(record.headers).get(DLQ_REASON, "parked")
    return out


def fetch_export(base_url: str, path: str, token: str | None, timeout: float = 10.0) -> list[Any]:
    """Every item of a paged portal export (``?after=&limit=`` → ``items``, ``next``)."""
    items: list[Any] = []
    after = ""
    while True:
        query = urllib.parse.urlencode({"after": after, "limit": 500})
        request = urllib.request.Request(f"{base_url.rstrip('/')}{path}?{query}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            page = json.loads(response.read())
        items.extend(page.get("items", []))
        after = page.get("next")
        if not after:
            return items


def portal_view(base_url: str, token: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    records = {r["MaHoSo"]: r for r in fetch_export(base_url, "/records/export", token)}
    stats = {s["key"]: s for s in fetch_export(base_url, "/stats/export", token)}
    return records, stats


def reconcile(
    bus_records: Iterable[Any],
    parked_records: Iterable[Any],
    portal_records: Mapping[str, Any],
    portal_stats: Mapping[str, Any],
) -> list[Difference]:
    status, stats = latest_from_bus(bus_records)
    parked = parked_reasons(parked_records)
    return compare("records", status, portal_records, parked) + compare(
        "stats", stats, portal_stats, parked
    )
