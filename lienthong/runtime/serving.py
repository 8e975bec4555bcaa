"""What every small HTTP edge process does around its aiohttp app.

Why shared: ``lienthong run NAME`` processes are stopped by the supervisor with SIGTERM and by
an operator with Ctrl-C; each must close its listener cleanly either way, and each must turn
a bad configuration into one line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import asyncio
import signal
import sys

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
