"""``lienthong broker start|stop|status``: the embedded Tansu broker on its own."""

from __future__ import annotations

import argparse

from lienthong.config import load_settings
from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("broker", help="embedded broker (used when no cluster is set)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (
        ("start", "start the embedded broker on loopback and wait until it serves Kafka"),
        ("stop", "stop the embedded broker"),
        ("status", "is the embedded broker running and answering"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.set_defaults(func=cmd_broker, action=name)


def cmd_broker(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.runtime import probe
    from lienthong.runtime.broker import BrokerError, EmbeddedBroker

    settings = load_settings()
    configure_logging("broker", "WARNING")
    if not settings.uses_embedded_broker:
        print(
            f"a Kafka cluster is configured ({settings.bootstrap_servers}); "
            "the embedded broker is not used"
        )
        return 0 if args.action != "start" else 2
    broker = EmbeddedBroker(settings)
    try:
        if args.action == "start":
            record = broker.start()
            print(f"embedded broker running: pid {record.pid}, bootstrap {record.bootstrap}")
            print(f"log: {record.log_file}")
            return 0
        if args.action == "stop":
            print("embedded broker stopped" if broker.stop() else "embedded broker not running")
            return 0
    except BrokerError as exc:
        raise UsageError(str(exc)) from None
    record = broker.record()
    if record is None:
        print("embedded broker: not running")
        return 1
    ok = probe.kafka_api_versions_ok(record.host, record.port)
    listeners = ", ".join(f"{a}:{p}" for a, p in probe.listening_addresses(record.pid))
    print(
        f"embedded broker: pid {record.pid}, bootstrap {record.bootstrap}, "
        f"{'answering' if ok else 'NOT answering'}, listening on {listeners or '?'}"
    )
    return 0 if ok else 1
