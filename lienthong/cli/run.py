"""``lienthong run CONNECTOR [ARGS...]``: run one edge process in the foreground.

Why a front door of its own: a province may run the gateway on a DMZ host and the portal
connector elsewhere, without the supervisor of ``lienthong up``. ``up`` starts its children
through this same command, so what an operator runs by hand is exactly what ``up`` runs.
"""

from __future__ import annotations

import argparse
import importlib

# name -> module with ``main(argv) -> int``. Connectors are the bus's edges; the fakes are
# the demo counterparts that stand in for the national portal, the post and a central agency.
RUNNABLE: dict[str, tuple[str, str]] = {
    "gateway": ("lienthong.connectors.gateway.app", "ingest gateway for department systems"),
    "portal": ("lienthong.connectors.portal", "national portal connector"),
    "postal": ("lienthong.connectors.postal", "postal service connector"),
    "central": ("lienthong.connectors.central", "central vertical agency adapter"),
    "broker-probe": ("lienthong.runtime.broker_probe", "broker liveness and consumer group lag"),
    "console": ("lienthong.connectors.console.app", "monitoring console in the browser"),
    "schema-registry": ("lienthong.schemas.rest", "Confluent read API of the embedded registry"),
    "fake-portal": ("lienthong.simulators.portal", "demo: fake national portal"),
    "fake-postal": ("lienthong.simulators.postal", "demo: fake postal service"),
    "fake-central": ("lienthong.simulators.central", "demo: fake central agency system"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = "; ".join(f"{name}: {text}" for name, (_, text) in RUNNABLE.items())
    p = subparsers.add_parser(
        "run",
        help="run one connector (or demo counterpart) in the foreground",
        description=f"Run one connector in the foreground. {listing}.",
    )
    p.add_argument("connector", choices=sorted(RUNNABLE), metavar="CONNECTOR")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the connector")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    module_name, _ = RUNNABLE[args.connector]
    module = importlib.import_module(module_name)
    return int(module.main(list(args.args)) or 0)
