"""Entry point of one stream worker process: ``python -m lienthong.streams.worker``.

The app and its stages are built by :func:`lienthong.streams.bootstrap.bootstrap` from the
settings (nothing is built at import). Logging is configured by us (structlog JSON) and Faust
is told not to override it, so faust/mode/aiokafka records come out in the same JSON format as
ours.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lienthong-worker")
    parser.add_argument("--web-port", type=int, help="HTTP port (overrides worker.web_port)")
    args = parser.parse_args(argv)
    if args.web_port is not None:
        from lienthong.runtime.registry import get

        os.environ[get("worker").port_env() or ""] = str(args.web_port)

    from lienthong.config import ConfigError, load_settings
    from lienthong.logs import configure_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"lienthong-worker: {exc}", file=sys.stderr)
        return 2
    configure_logging("worker", settings.log_level)

    import faust

    from lienthong.runtime.metrics import install
    from lienthong.streams.bootstrap import bootstrap

    runtime = bootstrap(settings)
    # The process's metrics are this runtime's (shared code counts dead letters through them).
    install(runtime.health.metrics)
    worker = faust.Worker(
        runtime.app,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
