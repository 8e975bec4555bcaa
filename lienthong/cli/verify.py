"""``lienthong verify --truth FILE``: the bus's figures against the simulator's ground truth."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lienthong.config import load_settings
from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify", help="compare live counts, alerts (all kinds), portal records, DLQ with the truth"
    )
    p.add_argument(
        "--truth", type=Path, default=None, help="default: <run_dir>/truth.json (simulate's)"
    )
    p.add_argument("--actual", type=Path, default=None, help="read actuals from JSON (offline)")
    p.add_argument("--wait", type=float, default=0.0, help="retry for up to N s until ok")
    p.add_argument("--timeout", type=float, default=30.0, help="per-topic read timeout (s)")
    p.add_argument("--dump-actual", type=Path, default=None, help="write what was read (JSON)")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.simulators.verify import collect_actual, compare_report, render

    if args.truth is None:
        args.truth = load_settings().run_dir / "truth.json"
    try:
        truth = json.loads(args.truth.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read truth file {args.truth}: {exc}") from None
    deadline = time.monotonic() + args.wait
    while True:
        if args.actual is not None:
            actual = json.loads(args.actual.read_text(encoding="utf-8"))
        else:
            settings = load_settings()
            configure_logging("cli", "WARNING")
            actual = collect_actual(settings, args.timeout)
        rows, notes = compare_report(truth, actual)
        if all(r.ok for r in rows) or time.monotonic() >= deadline:
            break
        time.sleep(2.0)
    if args.dump_actual is not None:
        args.dump_actual.write_text(json.dumps(actual, default=sorted, indent=1))
    print(render(rows, notes))
    return 0 if all(r.ok for r in rows) else 1
