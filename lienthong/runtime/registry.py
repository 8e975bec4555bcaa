"""The component registry: every process of the bus, one line each.

Why one list: the supervisor (``lienthong up``), ``lienthong run``, ``lienthong status`` and the
worker all need a component's command, port, health page and demo counterpart; each used to
keep its own copy. A component declares here what runs it (the module with ``main(argv)``),
which setting holds its port, its health path, the fake that stands in for its outside system
in the demo, and the settings it needs; when it starts (configured or demo) stays in
:func:`lienthong.runtime.supervisor.component_specs`. Adding a component: its own module with
``main`` and one line below. No component module is imported here, so reading the registry is
cheap (``lienthong run --help``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from lienthong.config import Settings

__all__ = ["COMPONENTS", "Component", "find", "get", "runnable", "setting"]


@dataclass(frozen=True)
class Component:
    """What runs one component and where it answers."""

    name: str  # the supervisor's (and deploy catalogue's) component name
    kind: str  # worker | connector | registry | probe | console | service (demo fake) | job
    module: str  # the module whose ``main(argv) -> int`` runs it in the foreground
    summary: str
    # What follows ``python -m``: ``lienthong run NAME`` for an edge process.
    entry: tuple[str, ...]
    port_setting: str | None  # dotted Settings key of its HTTP port (None: no port)
    health_path: str | None = "/health"  # None: the supervisor watches the process only
    demo_counterpart: str | None = None  # the demo fake standing in for its outside system
    needs: tuple[str, ...] = ()  # settings it needs (dotted keys), for docs and checks
    oneshot: bool = False  # a job that finishes (exit 0) is done, not crashed

    @property
    def run_name(self) -> str | None:
        """The NAME of ``lienthong run NAME``, when it is started that way."""
        return self.entry[2] if self.entry[:2] == ("lienthong", "run") else None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", *self.entry, *args]

    def port(self, settings: Settings) -> int | None:
        return None if self.port_setting is None else int(setting(settings, self.port_setting))

    def port_env(self) -> str | None:
        """The environment variable that sets the port (``LIENTHONG_A__B``)."""
        if self.port_setting is None:
            return None
        return "LIENTHONG_" + self.port_setting.upper().replace(".", "__")


def _run(name: str) -> tuple[str, ...]:
    return ("lienthong", "run", name)


# fmt: off
COMPONENTS: tuple[Component, ...] = (
    Component("worker", "worker", "lienthong.streams.worker", "stream worker (Faust agents)", ("lienthong.streams.worker",), "worker.web_port", needs=("worker.app_id", "streams.clock")),  # noqa: E501
    Component("schema-registry", "registry", "lienthong.schemas.rest", "Confluent read API of the embedded registry", _run("schema-registry"), "schema_registry_rest.port"),  # noqa: E501
    Component("broker-probe", "probe", "lienthong.runtime.broker_probe", "broker liveness and consumer group lag", _run("broker-probe"), "probe.port"),  # noqa: E501
    Component("gateway", "connector", "lienthong.connectors.gateway.app", "ingest gateway for department systems", _run("gateway"), "connectors.gateway.port", needs=("connectors.gateway.clients_file",)),  # noqa: E501
    Component("console", "console", "lienthong.connectors.console.app", "monitoring console in the browser", _run("console"), "console.port", health_path=None, needs=("console.users_file",)),  # noqa: E501
    Component("portal-connector", "connector", "lienthong.connectors.portal", "national portal connector", _run("portal"), "connectors.portal.health_port", demo_counterpart="fake-portal", needs=("connectors.portal.url",)),  # noqa: E501
    Component("postal-connector", "connector", "lienthong.connectors.postal", "postal service connector", _run("postal"), "connectors.postal.port", demo_counterpart="fake-postal", needs=("connectors.postal.url",)),  # noqa: E501
    Component("central-adapter", "connector", "lienthong.connectors.central", "central vertical agency adapter", _run("central"), "connectors.central.port", demo_counterpart="fake-central", needs=("connectors.central.endpoints",)),  # noqa: E501
    Component("fake-portal", "service", "lienthong.simulators.portal", "demo: fake national portal", _run("fake-portal"), "demo.portal_port"),  # noqa: E501
    Component("fake-postal", "service", "lienthong.simulators.postal", "demo: fake postal service", _run("fake-postal"), "demo.postal_port"),  # noqa: E501
    Component("fake-central", "service", "lienthong.simulators.central", "demo: fake central agency system", _run("fake-central"), "demo.central_port"),  # noqa: E501
    Component("simulator", "job", "lienthong.cli.simulate", "demo: live province simulator", ("lienthong", "simulate"), None, health_path=None, needs=("demo.simulator_rate",), oneshot=True),  # noqa: E501
)
# fmt: on

_BY_NAME = {component.name: component for component in COMPONENTS}


def get(name: str) -> Component:
    """The component called ``name`` (``worker-2`` is the worker); KeyError names it."""
    component = find(name)
    if component is None:
        raise KeyError(f"no component {name!r} in lienthong.runtime.registry")
    return component


def find(name: str) -> Component | None:
    """Like :func:`get`, None for a name the registry does not know (an older state file)."""
    return _BY_NAME.get("worker" if name.startswith("worker-") else name)


def runnable() -> dict[str, Component]:
    """Components ``up`` starts through ``lienthong run NAME``, by NAME."""
    return {c.run_name: c for c in COMPONENTS if c.run_name is not None}


def setting(settings: Settings, dotted: str) -> Any:
    """The value of a dotted settings key (AttributeError: no such setting)."""
    node: Any = settings
    for part in dotted.split("."):
        node = getattr(node, part)
    return node
