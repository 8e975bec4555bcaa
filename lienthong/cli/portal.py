"""``lienthong portal reconcile``: does the national portal hold what the bus sent it?

Reads ``portal-status``, ``live-stats`` and ``portal-parked`` from the beginning with manual
partition assignment (no consumer group: inspecting never moves the connector's offsets),
pages through the portal's exports, and prints one line per difference:
``KIND<TAB>FEED<TAB>KEY<TAB>DETAIL`` with KIND one of missing, stale, unknown, parked.
Exit code 0 when in sync, 1 when differences exist (so it can run from cron or CI).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lienthong.cli.main import UsageError


def _read(config: dict[str, Any], topic: str) -> list[Any]:
    from lienthong.cli.dlq import read_topic

    try:
        return read_topic(config, topic)
    except UsageError as exc:
        if "does not exist" in str(exc):
            return []
        raise


def _reconcile(args: argparse.Namespace) -> int:
    from lienthong.config import load_settings
    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.connectors.portal.reconcile import portal_view, reconcile

    settings = load_settings()
    config = kafka_python_config(settings)
    if args.bootstrap:
        config["bootstrap_servers"] = args.bootstrap.split(",")
    portal = settings.connectors.portal
    url = args.portal_url or portal.url or settings.demo.portal_url
    if not url:
        raise UsageError("no portal URL: set connectors.portal.url or pass --portal-url")
    token = portal.token.get_secret_value() if portal.token else None
    bus = _read(config, settings.topic("portal-status")) + _read(
        config, settings.topic("live-stats")
    )
    parked = _read(config, settings.topic("portal-parked"))
    try:
        records, stats = portal_view(url, token)
    except OSError as exc:
        raise UsageError(f"cannot read the portal export at {url}: {exc}") from exc
    differences = reconcile(bus, parked, records, stats)
    if args.json:
        print(json.dumps([d.as_dict() for d in differences], ensure_ascii=False, indent=2))
    else:
        for difference in differences:
            print(difference.line())
        print(
            f"{len(differences)} difference(s); bus records {len(bus)}, "
            f"portal dossiers {len(records)}, portal statistics {len(stats)}, parked {len(parked)}"
        )
    return 1 if differences else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("portal", help="national portal connector tools")
    sub = parser.add_subparsers(dest="portal_command", metavar="ACTION", required=True)
    rec = sub.add_parser(
        "reconcile", help="list differences between the portal and the bus (exit 1 if any)"
    )
    rec.add_argument("--portal-url", help="portal base URL (default: connectors.portal.url)")
    rec.add_argument("--bootstrap", help="host:port[,host:port] (default: from settings)")
    rec.add_argument("--json", action="store_true", help="differences as a JSON list")
    rec.set_defaults(func=_reconcile)
