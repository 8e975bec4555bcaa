"""Chaos during a replay: workers SIGKILLed three times, the portal connector once, the broker
SIGSTOPped for 10 s.

The test owns its broker (an embedded Tansu of its own, so pausing it touches no other test).
Two replay-clock workers share the group; each kill happens when the victim has applied a
further ``STEP`` events since it (re)started, i.e. while it holds a backlog, whatever the
machine's speed. Then ``lienthong verify`` must find every count, alert and portal record the
ground truth expects: nothing lost, nothing counted twice; and the fake portal must hold every
portal record of the topic exactly once (by its idempotency key, the event id). ``make chaos``
runs the gateway half at full scale; this one is sized for the suite. (The postal connector
and the central adapter are not on a replay's path: a replay simulates the post's scans and
the central agencies' answers itself; their own kill/restart tests are in
test_postal_connector.py and test_central_adapter.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from lienthong.cli.dlq import read_topic
from lienthong.config import load_settings
from lienthong.connectors.kafka import kafka_python_config
from lienthong.runtime import probe
from lienthong.runtime.broker import EmbeddedBroker
from lienthong.runtime.topics import TopicAdmin
from lienthong.schemas import AvroCodec, registry_from_settings
from tests.support.broker import embedded_settings
from tests.support.portal import Connector, fake_portal, stored_keys
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# The suite's size; ``CHAOS_DOSSIERS=month`` (``make chaos-month``) replays the whole
# simulated province month (36,521 dossiers) instead, N a slice of N dossiers. Not a
# ``LIENTHONG_`` variable: the workers inherit the environment, and an unknown LIENTHONG_*
# variable is a config error to them (it was, and ``make chaos-month`` never got started).
_SCALE = os.environ.get("CHAOS_DOSSIERS", "600")
DOSSIERS: int | None = None if _SCALE == "month" else int(_SCALE)
# How much longer than the suite's size each wait may take (deadlines, not sleeps).
_FACTOR = max(1.0, (DOSSIERS or 36_521) / 600)
STEP = 150 if DOSSIERS == 600 else int(150 * _FACTOR)  # events applied between start and kill
PAUSE_S = 10  # how long the broker is frozen (the fault's length, not a wait)
# Items per portal request: the suite's few records still make many batches; the month's
# ~500,000 portal records at 5 a request would keep the connector busy for half an hour.
PORTAL_BATCH = 5 if DOSSIERS == 600 else 100


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(bootstrap, pid) of an embedded broker for this test alone."""
    broker = EmbeddedBroker(embedded_settings(tmp_path / "chaos-broker", probe.free_port()))
    record = broker.start()
    try:
        yield record.bootstrap, record.pid
    finally:
        os.kill(record.pid, signal.SIGCONT)  # never leave it frozen, even on failure
        broker.stop()


def test_replay_survives_three_worker_kills_a_connector_kill_and_a_frozen_broker(
    bus_env: dict[str, str], own_broker: tuple[str, int], start_worker, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        _chaos(bus_env, own_broker, start_worker, tmp_path, stack)


def _chaos(
    bus_env: dict[str, str],
    own_broker: tuple[str, int],
    start_worker: Any,
    tmp_path: Path,
    stack: ExitStack,
) -> None:
    bootstrap, broker_pid = own_broker
    env = {
        **bus_env,
        "LIENTHONG_BOOTSTRAP": bootstrap,
        "LIENTHONG_STREAMS__CLOCK": "replay",
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": "true",  # our own Tansu
    }
    with TopicAdmin(load_settings(environ=env)) as admin:
        admin.apply()
    workers = [start_worker(env), start_worker(env)]
    portal = stack.enter_context(fake_portal(tmp_path / "portal.log"))
    connector = Connector(env, portal, tmp_path / "connector.log", PORTAL_BATCH).start()
    stack.callback(lambda: connector.proc and connector.proc.poll() is None and connector.kill())
    truth = tmp_path / "truth.json"
    sim_log = (tmp_path / "simulate.log").open("wb")
    sim = subprocess.Popen(
        [sys.executable, "-m", "lienthong", "simulate", "--mode", "replay", "--period", "2026-01"]
        + ["--seed", "11", "--truth", str(truth)]
        + ([] if DOSSIERS is None else ["--dossiers", str(DOSSIERS)]),
        env={**os.environ, **env},
        stdout=sim_log,
        stderr=subprocess.STDOUT,
    )
    kills = 0
    for victim in (0, 1, 0):
        worker = workers[victim]
        wait_for(
            lambda w=worker: w.processed() >= STEP,
            240 * _FACTOR,
            f"worker {victim} applying {STEP} events",
        )
        worker.kill()
        kills += 1
        workers[victim] = start_worker(env)
    assert kills == 3
    wait_for(
        lambda: len(stored_keys(portal)["stored"]) >= 50,
        240 * _FACTOR,
        "the portal storing 50 records",
    )
    connector.kill()  # mid-stream: its last batch may be posted and not committed
    connector = Connector(env, portal, tmp_path / "connector.log", PORTAL_BATCH).start()

    os.kill(broker_pid, signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)
    finally:
        os.kill(broker_pid, signal.SIGCONT)

    assert sim.wait(timeout=600 * _FACTOR) == 0, (tmp_path / "simulate.log").read_text()[-2000:]
    result = subprocess.run(
        [sys.executable, "-m", "lienthong", "verify", "--truth", str(truth)]
        + ["--wait", str(int(300 * _FACTOR)), "--timeout", "10"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600 * _FACTOR,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "MISMATCH" not in result.stdout
    assert all(w.process is not None and w.process.poll() is None for w in workers)

    # Every portal record on the topic reached the portal, and exactly once.
    settings = load_settings(environ=env)
    codec = AvroCodec(registry_from_settings(settings))
    records = read_topic(kafka_python_config(settings), settings.topic("portal-status"))
    expected = {str(codec.decode(r.value).envelope.event_id) for r in records}
    assert len(expected) > int(
        truth_dossiers(truth)
    )  # at least a record per dossier, most have several
    # The connector's backlog first, from its /health: the fake portal's key list is tens of
    # MB at the month's scale, and asking for it every 0.2 s stalled the fake portal until the
    # connector's posts timed out and ten records were parked (make chaos-month, 2026-12-04).
    wait_for(
        lambda: connector.health().get("lag") == 0,
        300 * _FACTOR,
        "the portal connector's backlog to drain",
        lambda: connector.log.read_text()[-3000:],
    )
    wait_for(
        lambda: expected <= set(stored_keys(portal)["stored"]),
        300 * _FACTOR,
        "every portal record at the portal",
        lambda: connector.log.read_text()[-3000:],
        interval=2.0,
    )
    assert set(stored_keys(portal)["stored"].values()) == {1}
    assert connector.stop() == 0


def truth_dossiers(truth: Path) -> int:
    """How many dossiers the simulator replayed (its ground truth says)."""
    import json

    return int(json.loads(truth.read_text())["dossiers"])
