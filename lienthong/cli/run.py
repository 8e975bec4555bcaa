"""``lienthong run CONNECTOR [ARGS...]``: run one edge process in the foreground.

Why a front door of its own: a province may run the gateway on a DMZ host and the portal
connector elsewhere, without the supervisor of ``lienthong up``. ``up`` starts its children
through this same command, so what an operator runs by hand is exactly what ``up`` runs.
"""

from __future__ import annotations

import argparse
import importlib

from lienthong.runtime import registry

# name -> (module with ``main(argv) -> int``, what it is), from lienthong.runtime.registry: the
# edges `up` starts through `lienthong run NAME` (connectors, and the demo counterparts that
# stand in for the national portal, the post and a central agency).
RUNNABLE: dict[str, tuple[str, str]] = {
    name: (c.module, c.summary) for name, c in registry.runnable().items()
}
# Also runnable by hand: one stream worker (`up` runs ``python -m lienthong.streams.worker``).
CHOICES: dict[str, tuple[str, str]] = {
    **RUNNABLE,
    "worker": (registry.get("worker").module, registry.get("worker").summary),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = "; ".join(f"{name}: {text}" for name, (_, text) in CHOICES.items())
    p = subparsers.add_parser(
        "run",
        help="run one connector (or demo counterpart) in the foreground",
        description=f"Run one connector in the foreground. {listing}.",
    )
    p.add_argument("connector", choices=sorted(CHOICES), metavar="CONNECTOR")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the connector")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    module_name, _ = CHOICES[args.connector]
    module = importlib.import_module(module_name)
    return int(module.main(list(args.args)) or 0)
