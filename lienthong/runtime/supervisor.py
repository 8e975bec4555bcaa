"""Run the whole bus: broker (if embedded), topics, stream workers and services.

``lienthong up`` runs a supervisor in the foreground (Ctrl-C stops everything) or, with
``--detach``, as a background process group. The supervisor restarts a crashed child with
back-off and records every component in ``<run_dir>/state.json`` so that ``status`` and
``down`` work from any shell. ``down`` stops the supervisor, then makes sure no recorded
process survives, so the ports are free afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from lienthong.config import Settings
from lienthong.logs import get_logger
from lienthong.runtime import probe, registry
from lienthong.runtime.broker import EmbeddedBroker, terminate_process
from lienthong.runtime.demo import DemoSecrets, write_demo_secrets

log = get_logger(__name__)

MAX_RESTARTS = 5


@dataclass
class ComponentSpec:
    """A child process the supervisor runs."""

    name: str
    # "worker" | "connector" | "registry" | "probe" | "console" | "service" (demo fake) | "job"
    kind: str
    command: list[str]
    port: int | None = None
    health_path: str | None = "/health"
    env: dict[str, str] = field(default_factory=dict)
    # A job that finishes (exit code 0) is done, not crashed: it is not restarted.
    oneshot: bool = False


@dataclass
class ComponentState:
    name: str
    kind: str
    pid: int | None
    port: int | None
    log_file: str | None
    health_url: str | None = None
    restarts: int = 0
    finished: bool = False


def component_specs(
    settings: Settings, demo_secrets: DemoSecrets | None = None
) -> list[ComponentSpec]:
    """The children ``up`` starts: each registry line's plan, in registry order.

    A plan decides whether its component starts (a connector only when its outside system
    is configured or the demo supplies a fake) and with which arguments and environment;
    a demo fake it started tells the plans after it its URL. ``demo_secrets`` are this run's
    generated demo keys (None: settings as they are).
    """
    context = registry.PlanContext(settings, demo_secrets)
    specs = []
    for component in registry.COMPONENTS:
        for launch in component.launches(context):
            spec = ComponentSpec(
                name=launch.name or component.name,
                kind=component.kind,
                command=component.command(*launch.args),
                port=component.port(settings) if launch.port is None else launch.port,
                health_path=component.health_path,
                env=dict(launch.env),
                oneshot=component.oneshot,
            )
            if launch.serves is not None:
                context.served[spec.name] = launch.serves
            specs.append(spec)
    return specs


class StateFile:
    def __init__(self, settings: Settings) -> None:
        self.path = settings.run_dir / "state.json"

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def http_health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = StateFile(settings)
        self.logs_dir = settings.run_dir / "logs"
        self.broker = EmbeddedBroker(settings)
        self.broker_started_here = False
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.components: dict[str, ComponentState] = {}
        self.specs = {spec.name: spec for spec in component_specs(settings)}
        self._stopping = False

    # -- start ---------------------------------------------------------------------------
    def check_not_running(self) -> None:
        existing = self.state.read()
        if existing and probe.pid_alive(int(existing.get("supervisor_pid", 0))):
            raise SupervisorError(
                f"the bus is already running (supervisor pid {existing['supervisor_pid']}); "
                "use `lienthong status` or `lienthong down`"
            )
        for spec in self.specs.values():
            if spec.port is not None and not probe.port_is_free(
                self.settings.worker.web_host, spec.port
            ):
                setting = registry.get(spec.name).port_setting
                raise SupervisorError(f"port {spec.port} for {spec.name} is in use; set {setting}")

    def start_all(self) -> None:
        from lienthong.runtime.topics import TopicAdmin

        self.check_not_running()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.demo.enabled:
            # Fresh keys only now: a second `up` refused above must not replace a running demo's.
            secrets = write_demo_secrets(self.settings)
            self.specs = {spec.name: spec for spec in component_specs(self.settings, secrets)}
            log.info("demo_keys_written", keys_file=str(secrets.keys_file))
        if self.settings.uses_embedded_broker:
            self.broker_started_here = self.broker.record() is None
            record = self.broker.start()
            log.info("broker_ready", bootstrap=record.bootstrap, pid=record.pid)
        else:
            log.info("using_external_cluster", bootstrap=self.settings.bootstrap_servers)
        with TopicAdmin(self.settings) as admin:
            for change in admin.apply():
                log.info("topic_changed", change=change)
        for spec in self.specs.values():
            self._spawn(spec)
        self._write_state()

    def _spawn(self, spec: ComponentSpec) -> None:
        log_file = self.logs_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env, "LIENTHONG_RUN_DIR": str(self.settings.run_dir)}
        if not self.settings.uses_embedded_broker:
            env["LIENTHONG_BOOTSTRAP"] = self.settings.bootstrap_servers
        else:
            env["LIENTHONG_EMBEDDED__PORT"] = str(self.settings.embedded.port)
        with log_file.open("ab") as out:
            process = subprocess.Popen(
                spec.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.children[spec.name] = process
        previous = self.components.get(spec.name)
        self.components[spec.name] = ComponentState(
            name=spec.name,
            kind=spec.kind,
            pid=process.pid,
            port=spec.port,
            log_file=str(log_file),
            health_url=(
                f"http://{self.settings.worker.web_host}:{spec.port}{spec.health_path}"
                if spec.port and spec.health_path
                else None
            ),
            restarts=previous.restarts + 1 if previous else 0,
        )
        log.info("component_started", component=spec.name, pid=process.pid, port=spec.port)

    def _write_state(self) -> None:
        self.state.write(
            {
                "supervisor_pid": os.getpid(),
                "started_at": time.time(),
                "bootstrap": self.settings.bootstrap_servers,
                "embedded_broker": self.settings.uses_embedded_broker,
                "broker_started_by_up": self.broker_started_here,
                # The workers' clock: `simulate --mode replay` refuses live-clock workers.
                "clock": self.settings.streams.clock,
                "components": [asdict(c) for c in self.components.values()],
            }
        )

    # -- supervise -----------------------------------------------------------------------
    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [
                c
                for c in self.components.values()
                if c.health_url and (http_health(c.health_url) or {}).get("status") != "ok"
            ]
            if not pending:
                return True
            if any(self.children[c.name].poll() is not None for c in pending):
                return False
            time.sleep(0.5)
        return False

    def run_forever(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        backoff: dict[str, float] = {}
        failed = False
        while not self._stopping:
            for name, process in list(self.children.items()):
                code = process.poll()
                if code is None or self._stopping:
                    continue
                if code == 0 and self.specs[name].oneshot:
                    log.info("component_finished", component=name)
                    del self.children[name]
                    self.components[name].finished = True
                    self._write_state()
                    continue
                state = self.components[name]
                if state.restarts >= MAX_RESTARTS:
                    log.error("component_failed_permanently", component=name, exit_code=code)
                    self._stopping = failed = True
                    break
                delay = min(30.0, 2.0**state.restarts)
                due = backoff.setdefault(name, time.monotonic() + delay)
                if time.monotonic() >= due:
                    log.warning("component_restarting", component=name, exit_code=code)
                    backoff.pop(name, None)
                    self._spawn(self.specs[name])
                    self._write_state()
            time.sleep(0.2)
        self.stop_all()
        return 1 if failed else 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("supervisor_stopping", signal=signal.Signals(signum).name)
        self._stopping = True

    def stop_all(self) -> None:
        for name, process in reversed(list(self.children.items())):
            if process.poll() is None:
                terminate_process(process.pid, timeout=15.0)
            process.wait()
            log.info("component_stopped", component=name, pid=process.pid)
        self.children.clear()
        if self.broker_started_here:
            self.broker.stop()
        self.state.remove()


class SupervisorError(Exception):
    """The bus cannot be started or stopped as asked; message is one line."""


def run_detached(settings: Settings, timeout: float) -> int:
    """Start ``lienthong up --foreground`` as a background session and wait until healthy."""
    Supervisor(settings).check_not_running()
    logs = settings.run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "supervisor.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lienthong", "up"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SupervisorError(
                f"the bus failed to start (exit code {process.returncode}); "
                f"see {logs / 'supervisor.log'}"
            )
        report = collect_status(settings)
        if report["running"] and report["healthy"]:
            return process.pid
        time.sleep(0.5)
    raise SupervisorError(f"the bus did not become healthy within {timeout:.0f}s; see {logs}")


def stop_detached(settings: Settings, timeout: float = 60.0) -> list[str]:
    """Stop everything a previous ``up`` started; returns what was stopped."""
    state_file = StateFile(settings)
    state = state_file.read()
    stopped: list[str] = []
    if state is None:
        return stopped
    supervisor_pid = int(state.get("supervisor_pid", 0))
    if supervisor_pid and probe.pid_alive(supervisor_pid):
        terminate_process(supervisor_pid, timeout=timeout)
        stopped.append(f"supervisor (pid {supervisor_pid})")
    for component in state.get("components", []):
        pid = component.get("pid")
        if pid and probe.pid_alive(pid) and _is_ours(pid):
            terminate_process(pid)
        if pid:
            stopped.append(f"{component['name']} (pid {pid})")
    if state.get("broker_started_by_up"):
        # Normally the supervisor already stopped it; stop() covers a killed supervisor.
        EmbeddedBroker(settings).stop()
        stopped.append("embedded broker")
    state_file.remove()
    return stopped


def _is_ours(pid: int) -> bool:
    return any("lienthong" in part for part in probe.process_cmdline(pid))


def collect_status(settings: Settings) -> dict[str, Any]:
    """Health of every component, for `lienthong status` (text or JSON)."""
    from lienthong.runtime.topics import TopicAdmin

    state = StateFile(settings).read()
    supervisor_pid = int(state["supervisor_pid"]) if state else None
    running = bool(supervisor_pid and probe.pid_alive(supervisor_pid))
    rows: list[dict[str, Any]] = []
    if settings.uses_embedded_broker:
        record = EmbeddedBroker(settings).record()
        ok = record is not None and probe.kafka_api_versions_ok(record.host, record.port)
        listeners = probe.listening_addresses(record.pid) if record else []
        rows.append(
            {
                "component": "broker (embedded tansu)",
                "pid": record.pid if record else None,
                "port": settings.embedded.port,
                "healthy": ok,
                "detail": (
                    "listening on " + ", ".join(f"{a}:{p}" for a, p in listeners)
                    if record
                    else "not running"
                ),
            }
        )
    else:
        rows.append(
            {
                "component": "broker (external cluster)",
                "pid": None,
                "port": None,
                "healthy": True,
                "detail": settings.bootstrap_servers,
            }
        )
    broker_ok = rows[0]["healthy"]
    topic_detail = "broker not reachable"
    topics_ok = False
    if broker_ok:
        try:
            with TopicAdmin(settings) as admin:
                drift = admin.drift()
            problems = [line for d in drift for line in d.describe()]
            topics_ok = not problems
            topic_detail = (
                f"all {len(drift)} catalogue topics present" if topics_ok else "; ".join(problems)
            )
        except Exception as exc:
            if not settings.uses_embedded_broker:
                rows[0]["healthy"] = broker_ok = False
                rows[0]["detail"] = f"{settings.bootstrap_servers}: {exc}"
            topic_detail = f"cannot read topics: {exc}"
    rows.append(
        {
            "component": "topics",
            "pid": None,
            "port": None,
            "healthy": topics_ok,
            "detail": topic_detail,
        }
    )
    for component in (state or {}).get("components", []):
        pid = component.get("pid")
        if component.get("finished"):
            rows.append(
                {
                    "component": component["name"],
                    "pid": None,
                    "port": None,
                    "healthy": True,
                    "detail": "finished",
                }
            )
            continue
        alive = bool(pid and probe.pid_alive(pid))
        health = (
            http_health(component["health_url"]) if alive and component.get("health_url") else None
        )
        healthy = alive and (
            health is None
            if not component.get("health_url")
            else health is not None and health.get("status") == "ok"
        )
        declared = registry.find(component["name"])
        rows.append(
            {
                "component": component["name"],
                "pid": pid,
                "port": component.get("port"),
                # From the registry, for the JSON view: what it is and what moves its port.
                "summary": declared.summary if declared else None,
                "port_setting": declared.port_setting if declared else None,
                "healthy": healthy,
                "detail": _component_detail(alive, component.get("health_url"), health)
                + (f", {component['restarts']} restarts" if component.get("restarts") else ""),
            }
        )
    return {
        "running": running,
        "supervisor_pid": supervisor_pid if running else None,
        "clock": (state or {}).get("clock") if running else None,
        "healthy": all(r["healthy"] for r in rows) and running,
        "components": rows,
    }


def _component_detail(alive: bool, health_url: str | None, health: dict[str, Any] | None) -> str:
    if not alive:
        return "not running"
    if health_url is None:
        return "running"
    if health is None:
        return "no health answer yet"
    if "assigned_partitions" in health:
        return f"{len(health['assigned_partitions'])} partitions assigned"
    return "answering"


def format_status(report: dict[str, Any]) -> str:
    lines = [
        f"bus: {'running' if report['running'] else 'not running'}"
        + (f" (supervisor pid {report['supervisor_pid']})" if report["supervisor_pid"] else "")
        + f", {'healthy' if report['healthy'] else 'NOT healthy'}"
        + (f", workers on the {report['clock']} clock" if report.get("clock") else "")
    ]
    header = f"{'component':<26} {'pid':>7} {'port':>6}  {'health':<9} detail"
    lines.append(header)
    for row in report["components"]:
        lines.append(
            f"{row['component']:<26} {row['pid'] or '-':>7} {row['port'] or '-':>6}  "
            f"{'ok' if row['healthy'] else 'FAIL':<9} {row['detail']}"
        )
    return "\n".join(lines)
