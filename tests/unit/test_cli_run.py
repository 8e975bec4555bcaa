"""`lienthong run CONNECTOR`: every name `up` may start resolves to a runnable module."""

from __future__ import annotations

import importlib

import pytest

from lienthong.cli.main import main
from lienthong.cli.run import runnable
from lienthong.config import load_settings
from lienthong.runtime.supervisor import component_specs


@pytest.mark.parametrize("name", sorted(runnable()))
def test_each_runnable_module_has_a_main(name: str) -> None:
    module = importlib.import_module(runnable()[name][0])
    assert callable(module.main)


def test_up_starts_edges_only_through_run_with_known_names() -> None:
    specs = component_specs(load_settings(environ={"LIENTHONG_DEMO__ENABLED": "true"}))
    edges = [s for s in specs if "run" in s.command]
    assert {s.command[s.command.index("run") + 1] for s in edges} == set(runnable())


def test_unknown_connector_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "teleporter"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'teleporter'" in capsys.readouterr().err
