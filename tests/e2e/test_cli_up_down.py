"""`lienthong up -d` → `status` → `down`, as an operator runs them, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lienthong.runtime import probe
from tests.support.broker import embedded_settings

pytestmark = pytest.mark.e2e


def _run(
    args: list[str], env: dict[str, str | None], timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run the CLI; a None value in ``env`` removes that variable."""
    merged = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "lienthong", *args],
        env={k: v for k, v in merged.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tansu_pids_in(directory) -> set[int]:
    """Tansu processes whose working directory is under ``directory`` (ours, not other runs')."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cmd = probe.process_cmdline(int(entry))
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cmd and "tansu" in cmd[0] and cwd.startswith(str(directory)):
                pids.add(int(entry))
    return pids


def _connector_ports() -> dict[str, str]:
    """Free ports for the edge processes `up` starts, so tests never collide with a demo."""
    names = (
        "CONNECTORS__GATEWAY__PORT",
        "CONNECTORS__PORTAL__HEALTH_PORT",
        "CONNECTORS__POSTAL__PORT",
        "CONNECTORS__CENTRAL__PORT",
        "DEMO__CENTRAL_PORT",
    )
    return {f"LIENTHONG_{name}": str(probe.free_port()) for name in names}


def _embedded_env(tmp_path, broker_port: int, web_port: int) -> dict[str, str | None]:
    """An isolated bus on the embedded broker (a LIENTHONG_BOOTSTRAP of the session is unset)."""
    settings = embedded_settings(tmp_path / "run", broker_port)
    return {
        "LIENTHONG_BOOTSTRAP": None,
        "LIENTHONG_RUN_DIR": str(settings.run_dir),
        "LIENTHONG_EMBEDDED__PORT": str(broker_port),
        "LIENTHONG_EMBEDDED__BINARY": str(settings.embedded.binary),
        "LIENTHONG_WORKER__WEB_PORT": str(web_port),
        "LIENTHONG_WORKER__APP_ID": f"lienthong-e2e-{broker_port}",
        **_connector_ports(),
    }


def test_up_status_down_on_the_embedded_broker(tmp_path):
    broker_port, web_port = probe.free_port(), probe.free_port()
    env = _embedded_env(tmp_path, broker_port, web_port)
    up = _run(["up", "--detach", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = _run(["status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        rows = {row["component"]: row for row in report["components"]}
        assert report["running"] and report["healthy"]
        assert rows["broker (embedded tansu)"]["healthy"]
        assert rows["broker (embedded tansu)"]["detail"] == f"listening on 127.0.0.1:{broker_port}"
        assert rows["topics"]["detail"].startswith("all ") and rows["topics"]["healthy"]
        assert rows["worker-1"]["healthy"] and rows["worker-1"]["port"] == web_port
        gateway_port = int(env["LIENTHONG_CONNECTORS__GATEWAY__PORT"])
        assert rows["gateway"]["healthy"] and rows["gateway"]["port"] == gateway_port
        pids = [row["pid"] for row in report["components"] if row["pid"]]
        pids.append(report["supervisor_pid"])
    finally:
        down = _run(["down"], env)
    assert down.returncode == 0, down.stderr
    assert "embedded broker" in down.stdout
    assert probe.port_is_free("127.0.0.1", gateway_port)
    for pid in pids:
        assert not probe.pid_alive(pid), f"pid {pid} survived `down`"
    assert probe.port_is_free("127.0.0.1", broker_port)
    assert probe.port_is_free("127.0.0.1", web_port)
    after = _run(["status"], env)
    assert after.returncode == 1
    assert "bus: not running" in after.stdout


def test_up_with_bootstrap_starts_no_broker_of_its_own(tmp_path, kafka_bootstrap):
    web_port = probe.free_port()
    env = {
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_RUN_DIR": str(tmp_path / "run"),
        "LIENTHONG_WORKER__WEB_PORT": str(web_port),
        "LIENTHONG_WORKER__APP_ID": f"lienthong-e2e-ext-{web_port}",
        "LIENTHONG_TOPIC_PREFIX": f"ext{web_port}.",
        **_connector_ports(),
    }
    up = _run(["up", "--detach", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert not _tansu_pids_in(tmp_path), (
            "up started a broker although LIENTHONG_BOOTSTRAP is set"
        )
        report = json.loads(_run(["status", "--json"], env).stdout)
        assert report["components"][0]["component"] == "broker (external cluster)"
        assert report["healthy"]
        assert not (tmp_path / "run" / "broker").exists()
    finally:
        down = _run(["down"], env)
    assert "embedded broker" not in down.stdout


def test_bad_config_stops_startup_with_one_line(tmp_path):
    result = _run(
        ["up"], {"LIENTHONG_RUN_DIR": str(tmp_path), "LIENTHONG_WORKER__WEB_PORT": "http"}
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lienthong: config error: worker.web_port = 'http'")


def test_demo_feeds_the_fake_portal_and_stops_cleanly(tmp_path):
    import time
    import urllib.request

    broker_port, web_port = probe.free_port(), probe.free_port()
    portal_port, postal_port = probe.free_port(), probe.free_port()
    env = {
        **_embedded_env(tmp_path, broker_port, web_port),
        "LIENTHONG_DEMO__PORTAL_PORT": str(portal_port),
        "LIENTHONG_DEMO__POSTAL_PORT": str(postal_port),
        "LIENTHONG_DEMO__SIMULATOR_RATE": "200",
    }
    up = _run(["up", "--demo", "--detach", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"fake national portal http://127.0.0.1:{portal_port}/records" in up.stdout
        report = json.loads(_run(["status", "--json"], env).stdout)
        names = {row["component"] for row in report["components"]}
        assert {"fake-portal", "fake-postal", "portal-connector", "simulator"} <= names
        pids = [row["pid"] for row in report["components"] if row["pid"]]
        received = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and received == 0:
            with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/records") as response:
                received = json.loads(response.read())["count"]
            time.sleep(1)
        assert received > 0, "the fake portal received no status record from the bus"
    finally:
        down = _run(["down"], env)
    assert down.returncode == 0
    for pid in pids:
        assert not probe.pid_alive(pid), f"pid {pid} survived `down`"
    for port in (broker_port, web_port, portal_port, postal_port):
        assert probe.port_is_free("127.0.0.1", port)
