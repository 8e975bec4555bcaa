"""``lienthong run CONNECTOR [ARGS...]``: run one edge process in the foreground.

Why a front door of its own: a province may run the gateway on a DMZ host and the portal
connector elsewhere, without the supervisor of ``lienthong up``. ``up`` starts its children
through this same command, so what an operator runs by hand is exactly what ``up`` runs.
"""

from __future__ import annotations

import argparse
import importlib

from lienthong.runtime import registry


def runnable() -> dict[str, tuple[str, str]]:
    """NAME -> (module with ``main(argv) -> int``, what it is), from the registry.

    The edges ``up`` starts through ``lienthong run NAME``: connectors, and the demo
    counterparts that stand in for the national portal, the post and a central agency. Read
    when asked, not at import, so a component added to the registry is listed at once.
    """
    return {name: (c.module, c.summary) for name, c in registry.runnable().items()}


def choices() -> dict[str, tuple[str, str]]:
    """:func:`runnable`, and one stream worker by hand (``up`` runs the worker module)."""
    worker = registry.get("worker")
    return {**runnable(), "worker": (worker.module, worker.summary)}


def register(subparsers: argparse._SubParsersAction) -> None:
    known = choices()
    listing = "; ".join(f"{name}: {text}" for name, (_, text) in known.items())
    p = subparsers.add_parser(
        "run",
        help="run one connector (or demo counterpart) in the foreground",
        description=f"Run one connector in the foreground. {listing}.",
    )
    p.add_argument("connector", choices=sorted(known), metavar="CONNECTOR")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the connector")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    module_name, _ = choices()[args.connector]
    module = importlib.import_module(module_name)
    return int(module.main(list(args.args)) or 0)
