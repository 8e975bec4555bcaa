"""Child processes that a harness (test fixtures, load and chaos scripts) starts and waits for.

Why one module: the worker fixture and the gateway chaos harness each had their own copy of
"start the command with its output in a log file, then poll ``/health`` until it says ok, unless
the child has died". Readiness is a condition the child reports, never a pause.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["ChildNotReady", "health_ok", "spawn_logged", "wait_healthy"]


class ChildNotReady(RuntimeError):
    """A child that exited, or did not answer ``/health`` ok, within its time."""


def spawn_logged(
    argv: Sequence[str], env: dict[str, str], log_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_file`` and no stdin."""
    with log_file.open("ab") as out:
        return subprocess.Popen(
            list(argv), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def health_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url``/health answers a JSON body with ``"status": "ok"``."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout_s) as response:
            return json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def wait_healthy(
    process: subprocess.Popen[bytes],
    url: str,
    timeout_s: float,
    name: str,
    log_tail: Callable[[], str] = lambda: "",
    interval_s: float = 0.2,
) -> float:
    """Seconds until ``process`` answers ``/health`` ok; :class:`ChildNotReady` if it exits
    first or ``timeout_s`` passes (with ``log_tail()`` in the message)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise ChildNotReady(f"{name} exited with {process.returncode}:\n{log_tail()}")
        if health_ok(url):
            return time.monotonic() - started
        time.sleep(interval_s)
    raise ChildNotReady(f"{name} not ready within {timeout_s}s:\n{log_tail()}")
