"""`simulate --mode replay` against the bus `up` recorded: refuse live-clock workers, with the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lienthong.cli.main import main
from lienthong.runtime.replay_guard import FIX, judge_replay

BOOTSTRAP = "127.0.0.1:19092"


def _state(clock: str | None, bootstrap: str = BOOTSTRAP) -> dict:
    state = {"supervisor_pid": 1, "bootstrap": bootstrap, "components": []}
    if clock is not None:
        state["clock"] = clock
    return state


def test_replay_clock_workers_take_the_replay_silently() -> None:
    verdict = judge_replay(_state("replay"), BOOTSTRAP, running=True, force=False)
    assert not verdict.refuse and verdict.message is None


@pytest.mark.parametrize("clock", ["live", None])
def test_live_or_unrecorded_clock_is_refused_with_the_one_line_fix(clock: str | None) -> None:
    verdict = judge_replay(_state(clock), BOOTSTRAP, running=True, force=False)
    assert verdict.refuse
    assert verdict.message is not None and "\n" not in verdict.message
    assert f"Restart with: {FIX}" in verdict.message
    assert "--force" in verdict.message


def test_force_overrides_with_a_warning() -> None:
    verdict = judge_replay(_state("live"), BOOTSTRAP, running=True, force=True)
    assert not verdict.refuse and "false alerts" in (verdict.message or "")


@pytest.mark.parametrize(
    ("state", "running"),
    [
        (None, False),  # no `up` in this run dir: a configured cluster, workers started by hand
        (_state("live"), False),  # stale state.json of a bus that is gone
        (_state("live", bootstrap="kafka-1:9092"), True),  # `up` on another cluster
    ],
    ids=["no-state", "stale", "other-cluster"],
)
def test_unknown_workers_clock_only_warns(state: dict | None, running: bool) -> None:
    verdict = judge_replay(state, BOOTSTRAP, running=running, force=False)
    assert not verdict.refuse
    assert "replay clock" in (verdict.message or "")


def _cli_env(monkeypatch: pytest.MonkeyPatch, run_dir: Path, clock: str) -> None:
    """A run dir whose state.json says a bus with ``clock`` workers is up (this process plays
    the supervisor, so its pid is alive)."""
    from lienthong.config import load_settings

    monkeypatch.setenv("LIENTHONG_RUN_DIR", str(run_dir))
    monkeypatch.setenv("LIENTHONG_BOOTSTRAP", BOOTSTRAP)
    bootstrap = load_settings().bootstrap_servers
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {**_state(clock, bootstrap), "supervisor_pid": os.getpid()}
    (run_dir / "state.json").write_text(json.dumps(state))


def test_simulate_replay_exits_2_with_the_fix_against_live_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_env(monkeypatch, tmp_path / "run", "live")
    code = main(["simulate", "--mode", "replay", "--period", "2026-01", "--dossiers", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert err.startswith("lienthong: the workers run the live clock;")
    assert err.endswith(f"Restart with: {FIX} (or pass --force)")
    assert not (tmp_path / "run" / "truth.json").exists()  # refused before anything was made
