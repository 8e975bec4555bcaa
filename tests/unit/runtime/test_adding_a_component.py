"""Adding a component takes its own module and one registry line, nothing else.

Why a test: the supervisor, ``lienthong run`` and ``status`` used to each need an edit for a
new process. Here a component whose module and plan live in a test module is put into the
registry (one line) and every reader sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lienthong.cli.main import main
from lienthong.config import load_settings
from lienthong.runtime import registry
from lienthong.runtime.supervisor import collect_status, component_specs, format_status
from tests.unit.runtime import heliograph

LINE = registry.Component(
    "heliograph", "service", "tests.unit.runtime.heliograph", "test: signals by mirror",
    ("lienthong", "run", "heliograph"), None, health_path=None,
    plan="tests.unit.runtime.heliograph:plan",
)  # fmt: skip
DEMO = {"LIENTHONG_DEMO__ENABLED": "true"}


@pytest.fixture
def added(monkeypatch: pytest.MonkeyPatch) -> registry.Component:
    monkeypatch.setattr(registry, "COMPONENTS", (*registry.COMPONENTS, LINE))
    return LINE


def test_the_supervisor_starts_it_from_its_plan(added: registry.Component) -> None:
    specs = component_specs(load_settings(environ=DEMO))
    assert specs[-1].name == "heliograph"
    assert specs[-1].command == [sys.executable, "-m", "lienthong", "run", "heliograph"] + [
        "--mirror",
        "http://127.0.0.1:6080",  # the fake portal's URL, started earlier in the plan
    ]
    assert specs[-1].env == {"HELIOGRAPH_MODE": "demo"} and specs[-1].kind == "service"
    assert "heliograph" not in {s.name for s in component_specs(load_settings(environ={}))}


def test_lienthong_run_lists_and_runs_it(
    added: registry.Component, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "heliograph: test: signals by mirror" in " ".join(capsys.readouterr().out.split())
    heliograph.RAN.clear()
    assert main(["run", "heliograph", "--mirror", "x"]) == 0
    assert heliograph.RAN == [["--mirror", "x"]]


def test_status_describes_it(added: registry.Component, tmp_path: Path) -> None:
    settings = load_settings(environ={"LIENTHONG_RUN_DIR": str(tmp_path)})
    state = {"supervisor_pid": os.getpid(), "components": []}
    state["components"] = [
        {"name": "heliograph", "kind": "service", "pid": os.getpid(), "port": None}
    ]
    (tmp_path / "state.json").write_text(json.dumps(state))
    report = collect_status(settings)
    [row] = [r for r in report["components"] if r["component"] == "heliograph"]
    assert row["summary"] == "test: signals by mirror" and row["healthy"]
    assert "heliograph" in format_status(report)


def test_every_demo_fake_comes_before_the_connector_it_stands_in_for() -> None:
    """The order of the lines is the start order; a connector's plan reads its fake's URL."""
    names = [c.name for c in registry.COMPONENTS]
    for component in registry.COMPONENTS:
        if component.demo_counterpart is not None:
            assert names.index(component.demo_counterpart) < names.index(component.name)


def test_every_plan_resolves_without_importing_a_server() -> None:
    """Planning ``up --demo`` imports no Faust, aiohttp, Kafka client or metrics server."""
    code = (
        "import sys\n"
        "from lienthong.config import load_settings\n"
        "from lienthong.runtime.supervisor import component_specs\n"
        "component_specs(load_settings(environ={'LIENTHONG_DEMO__ENABLED': 'true'}))\n"
        "heavy = ('faust', 'aiohttp', 'kafka', 'prometheus_client')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert all(c.plan.count(":") == 1 for c in registry.COMPONENTS)
