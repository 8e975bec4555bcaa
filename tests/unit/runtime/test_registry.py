"""The component registry (lienthong.runtime.registry) against its readers.

The supervisor, `lienthong run`, `status` and the worker take a component's command, port and
health path from it; the deploy catalogue (deploy/components.toml) must name the same port
settings.
"""

from __future__ import annotations

import pytest

from lienthong.cli.main import main
from lienthong.cli.run import choices, runnable
from lienthong.config import load_settings
from lienthong.deploy.catalogue import load_components
from lienthong.runtime import registry
from lienthong.runtime.supervisor import ComponentSpec, component_specs

# Every optional edge configured, and the demo on (the deploy tests' set-up).
from tests.unit.deploy.test_catalogue import EVERYTHING

DEMO = {"LIENTHONG_DEMO__ENABLED": "true"}


def _started(environ: dict[str, str]) -> list[ComponentSpec]:
    return component_specs(load_settings(environ=environ))


def test_the_registry_lists_every_component_the_supervisor_starts() -> None:
    started = {registry.get(s.name).name for s in _started(EVERYTHING) + _started(DEMO)}
    assert started == {c.name for c in registry.COMPONENTS}
    assert len({c.name for c in registry.COMPONENTS}) == len(registry.COMPONENTS)


def test_each_port_comes_from_its_setting() -> None:
    """Every port setting moved to a distinct value moves exactly that component's port."""
    ported = [c for c in registry.COMPONENTS if c.port_setting is not None]
    moved = {c.port_env(): str(20000 + 10 * i) for i, c in enumerate(ported)}
    settings = load_settings(environ={**EVERYTHING, **moved})
    demo = load_settings(environ={**DEMO, **moved})
    specs = component_specs(settings) + component_specs(demo)
    for spec in specs:
        component = registry.get(spec.name)
        expected = component.port(settings)
        if spec.name == "worker-2":  # worker N listens on web_port + N - 1
            expected = (expected or 0) + 1
        assert spec.port == expected, spec.name
        if component.port_setting is not None:
            assert spec.port == int(moved[component.port_env()]) + (spec.name == "worker-2")
        assert spec.kind == component.kind and spec.health_path == component.health_path
        assert spec.command[: 2 + len(component.entry)][2:] == list(component.entry)


def test_port_env_is_the_variable_config_reads() -> None:
    gateway = registry.get("gateway")
    assert gateway.port_env() == "LIENTHONG_CONNECTORS__GATEWAY__PORT"
    settings = load_settings(environ={"LIENTHONG_CONNECTORS__GATEWAY__PORT": "18123"})
    assert gateway.port(settings) == 18123


def test_unknown_component_is_named() -> None:
    with pytest.raises(KeyError, match="teleporter"):
        registry.get("teleporter")
    assert registry.find("teleporter") is None
    assert registry.get("worker-3").name == "worker"


def test_run_help_lists_every_runnable_component(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for component in registry.COMPONENTS:
        if component.run_name is not None:
            assert f"{component.run_name}: {component.summary}" in text
    assert "worker: " in text
    assert set(runnable()) == set(registry.runnable())
    assert set(choices()) == set(runnable()) | {"worker"}


def test_deploy_catalogue_names_the_registry_port_settings() -> None:
    components = load_components()
    for entry in components.component:
        component = registry.get(entry.name)
        assert entry.port_setting == component.port_setting, entry.name
        assert entry.kind == component.kind, entry.name
