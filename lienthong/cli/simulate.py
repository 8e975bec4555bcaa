"""``lienthong simulate``: produce a province's dossiers and the ground truth.

Modes: ``replay`` (simulated clock over a period, as fast as the broker takes it), ``live``
(real time: records leave when the wall clock reaches their event time, until Ctrl-C or
SIGTERM; see ``lienthong.simulators.live``) and ``paced`` (a window of the past ending now,
sent at ``--rate`` records/s: event times are in the past).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lienthong.config import Settings, load_settings
from lienthong.logs import configure_logging, get_logger

if TYPE_CHECKING:
    from lienthong.runtime.registry import Launch, PlanContext

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


def start_plan(context: PlanContext) -> list[Launch]:
    """What ``up --demo`` runs as the registry's ``simulator`` job: a live province.

    A day of warm-up, then new dossiers now, at demo.simulator_rate; around the clock so a
    demo at night or on a weekend still shows receipts and steps (appointments keep the
    official working calendar). Postal dossiers order at the fake post (never at a real
    post) and the demo's central agency is left to fake-central via the adapter.
    """
    from lienthong.runtime.demo import DEMO_CENTRAL_AGENCY
    from lienthong.runtime.registry import Launch

    demo = context.settings.demo
    if not demo.enabled:
        return []
    args = ["--mode", "live", "--rate", str(demo.simulator_rate)]
    args += ["--seed", str(demo.simulator_seed), "--around-the-clock"]
    if context.url_of("fake-postal") is not None:
        args += ["--postal", "connector"]
    if context.url_of("fake-central") is not None:
        args += ["--leave-out-agency", DEMO_CENTRAL_AGENCY]
    return [Launch(args=tuple(args))]


def register(subparsers: argparse._SubParsersAction) -> None:
    from lienthong.simulators.faults import FAULTS
    from lienthong.simulators.province import SimConfig

    p = subparsers.add_parser("simulate", help="produce simulated dossiers and a ground truth")
    p.add_argument("--mode", choices=("replay", "live", "paced"), default="replay")
    p.add_argument("--period", default=None, help="YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--leave-out-agency",
        action="append",
        default=[],
        metavar="CODE",
        help="simulate no procedure routed through this agency (a real connector drives it)",
    )
    p.add_argument(
        "--dossiers", type=int, default=None, help="replay/paced: override the derived count"
    )
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
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="records/s: live = from the first second, in working time (at any hour with "
        "--around-the-clock); paced = send rate (default 50)",
    )
    p.add_argument(
        "--warmup-days",
        type=float,
        default=1.0,
        help="live: recent past produced at once at the province volume (default 1 day)",
    )
    p.add_argument(
        "--around-the-clock",
        action="store_true",
        help="live: counters and officers work 24/7 (demo at night); due times stay legal",
    )
    p.add_argument(
        "--postal",
        choices=("simulated", "connector"),
        default="simulated",
        help="live: 'connector' orders pickups/deliveries on postal-orders and leaves the "
        "scans and the by-post return to the postal connector and the post (default: the "
        "simulator writes them itself)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="live: stop by itself after this long (default: until Ctrl-C / SIGTERM)",
    )
    p.add_argument(
        "--paced-days",
        "--live-days",
        dest="paced_days",
        type=int,
        default=30,
        help="paced: window of the past ending now",
    )
    p.add_argument("--dry-run", action="store_true", help="do not produce; truth only")
    p.add_argument(
        "--force",
        action="store_true",
        help="replay: go ahead even when the running bus's workers use the live clock",
    )
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
        now = datetime.now(VN_TZ).replace(second=0, microsecond=0)
        if args.mode == "live":
            if args.period is not None:
                raise ValueError("--period is for replay/paced; live runs from now")
            if args.dossiers is not None:
                raise ValueError("--dossiers is for replay/paced; live arrivals follow --rate")
            if args.warmup_days < 0 or (args.rate is not None and args.rate <= 0):
                raise ValueError("--warmup-days must be >= 0 and --rate > 0")
            period = Period("live", now - timedelta(days=args.warmup_days), now)
        elif args.postal != "simulated":
            raise ValueError(
                "--postal connector is for live mode: a replay cannot wait for the post"
            )
        elif args.mode == "paced" and args.period is None:
            period = Period(f"paced:{now:%Y%m%d%H%M}", now - timedelta(days=args.paced_days), now)
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
        postal=args.postal,
        **rates,
    )
    faults = FaultConfig(
        {f: (args.all_faults if args.all_faults is not None else getattr(args, f)) for f in FAULTS}
    )
    args.truth = args.truth or settings.run_dir / "truth.json"
    if args.mode == "replay" and not args.dry_run:
        _check_replay_target(settings, args.force)
    if args.mode == "live":
        if args.dry_run:
            raise UsageError("--dry-run has no meaning in live mode")
        try:
            return _live(settings, args, config, faults, kinds, log)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        plan = Plan(config, faults, encode, kinds)
    except ValueError as exc:  # e.g. more procedures asked than the catalogue has
        raise UsageError(str(exc)) from None
    started = time.monotonic()
    if args.dry_run:
        n = sum(1 for _ in plan.records())
    else:
        n = _produce(settings, plan, rate=args.rate or (50.0 if args.mode == "paced" else None))
    elapsed = time.monotonic() - started
    truth = plan.truth_json()
    truth["meta"]["mode"] = args.mode
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


def _check_replay_target(settings: Settings, force: bool) -> None:
    """Refuse (exit 2, one line with the fix) a replay into live-clock workers; warn when the
    workers' clock cannot be known (see lienthong.runtime.replay_guard)."""
    from lienthong.cli.main import UsageError
    from lienthong.runtime import probe
    from lienthong.runtime.replay_guard import judge_replay
    from lienthong.runtime.supervisor import StateFile

    state = StateFile(settings).read()
    pid = int((state or {}).get("supervisor_pid") or 0)
    running = pid > 0 and probe.pid_alive(pid)
    verdict = judge_replay(state, settings.bootstrap_servers, running=running, force=force)
    if verdict.refuse:
        raise UsageError(verdict.message or "refused")
    if verdict.message:
        print(f"lienthong: warning: {verdict.message}", file=sys.stderr)


def _live(
    settings: object,
    args: argparse.Namespace,
    config: object,
    faults: object,
    kinds: tuple[str, ...],
    log: object,
) -> int:
    """Real-time mode: run until Ctrl-C/SIGTERM (or --duration), then write the truth."""
    from lienthong.connectors.sdk import BusProducer
    from lienthong.schemas import decode, encode
    from lienthong.simulators.live import LiveConfig, LiveSimulation, WallClock, run_with_signals
    from lienthong.simulators.truth import write_truth

    clock = WallClock()
    live = LiveConfig(
        rate=args.rate or 50.0,
        warmup_days=args.warmup_days,
        around_the_clock=args.around_the_clock,
        duration_s=args.duration,
    )
    # Connect first: t0 (the start of real time) is taken once the producer is ready.
    producer = BusProducer(settings, linger_ms=5, batch_size=262_144)  # type: ignore[arg-type]
    try:
        sim = LiveSimulation(
            config,  # type: ignore[arg-type]
            live,
            faults,  # type: ignore[arg-type]
            encode,
            decode,
            clock,
            kinds,
        )
    except BaseException:
        producer.close()
        raise
    log.info(  # type: ignore[attr-defined]
        "live_started",
        t0=sim.t0.isoformat(),
        warmup_from=sim.warm_start.isoformat(),
        rate=live.rate,
        records_per_dossier=round(sim.records_per_dossier, 2),
        dossiers_per_s=round(sim.live_intensity, 3),
        around_the_clock=live.around_the_clock,
        postal=config.postal,  # type: ignore[attr-defined]
    )
    # (Short linger: in live mode a record is due now, and latency tests measure from here.)
    started = time.monotonic()
    try:
        n, why = run_with_signals(sim, _sender(producer), clock)
        producer.flush()
    finally:
        producer.close()
    elapsed = time.monotonic() - started
    truth = sim.truth_json()
    write_truth(args.truth, truth)
    log.info(  # type: ignore[attr-defined]
        "simulation_done",
        mode="live",
        stopped_by=why,
        records=n,
        warmup_records=sim.stats.warmup_records,
        dossiers=sim.stats.arrivals,
        open_dossiers=sim.open_dossiers,
        dropped_out_of_hours=sim.stats.dropped_out_of_hours,
        seconds=round(elapsed, 2),
    )
    print(
        json.dumps(
            {
                "mode": "live",
                "stopped_by": why,
                "records": n,
                "warmup_records": sim.stats.warmup_records,
                "by_topic": dict(sim.stats.by_topic),
                "dossiers": truth["dossiers"],
                "open_dossiers": sim.open_dossiers,
                "seconds": round(elapsed, 2),
                "t0": sim.t0.isoformat(),
                "stopped_at": truth["meta"]["stopped_at"],
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
        n = produce(plan.records(), _sender(producer), rate=rate)  # type: ignore[attr-defined]
        producer.flush()
        return n
    finally:
        producer.close()


def _sender(producer: Any) -> Callable[[Any], None]:
    """Send a planned record (catalogue topic, key, encoded value) through the bus producer;
    the replay, paced and live loops all hand records to this."""

    def send(record: Any) -> None:
        producer.send_raw(record.topic, record.key, record.value)

    return send
