"""The ``lienthong`` command: argparse front door that dispatches to one module per command.

Each command module defines ``register(subparsers)`` which adds its parser and sets
``func=handler`` where ``handler(args) -> int`` returns the exit code. Commands that need
settings call :func:`lienthong.config.load_settings` themselves, so ``lienthong calendar ...``
works without any broker configuration.

Errors a user can fix (bad config, bad input) are printed as one line on stderr and exit 2;
they are never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lienthong import __version__
from lienthong.config import ConfigError

# Command modules under lienthong.cli, in the order shown by --help.
COMMANDS: tuple[str, ...] = (
    "up",
    "run",
    "broker",
    "topics",
    "pki",
    "audit",
    "documents",
    "schemas",
    "calendar",
    "deadline",
    "dlq",
    "simulate",
    "verify",
    "stats",
    "portal",
    "deploy",
)


class UsageError(Exception):
    """Invalid input on the command line; the message is one line shown to the user."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lienthong",
        description="One-stop-shop (một cửa liên thông) integration bus.",
    )
    parser.add_argument("--version", action="version", version=f"lienthong {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"lienthong.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError) as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
