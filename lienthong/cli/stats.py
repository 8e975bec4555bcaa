"""``lienthong stats [--watch]``: received / on time / late / in progress by agency."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lienthong.config import load_settings
from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="live counts by agency (terminal view)")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--period", default=None, help="period key, e.g. month:2026-01")
    p.add_argument("--from-json", type=Path, default=None, help="render a stats JSON file")
    p.set_defaults(func=cmd_stats)


def _load(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text(encoding="utf-8"))
        return data.get("counts", data.get("stats", data))
    from lienthong.schemas import decode_or_reason
    from lienthong.schemas.models import LiveStatsSnapshot
    from lienthong.simulators.truth import COUNT_FIELDS
    from lienthong.simulators.verify import read_topic

    settings = load_settings()
    stats: dict[str, dict[str, int]] = {}
    for record in read_topic(settings, "live-stats", 5.0):
        event = decode_or_reason(record.value)
        if isinstance(event, LiveStatsSnapshot):
            stats[event.key] = {f: getattr(event, f) for f in COUNT_FIELDS}
    return stats


def cmd_stats(args: argparse.Namespace) -> int:
    from lienthong.simulators.statsview import render_table

    configure_logging("cli", "WARNING")
    while True:
        table = render_table(_load(args), args.period)
        if not args.watch:
            print(table)
            return 0
        print(
            "\x1b[2J\x1b[H" + time.strftime("%H:%M:%S") + "  (Ctrl-C to stop)\n" + table, flush=True
        )
        time.sleep(args.interval)
