"""What every small HTTP edge process does around its aiohttp app.

Why shared: ``lienthong run NAME`` processes are stopped by the supervisor with SIGTERM and by
an operator with Ctrl-C; each must close its listener cleanly either way, and each must turn
a bad configuration into one line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from lienthong.config import ConfigError, Settings, load_settings


async def serve_until_signal(app: web.Application, host: str, port: int) -> None:
    """Listen on host:port until SIGTERM or SIGINT, then clean the app up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def settings_or_report(prog: str) -> Settings | None:
    """The settings, or None after printing the one-line config error for ``prog``."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def host_port_command(
    argv: list[str] | None,
    *,
    component: str,
    description: str,
    section: str,
    defaults: Callable[[Settings], tuple[str, int]],
) -> tuple[Settings, str, int] | None:
    """Parse ``lienthong run COMPONENT [--host H] [--port P]``, load settings, set up logs.

    None after the config error was printed (exit code 2). ``defaults`` reads the host and
    port of the component's settings ``section`` (named in the help text).
    """
    from lienthong.logs import configure_logging

    parser = argparse.ArgumentParser(prog=f"lienthong run {component}", description=description)
    parser.add_argument("--host", help=f"default: {section}.host")
    parser.add_argument("--port", type=int, help=f"default: {section}.port")
    args = parser.parse_args(argv)
    settings = settings_or_report(f"lienthong {component}")
    if settings is None:
        return None
    configure_logging(component, settings.log_level)
    host, port = defaults(settings)
    return settings, args.host or host, port if args.port is None else args.port
