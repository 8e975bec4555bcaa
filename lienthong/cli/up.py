"""``lienthong up | down | status``: run, stop and inspect the whole bus."""

from __future__ import annotations

import argparse
import json
import os
from datetime import date

from lienthong.config import Settings, load_settings
from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up", help="start broker (unless a cluster is configured), topics and workers"
    )
    up.add_argument(
        "--detach", "-d", action="store_true", help="run as a background group and return"
    )
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    up.add_argument(
        "--demo",
        action="store_true",
        help="also start the fake portal, fake post, portal connector and live simulator",
    )
    up.add_argument(
        "--clock",
        choices=("live", "replay"),
        default=None,
        help="the workers' clock: live = wall clock (default, [streams] clock); replay = "
        "event time, for `lienthong simulate --mode replay`",
    )
    up.set_defaults(func=cmd_up)

    down = subparsers.add_parser("down", help="stop everything `up` started")
    down.set_defaults(func=cmd_down)

    status = subparsers.add_parser("status", help="each component, its pid/port and health")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)


def cmd_up(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.runtime.supervisor import (
        Supervisor,
        SupervisorError,
        collect_status,
        format_status,
        run_detached,
    )

    if args.demo and args.clock == "replay":
        raise UsageError("--demo runs the live simulator, which needs --clock live")
    # Through the environment so the children (and a detached supervisor) see them too.
    if args.demo:
        os.environ["LIENTHONG_DEMO__ENABLED"] = "true"
    if args.clock is not None:
        os.environ["LIENTHONG_STREAMS__CLOCK"] = args.clock
    settings = load_settings()
    configure_logging("supervisor", settings.log_level)
    try:
        if args.detach:
            pid = run_detached(settings, args.timeout)
            print(f"bus started in the background (supervisor pid {pid})")
            print(format_status(collect_status(settings)))
            print(where_to_look(settings))
            return 0
        supervisor = Supervisor(settings)
        try:
            supervisor.start_all()
        except BaseException:
            supervisor.stop_all()
            raise
        healthy = supervisor.wait_healthy(args.timeout)
        if healthy:
            print(format_status(collect_status(settings)), flush=True)
            print(where_to_look(settings), flush=True)
            print("bus is up; Ctrl-C or `lienthong down` stops it", flush=True)
        else:
            print("some components are not healthy yet; see `lienthong status`", flush=True)
        return supervisor.run_forever()
    except SupervisorError as exc:
        raise UsageError(str(exc)) from None


def where_to_look(settings: Settings) -> str:
    worker = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    lines = [
        "where to look:",
        f"  live counts (JSON)   {worker}/stats?period=month:{date.today():%Y-%m}",
        f"  worker health        {worker}/health",
        "  terminal view        .venv/bin/lienthong stats --watch",
        "  component status     .venv/bin/lienthong status",
        f"  broker and lag       http://{settings.probe.host}:{settings.probe.port}/metrics",
    ]
    if settings.schema_registry_url is None:
        rest = settings.schema_registry_rest
        lines.insert(3, f"  schema registry      http://{rest.host}:{rest.port}/subjects")
    gw = settings.connectors.gateway
    scheme = "https" if gw.tls_certfile else "http"
    lines.insert(3, f"  ingest gateway       {scheme}://{gw.host}:{gw.port}/openapi.json")
    if settings.demo.enabled:
        portal = settings.demo.portal_url or f"http://127.0.0.1:{settings.demo.portal_port}"
        lines.insert(3, f"  fake national portal {portal}/records  {portal}/stats")
        if gw.clients_file is None:
            from lienthong.runtime.demo import demo_keys_file

            lines.insert(5, f"  demo gateway API keys {demo_keys_file(settings)}")
    console = settings.console
    if console.users_file is not None or settings.demo.enabled:  # started by `up` then
        at = next(i for i, line in enumerate(lines) if "ingest gateway" in line) + 1
        lines.insert(at, f"  console (browser)    http://{console.host}:{console.port}/")
        if console.users_file is None:
            keys = settings.run_dir / "demo" / "console-keys.json"
            lines.insert(at + 1, f"  demo console keys    {keys}")
    return "\n".join(lines)


def cmd_down(args: argparse.Namespace) -> int:
    from lienthong.runtime.supervisor import stop_detached

    settings = load_settings()
    configure_logging("supervisor", settings.log_level)
    stopped = stop_detached(settings)
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from lienthong.runtime.supervisor import collect_status, format_status

    settings = load_settings()
    configure_logging("cli", "WARNING")
    report = collect_status(settings)
    print(json.dumps(report, indent=2) if args.json else format_status(report))
    return 0 if report["healthy"] else 1
