"""The component registry: every process of the bus, one line each.

Why one list: the supervisor (``lienthong up``), ``lienthong run``, ``lienthong status`` and the
worker all need a component's command, port, health page and demo counterpart; each used to
keep its own copy. A component declares here what runs it (the module with ``main(argv)``),
which setting holds its port, its health path, the fake that stands in for its outside system
in the demo, the settings it needs, and its start plan: a function beside its own code,
``plan(context) -> list[Launch]``, that says whether ``up`` starts it and with which arguments
and environment. Adding a component: its own module with ``main`` and a plan, and one line
below. No component module is imported here, and plans are imported only when ``up`` asks for
them, so reading the registry is cheap (``lienthong run --help``).

The order of the lines is the order ``up`` starts them in: a demo fake comes right before the
connector it stands in for, so the connector's plan finds the URL the fake serves.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lienthong.config import Settings

if TYPE_CHECKING:
    from lienthong.runtime.demo import DemoSecrets

__all__ = [
    "COMPONENTS",
    "LOCAL",
    "Component",
    "Launch",
    "PlanContext",
    "find",
    "get",
    "runnable",
    "setting",
]

# Where the demo's fakes and a connector's webhook answer: this host.
LOCAL = "http://127.0.0.1"


@dataclass(frozen=True)
class Launch:
    """One child a component's plan asks ``up`` to start (its command is the registry's)."""

    args: tuple[str, ...] = ()  # after the component's entry (``lienthong run NAME``)
    env: dict[str, str] = field(default_factory=dict)  # on top of the supervisor's environment
    name: str | None = None  # None: the component's name (several workers: worker-N)
    port: int | None = None  # None: the port its port_setting holds
    serves: str | None = None  # the URL it serves to the plans after it (a demo fake)


@dataclass
class PlanContext:
    """What a plan decides from: settings, this run's demo keys, the fakes started so far."""

    settings: Settings
    demo_secrets: DemoSecrets | None = None  # None: settings as they are (no generated keys)
    served: dict[str, str] = field(default_factory=dict)  # child name -> the URL it serves

    def url_of(self, name: str) -> str | None:
        """The URL child ``name`` serves, None when it is not started (before this plan)."""
        return self.served.get(name)


Plan = Callable[[PlanContext], list[Launch]]


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
    # "module:function" of its start plan, imported only when ``up`` plans (see Launch).
    plan: str = field(kw_only=True)

    def launches(self, context: PlanContext) -> list[Launch]:
        """What ``up`` starts of this component: its plan, imported now (empty: nothing)."""
        module, _, function = self.plan.partition(":")
        plan: Plan = getattr(importlib.import_module(module), function)
        return plan(context)

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
    Component("worker", "worker", "lienthong.streams.worker", "stream worker (Faust agents)", ("lienthong.streams.worker",), "worker.web_port", needs=("worker.app_id", "streams.clock"), plan="lienthong.streams.component:plan"),  # noqa: E501
    Component("schema-registry", "registry", "lienthong.schemas.rest", "Confluent read API of the embedded registry", _run("schema-registry"), "schema_registry_rest.port", plan="lienthong.schemas.component:plan"),  # noqa: E501
    Component("broker-probe", "probe", "lienthong.runtime.broker_probe", "broker liveness and consumer group lag", _run("broker-probe"), "probe.port", plan="lienthong.runtime.component:broker_probe"),  # noqa: E501
    Component("gateway", "connector", "lienthong.connectors.gateway.app", "ingest gateway for department systems", _run("gateway"), "connectors.gateway.port", needs=("connectors.gateway.clients_file",), plan="lienthong.connectors.gateway.component:plan"),  # noqa: E501
    Component("console", "console", "lienthong.connectors.console.app", "monitoring console in the browser", _run("console"), "console.port", health_path=None, needs=("console.users_file",), plan="lienthong.connectors.console.component:plan"),  # noqa: E501
    Component("fake-portal", "service", "lienthong.simulators.portal", "demo: fake national portal", _run("fake-portal"), "demo.portal_port", plan="lienthong.simulators.component:fake_portal"),  # noqa: E501
    Component("portal-connector", "connector", "lienthong.connectors.portal", "national portal connector", _run("portal"), "connectors.portal.health_port", demo_counterpart="fake-portal", needs=("connectors.portal.url",), plan="lienthong.connectors.portal.component:plan"),  # noqa: E501
    Component("fake-postal", "service", "lienthong.simulators.postal", "demo: fake postal service", _run("fake-postal"), "demo.postal_port", plan="lienthong.simulators.component:fake_postal"),  # noqa: E501
    Component("postal-connector", "connector", "lienthong.connectors.postal", "postal service connector", _run("postal"), "connectors.postal.port", demo_counterpart="fake-postal", needs=("connectors.postal.url",), plan="lienthong.connectors.postal.component:plan"),  # noqa: E501
    Component("fake-central", "service", "lienthong.simulators.central", "demo: fake central agency system", _run("fake-central"), "demo.central_port", plan="lienthong.simulators.component:fake_central"),  # noqa: E501
    Component("central-adapter", "connector", "lienthong.connectors.central", "central vertical agency adapter", _run("central"), "connectors.central.port", demo_counterpart="fake-central", needs=("connectors.central.endpoints",), plan="lienthong.connectors.central.component:plan"),  # noqa: E501
    Component("simulator", "job", "lienthong.cli.simulate", "demo: live province simulator", ("lienthong", "simulate"), None, health_path=None, needs=("demo.simulator_rate",), oneshot=True, plan="lienthong.cli.simulate:start_plan"),  # noqa: E501
)
# fmt: on


def get(name: str) -> Component:
    """The component called ``name`` (``worker-2`` is the worker); KeyError names it."""
    component = find(name)
    if component is None:
        raise KeyError(f"no component {name!r} in lienthong.runtime.registry")
    return component


def find(name: str) -> Component | None:
    """Like :func:`get`, None for a name the registry does not know (an older state file)."""
    wanted = "worker" if name.startswith("worker-") else name
    # A scan, not a dict built at import: a test may put a line of its own into COMPONENTS.
    return next((c for c in COMPONENTS if c.name == wanted), None)


def runnable() -> dict[str, Component]:
    """Components ``up`` starts through ``lienthong run NAME``, by NAME."""
    return {c.run_name: c for c in COMPONENTS if c.run_name is not None}


def setting(settings: Settings, dotted: str) -> Any:
    """The value of a dotted settings key (AttributeError: no such setting)."""
    node: Any = settings
    for part in dotted.split("."):
        node = getattr(node, part)
    return node
