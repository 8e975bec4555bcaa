"""The rendered shell scripts, run for real with stand-ins for the Kafka tools.

No Kafka here: ``kafka-storage.sh`` and ``kafka-acls.sh`` are replaced by stubs that record
their arguments, so what is checked is what the scripts would ask Kafka to do.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lienthong.deploy.catalogue import load_components
from lienthong.deploy.render import acls_for, kafka_users, password_secret

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _stub_kafka(home: Path, *tools: str) -> Path:
    """A fake ``$KAFKA_HOME/bin`` whose tools append their arguments (one per line) to a log."""
    log = home / "calls.log"
    (home / "bin").mkdir(parents=True)
    for tool in tools:
        stub = home / "bin" / tool
        stub.write_text(
            '#!/bin/sh\n{ echo "CALL $0"; for a in "$@"; do echo "$a"; done; } >> "$STUB_LOG"\n'
        )
        stub.chmod(0o755)
    return log


def _calls(log: Path) -> list[list[str]]:
    calls: list[list[str]] = []
    for line in log.read_text().splitlines():
        if line.startswith("CALL "):
            calls.append([])
        else:
            calls[-1].append(line)
    return calls


def _run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("target", ["compose", "systemd"])
def test_format_adds_every_scram_user_once_and_then_leaves_the_data_alone(
    target: str, tmp_path: Path
) -> None:
    log = _stub_kafka(tmp_path / "kafka", "kafka-storage.sh")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    users = kafka_users(load_components())
    for user in users:
        (secrets / password_secret(user)).write_text(f"pw-{user}")
    (secrets / "kafka-cluster-id").write_text("q1Sh-9_ISia_zwGINzRvyQ")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "KAFKA_HOME": str(tmp_path / "kafka"),
        "KAFKA_DATA_DIR": str(data),
        "KAFKA_SECRETS_DIR": str(secrets),
        "KAFKA_CONFIG_FILE": "/etc/server.properties",
        "STUB_LOG": str(log),
    }
    script = DEPLOY / target / "kafka" / "kafka-format.sh"
    result = _run(script, env)
    assert result.returncode == 0, result.stderr
    ((*args,),) = _calls(log)
    assert args[:5] == [
        "format",
        "--cluster-id",
        "q1Sh-9_ISia_zwGINzRvyQ",
        "--config",
        "/etc/server.properties",
    ]
    scram = [args[i + 1] for i, a in enumerate(args) if a == "--add-scram"]
    assert scram == [f"SCRAM-SHA-512=[name={u},password=pw-{u}]" for u in users]

    (data / "meta.properties").write_text("cluster.id=q1Sh-9_ISia_zwGINzRvyQ\n")
    assert _run(script, env).returncode == 0
    assert len(_calls(log)) == 1  # formatted once, never again


def test_format_stops_when_a_password_file_is_missing(tmp_path: Path) -> None:
    log = _stub_kafka(tmp_path / "kafka", "kafka-storage.sh")
    (tmp_path / "data").mkdir()
    env = {
        "KAFKA_HOME": str(tmp_path / "kafka"),
        "KAFKA_DATA_DIR": str(tmp_path / "data"),
        "KAFKA_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "STUB_LOG": str(log),
    }
    result = _run(DEPLOY / "compose" / "kafka" / "kafka-format.sh", env)
    assert result.returncode != 0
    assert "kafka-password-admin" in result.stderr
    assert not log.exists()


def test_acl_script_adds_each_catalogued_rule(tmp_path: Path) -> None:
    log = _stub_kafka(tmp_path / "kafka", "kafka-acls.sh")
    env = {
        "KAFKA_HOME": str(tmp_path / "kafka"),
        "BOOTSTRAP": "kafka:9093",
        "CLIENT_CONFIG": "/etc/admin.properties",
        "STUB_LOG": str(log),
    }
    result = _run(DEPLOY / "compose" / "kafka" / "kafka-acls.sh", env)
    assert result.returncode == 0, result.stderr
    calls = _calls(log)
    expected = []
    for component in load_components().component:
        if not component.kafka:
            continue
        for rule in acls_for(component):
            ops = [x for op in rule.operations for x in ("--operation", op)]
            expected.append(
                ["--bootstrap-server", "kafka:9093", "--command-config", "/etc/admin.properties"]
                + ["--add", "--allow-principal", f"User:{component.name}", *ops]
                + [f"--{rule.resource}", rule.name, "--resource-pattern-type", rule.pattern]
            )
    assert calls == expected


def test_entrypoint_turns_secret_files_into_settings(tmp_path: Path) -> None:
    password = tmp_path / "kafka-password-gateway"
    password.write_text("s3cret-value\n")
    env = {
        "SECRET_ENV_FILES": f"LIENTHONG_KAFKA__SASL_PASSWORD={password}",
        "LIENTHONG_KAFKA__SASL_USERNAME": "gateway",
    }
    result = _run(DEPLOY / "compose" / "entrypoint.sh", env, "env")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert seen["LIENTHONG_KAFKA__SASL_PASSWORD"] == "s3cret-value"
    assert seen["LIENTHONG_KAFKA__SASL_USERNAME"] == "gateway"
    assert "SECRET_ENV_FILES" not in seen


def test_entrypoint_refuses_to_start_without_its_secret(tmp_path: Path) -> None:
    missing = tmp_path / "kafka-password-worker"
    env = {"SECRET_ENV_FILES": f"LIENTHONG_KAFKA__SASL_PASSWORD={missing}"}
    result = _run(DEPLOY / "compose" / "entrypoint.sh", env, "env")
    assert result.returncode == 2
    assert f"secret file {missing} for LIENTHONG_KAFKA__SASL_PASSWORD is missing" in result.stderr
    assert result.stdout == ""
