"""The fake National Public Service Portal and the portal connector as real processes.

Shared by the portal connector's own tests and the chaos test, which kills the connector
while a replay is running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lienthong.runtime.children import spawn_logged, wait_healthy
from lienthong.runtime.probe import free_port

TOKEN = "portal-test-token"


def get_json(url: str, token: str | None = TOKEN) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@contextmanager
def fake_portal(log: Path) -> Iterator[str]:
    """``python -m lienthong.simulators.portal`` on a free port; yields its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "lienthong.simulators.portal", "--port", str(port)]
    proc = spawn_logged([*argv, "--token", TOKEN], dict(os.environ), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, 20, "fake portal", lambda: _tail(log))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stored_keys(portal: str) -> dict[str, Any]:
    """The fake portal's idempotency bookkeeping: ``stored`` (key → copies), ``received``…"""
    return get_json(portal + "/_control/keys", None)


class Connector:
    """The connector as a real process (``python -m lienthong.connectors.portal``)."""

    def __init__(self, env: dict[str, str], url: str, log: Path, batch_size: int = 5) -> None:
        """``batch_size`` 5 by default: the tests' few records still make several batches."""
        self.health_port = free_port()
        self.env = {
            **os.environ,
            **env,
            "LIENTHONG_CONNECTORS__PORTAL__TOKEN": TOKEN,
            "LIENTHONG_CONNECTORS__PORTAL__HEALTH_PORT": str(self.health_port),
            "LIENTHONG_CONNECTORS__PORTAL__BATCH_SIZE": str(batch_size),
            "LIENTHONG_CONNECTORS__PORTAL__BASE_DELAY_S": "0.05",
            "LIENTHONG_CONNECTORS__PORTAL__MAX_DELAY_S": "0.4",
            "LIENTHONG_CONNECTORS__PORTAL__MAX_ATTEMPTS": "12",
            "LIENTHONG_CONNECTORS__PORTAL__RATE_PER_S": "50",
        }
        self.url = url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Connector:
        argv = [sys.executable, "-m", "lienthong.connectors.portal", "--portal-url", self.url]
        self.proc = spawn_logged(argv, self.env, self.log)
        wait_healthy(
            self.proc,
            f"http://127.0.0.1:{self.health_port}",
            timeout_s,
            "portal connector",
            lambda: _tail(self.log),
        )
        return self

    def health(self) -> dict[str, Any]:
        return get_json(f"http://127.0.0.1:{self.health_port}/health", None)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        return self.proc.wait(15)
