"""Resolve a real Kafka-compatible broker for the test session.

Order: ``LIENTHONG_BOOTSTRAP`` (an existing cluster) → the embedded Tansu broker started on a
free loopback port → a testcontainers Kafka container when a Docker engine answers. Under
``CI=true`` the caller fails instead of skipping when none can be had.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lienthong.config import load_settings
from lienthong.runtime import probe
from lienthong.runtime.broker import BrokerError, EmbeddedBroker, locate_binary

REPO = Path(__file__).resolve().parents[2]


class NoBroker(Exception):
    """No broker could be had; the message lists what was tried."""


def embedded_settings(run_dir: Path, port: int):
    env = {
        "LIENTHONG_RUN_DIR": str(run_dir),
        "LIENTHONG_EMBEDDED__PORT": str(port),
    }
    # Reuse the project's extracted binary rather than copying 40 MB per session.
    binary = locate_binary(load_settings(environ={"LIENTHONG_RUN_DIR": str(REPO / ".lienthong")}))
    env["LIENTHONG_EMBEDDED__BINARY"] = str(binary)
    return load_settings(environ=env)


@contextmanager
def resolve_broker(run_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield (bootstrap, how) for the session's broker and clean it up afterwards."""
    tried: list[str] = []
    external = os.environ.get("LIENTHONG_BOOTSTRAP")
    if external:
        yield external, "LIENTHONG_BOOTSTRAP"
        return
    tried.append("LIENTHONG_BOOTSTRAP not set")

    try:
        settings = embedded_settings(run_dir, probe.free_port())
        broker = EmbeddedBroker(settings)
        record = broker.start()
    except BrokerError as exc:
        tried.append(f"embedded broker: {exc}")
    else:
        try:
            yield record.bootstrap, f"embedded tansu pid {record.pid}"
        finally:
            broker.stop()
        return

    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as exc:
        tried.append(f"testcontainers: no Docker engine ({exc.__class__.__name__})")
    else:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server(), "testcontainers kafka"
        return
    raise NoBroker("; ".join(tried))
