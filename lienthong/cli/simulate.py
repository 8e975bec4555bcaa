"""``lienthong simulate``: produce a province's dossiers (replay or live) and the ground truth."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path

from lienthong.config import load_settings
from lienthong.logs import configure_logging, get_logger

_RATES = (
    "share_counter",
    "share_postal",
    "share_online",
    "refusal_rate",
    "withdrawal_rate",
    "supplement_rate",
    "second_supplement_rate",
    "fee_rate",
    "late_step_rate",
    "postal_return_rate",
    "postal_failure_rate",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from lienthong.simulators.faults import FAULTS
    from lienthong.simulators.province import SimConfig

    p = subparsers.add_parser("simulate", help="produce simulated dossiers and a ground truth")
    p.add_argument("--mode", choices=("replay", "live"), default="replay")
    p.add_argument("--period", default=None, help="YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--leave-out-agency",
        action="append",
        default=[],
        metavar="CODE",
        help="simulate no procedure routed through this agency (a real connector drives it)",
    )
    p.add_argument("--dossiers", type=int, default=None, help="override the derived count")
    p.add_argument("--dossiers-per-year", type=int, default=430_000)
    p.add_argument(
        "--procedures",
        type=int,
        default=None,
        help="procedures simulated, real ones first (default: the whole catalogue, 1,300)",
    )
    p.add_argument(
        "--inter-agency",
        type=int,
        default=None,
        help="of those, inter-agency (default: every one the subset has, 300 of 1,300)",
    )
    p.add_argument(
        "--zipf-exponent",
        type=float,
        default=1.0,
        help="volume of the procedure ranked r in its level is proportional to 1/r^s",
    )
    defaults = {f.name: f.default for f in fields(SimConfig)}
    for name in _RATES:
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=defaults[name])
    p.add_argument(
        "--truth", type=Path, default=None, help="ground truth JSON (default <run_dir>/truth.json)"
    )
    p.add_argument("--truth-periods", default="month", help="e.g. day,month,quarter,year")
    p.add_argument("--rate", type=float, default=None, help="records/s (live default 50)")
    p.add_argument("--live-days", type=int, default=30, help="live: window ending now")
    p.add_argument("--dry-run", action="store_true", help="do not produce; truth only")
    for fault in FAULTS:
        p.add_argument(
            f"--{fault.replace('_', '-')}",
            type=float,
            nargs="?",
            const=0.01,
            default=0.0,
            metavar="RATE",
            help=f"inject {fault} (default rate 0.01)",
        )
    p.add_argument(
        "--all-faults",
        type=float,
        nargs="?",
        const=0.01,
        default=None,
        metavar="RATE",
        help="every fault at RATE per dossier",
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.schemas import encode
    from lienthong.schemas.models import VN_TZ
    from lienthong.simulators.faults import FAULTS, FaultConfig
    from lienthong.simulators.province import Period, SimConfig
    from lienthong.simulators.run import Plan
    from lienthong.simulators.truth import write_truth

    settings = load_settings()
    configure_logging("simulator", settings.log_level)
    log = get_logger("lienthong.simulate")
    try:
        if args.mode == "live" and args.period is None:
            now = datetime.now(VN_TZ).replace(second=0, microsecond=0)
            period = Period(f"live:{now:%Y%m%d%H%M}", now - timedelta(days=args.live_days), now)
        else:
            period = Period.parse(args.period or "2026-01")
        kinds = tuple(k.strip() for k in args.truth_periods.split(",") if k.strip())
        if not set(kinds) <= {"day", "month", "quarter", "year"}:
            raise ValueError(f"bad --truth-periods {args.truth_periods!r}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    rates = {name: getattr(args, name) for name in _RATES}
    config = SimConfig(
        period=period,
        seed=args.seed,
        dossiers=args.dossiers,
        dossiers_per_year=args.dossiers_per_year,
        leave_out_agencies=frozenset(args.leave_out_agency),
        procedures=args.procedures,
        inter_agency=args.inter_agency,
        zipf_exponent=args.zipf_exponent,
        **rates,
    )
    faults = FaultConfig(
        {f: (args.all_faults if args.all_faults is not None else getattr(args, f)) for f in FAULTS}
    )
    try:
        plan = Plan(config, faults, encode, kinds)
    except ValueError as exc:  # e.g. more procedures asked than the catalogue has
        raise UsageError(str(exc)) from None
    started = time.monotonic()
    if args.dry_run:
        n = sum(1 for _ in plan.records())
    else:
        n = _produce(settings, plan, rate=args.rate or (50.0 if args.mode == "live" else None))
    elapsed = time.monotonic() - started
    truth = plan.truth_json()
    truth["meta"]["mode"] = args.mode
    args.truth = args.truth or settings.run_dir / "truth.json"
    write_truth(args.truth, truth)
    log.info("simulation_done", records=n, seconds=round(elapsed, 2))
    print(
        json.dumps(
            {
                "records": n,
                "dossiers": truth["dossiers"],
                "seconds": round(elapsed, 2),
                "records_per_s": round(n / elapsed, 1) if elapsed else None,
                "outcomes": truth["outcomes"],
                "dead_letters": truth["dead_letters"],
                "truth": str(args.truth),
            }
        )
    )
    return 0


def _produce(settings: object, plan: object, rate: float | None) -> int:
    """Send the plan's pre-encoded records (some deliberately malformed) through the SDK.

    Per-dossier order holds: BusProducer is kafka-python's idempotent producer, which mutes a
    partition while one of its batches is in flight (kafka-python 3.0.12 sets
    ``guarantee_message_order`` when idempotence is on), so a retry cannot overtake.
    """
    from lienthong.connectors.sdk import BusProducer
    from lienthong.simulators.run import produce

    producer = BusProducer(settings, linger_ms=20, batch_size=262_144)  # type: ignore[arg-type]
    try:

        def send(record: object) -> None:
            producer.send_raw(
                record.topic,  # type: ignore[attr-defined]
                record.key,  # type: ignore[attr-defined]
                record.value,  # type: ignore[attr-defined]
            )

        n = produce(plan.records(), send, rate=rate)  # type: ignore[attr-defined]
        producer.flush()
        return n
    finally:
        producer.close()
