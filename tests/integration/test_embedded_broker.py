"""The embedded Tansu broker: loopback only, pid recorded, clean stop, port freed."""

from __future__ import annotations

import json
import socket
import time

import pytest

from lienthong.runtime import probe
from lienthong.runtime.broker import BrokerError, EmbeddedBroker
from tests.support.broker import embedded_settings

pytestmark = pytest.mark.integration


def test_start_listens_on_loopback_only_and_stop_frees_port(tmp_path):
    port = probe.free_port()
    broker = EmbeddedBroker(embedded_settings(tmp_path, port))
    record = broker.start()
    try:
        assert record.port == port
        assert probe.kafka_api_versions_ok("127.0.0.1", port)
        listeners = probe.listening_addresses(record.pid)
        assert listeners == [("127.0.0.1", port)], listeners
        assert (tmp_path / "broker" / "broker.json").is_file()
        log_file = tmp_path / "broker" / "tansu.log"
        deadline = time.monotonic() + 10
        while not log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # the relay writes asynchronously
        first = log_file.read_text().splitlines()[0]
        assert json.loads(first)["component"] == "broker"  # the broker logs JSON lines too
        # A second start returns the running broker instead of starting another.
        assert broker.start().pid == record.pid
    finally:
        assert broker.stop()
    assert not probe.pid_alive(record.pid)
    assert probe.port_is_free("127.0.0.1", port)
    assert broker.record() is None
    assert not broker.stop()


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        broker = EmbeddedBroker(embedded_settings(tmp_path, port))
        with pytest.raises(BrokerError, match=f"port 127.0.0.1:{port} is already in use"):
            broker.start()
