"""End to end: replay into real workers, then ``lienthong verify`` against the ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lienthong", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _verify(env: dict[str, str], truth: Path) -> subprocess.CompletedProcess:
    # A generous deadline for a loaded machine: verify returns as soon as every figure matches.
    return _cli(
        env, "verify", "--truth", str(truth), "--wait", "300", "--timeout", "5", timeout=420
    )


def test_replay_with_every_fault_verifies(bus_env, catalogue_topics, start_worker, tmp_path):
    env = {**bus_env, "LIENTHONG_STREAMS__CLOCK": "replay"}
    start_worker(env)
    truth = tmp_path / "truth.json"
    sim = _cli(
        env,
        "simulate",
        "--mode",
        "replay",
        "--period",
        "2026-01",
        "--seed",
        "7",
        "--dossiers",
        "200",
        "--all-faults",
        "0.05",
        "--truth",
        str(truth),
    )
    assert sim.returncode == 0, sim.stderr[-2000:]
    result = _verify(env, truth)
    assert result.returncode == 0, result.stdout
    assert "dead letters IllegalTransition" in result.stdout
    assert "MISMATCH" not in result.stdout


def test_worker_sigkill_during_replay_then_restart_verifies(
    bus_env, catalogue_topics, start_worker, tmp_path
):
    env = {**bus_env, "LIENTHONG_STREAMS__CLOCK": "replay"}
    worker = start_worker(env)
    truth = tmp_path / "truth.json"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lienthong",
            "simulate",
            "--period",
            "2026-01",
            "--seed",
            "7",
            "--dossiers",
            "400",
            "--rate",
            "2000",
            "--truth",
            str(truth),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Mid-stream (≈4,400 records): the worker has processed some, not all. Whether the
    # producer has finished by then depends on the machine's speed, and does not matter: the
    # kill lands while the worker holds a backlog.
    done = wait_for(lambda: worker.processed() >= 100 and worker.processed(), 120, "100 processed")
    worker.kill()
    assert done < 2000, f"the worker had processed {done} records before the kill"
    start_worker(env)
    assert sim.wait(timeout=120) == 0
    result = _verify(env, truth)
    assert result.returncode == 0, result.stdout
