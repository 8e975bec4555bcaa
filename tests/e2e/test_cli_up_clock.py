"""`lienthong up --clock replay` and the replay guard, in real subprocesses against a broker.

Why: a replay into live-clock workers fills the bus with false overdue alerts; the operator's
way in must be `up --clock replay`, and `simulate --mode replay` must refuse live workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lienthong.runtime import probe
from tests.e2e.test_cli_up_down import _connector_ports, _run

# Each test runs a whole bus: under pytest-xdist they share one worker, one after another.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

REPLAY = ["simulate", "--mode", "replay", "--period", "2026-01", "--seed", "7", "--dossiers", "3"]


def _env(tmp_path: Path, kafka_bootstrap: str) -> dict[str, str | None]:
    web_port = probe.free_port()
    return {
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_RUN_DIR": str(tmp_path / "run"),
        "LIENTHONG_WORKER__WEB_PORT": str(web_port),
        "LIENTHONG_WORKER__APP_ID": f"lienthong-e2e-clock-{web_port}",
        "LIENTHONG_TOPIC_PREFIX": f"clock{web_port}.",
        "LIENTHONG_STREAMS__CLOCK": None,  # only the command line decides
        **_connector_ports(),
    }


def _worker_clock(pid: int) -> str | None:
    """The clock setting in the worker process's own environment."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"LIENTHONG_STREAMS__CLOCK="):
            return item.split(b"=", 1)[1].decode()
    return None


def test_up_clock_replay_runs_replay_workers_and_takes_a_replay(tmp_path, kafka_bootstrap):
    env = _env(tmp_path, kafka_bootstrap)
    up = _run(["up", "--detach", "--clock", "replay", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "workers on the replay clock" in up.stdout
        report = json.loads(_run(["status", "--json"], env).stdout)
        assert report["clock"] == "replay"
        worker = next(r for r in report["components"] if r["component"] == "worker-1")
        assert _worker_clock(worker["pid"]) == "replay"
        sim = _run([*REPLAY, "--truth", str(tmp_path / "truth.json")], env)
        assert sim.returncode == 0, sim.stderr
        assert "warning" not in sim.stderr
        assert json.loads(sim.stdout.strip().splitlines()[-1])["dossiers"] == 3
    finally:
        _run(["down"], env)


def test_simulate_replay_refuses_live_workers_with_the_fix(tmp_path, kafka_bootstrap):
    env = _env(tmp_path, kafka_bootstrap)
    up = _run(["up", "--detach", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert json.loads(_run(["status", "--json"], env).stdout)["clock"] == "live"
        sim = _run([*REPLAY, "--truth", str(tmp_path / "truth.json")], env)
        assert sim.returncode == 2
        assert sim.stdout == ""
        lines = sim.stderr.strip().splitlines()
        assert len(lines) == 1, sim.stderr
        assert lines[0] == (
            "lienthong: the workers run the live clock; a replay would fire every past deadline. "
            "Restart with: lienthong down && lienthong up --clock replay (or pass --force)"
        )
        assert not (tmp_path / "truth.json").exists()
    finally:
        _run(["down"], env)
