"""What ``lienthong up`` starts, pinned child by child (name, command, port, env).

Why pinned literally: ``component_specs`` moved from one hand-written function to a loop over
each component's own plan; these cases held before the move and must hold after it, so no
child, argument, variable or position changed on the way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from lienthong.config import load_settings
from lienthong.runtime.demo import DemoSecrets
from lienthong.runtime.supervisor import component_specs

Row = tuple[str, str, tuple[str, ...], int | None, str | None, dict[str, str], bool]

CONFIGURED = {
    "LIENTHONG_WORKER__COUNT": "2",
    "LIENTHONG_STREAMS__CLOCK": "replay",
    "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": "/etc/lienthong/clients.toml",
    "LIENTHONG_CONSOLE__USERS_FILE": "/etc/lienthong/users.toml",
    "LIENTHONG_CONNECTORS__PORTAL__URL": "https://portal.example",
    "LIENTHONG_CONNECTORS__POSTAL__URL": "https://post.example",
    "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__BCA": "https://bca.example",
    "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__BTC": "https://btc.example",
}
DEMO = {"LIENTHONG_DEMO__ENABLED": "true", "LIENTHONG_WORKER__COUNT": "2"}


def _rows(environ: dict[str, str], tmp_path: Path, secrets: bool = False) -> list[Row]:
    """The specs with this interpreter and the run dir written as placeholders."""
    settings = load_settings(environ={"LIENTHONG_RUN_DIR": str(tmp_path), **environ})
    demo_secrets = None
    if secrets:
        demo_secrets = DemoSecrets(
            clients_file=tmp_path / "demo" / "gateway-clients.toml",
            keys_file=tmp_path / "demo" / "gateway-keys.json",
            webhook_secret="s3cret",
        )

    def clean(value: Any) -> str:
        return str(value).replace(str(tmp_path), "<run>").replace(sys.executable, "python")

    return [
        (
            spec.name,
            spec.kind,
            tuple(clean(part) for part in spec.command),
            spec.port,
            spec.health_path,
            {key: clean(value) for key, value in spec.env.items()},
            spec.oneshot,
        )
        for spec in component_specs(settings, demo_secrets)
    ]


def _run(name: str, *args: str) -> tuple[str, ...]:
    return ("python", "-m", "lienthong", "run", name, *args)


WORKER = ("python", "-m", "lienthong.streams.worker", "--web-port")
LIVE = {"LIENTHONG_STREAMS__CLOCK": "live"}
H = "/health"

PLAIN: list[Row] = [
    ("worker-1", "worker", (*WORKER, "6066"), 6066, H, LIVE, False),
    ("schema-registry", "registry", _run("schema-registry"), 6094, H, {}, False),
    ("broker-probe", "probe", _run("broker-probe"), 6096, H, {}, False),
    ("gateway", "connector", _run("gateway"), 6090, H, {}, False),
]


def _workers(count: int, clock: str = "live") -> list[Row]:
    env = {"LIENTHONG_STREAMS__CLOCK": clock}
    return [
        (f"worker-{i + 1}", "worker", (*WORKER, str(6066 + i)), 6066 + i, H, env, False)
        for i in range(count)
    ]


def _base(gateway_env: dict[str, str] | None = None) -> list[Row]:
    """Always started: the schema registry (embedded), the broker probe, the gateway."""
    return [
        ("schema-registry", "registry", _run("schema-registry"), 6094, H, {}, False),
        ("broker-probe", "probe", _run("broker-probe"), 6096, H, {}, False),
        ("gateway", "connector", _run("gateway"), 6090, H, gateway_env or {}, False),
    ]


def _console(env: dict[str, str] | None = None) -> Row:
    return ("console", "console", _run("console"), 6095, None, env or {}, False)


CONFIGURED_EDGES: list[Row] = [
    _console(),
    (
        "portal-connector",
        "connector",
        _run("portal", "--portal-url", "https://portal.example"),
        6091,
        H,
        {},
        False,
    ),
    (
        "postal-connector",
        "connector",
        _run("postal", "--url", "https://post.example"),
        6092,
        H,
        {},
        False,
    ),
    (
        "central-adapter",
        "connector",
        _run("central"),
        6093,
        H,
        {
            "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__BCA": "https://bca.example",
            "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__BTC": "https://btc.example",
        },
        False,
    ),
]
SIMULATE = ("python", "-m", "lienthong", "simulate", "--mode", "live", "--rate", "5.0")
SIMULATE += ("--seed", "7", "--around-the-clock")
FAKE_POSTAL = _run("fake-postal", "--port", "6081", "--time-scale", "3600.0", "--webhook-url")
FAKE_POSTAL += ("http://127.0.0.1:6092/webhooks/tracking",)


def _demo_edges(secret: str | None = None, portal_url: str = "http://127.0.0.1:6080") -> list[Row]:
    """The demo's fakes and the connectors pointed at them (a real portal_url: no fake)."""
    secret_args = (f"--webhook-secret={secret}",) if secret else ()
    secret_env = {"LIENTHONG_CONNECTORS__POSTAL__WEBHOOK_SECRET": secret} if secret else {}
    rows: list[Row] = []
    if portal_url.startswith("http://127.0.0.1"):
        rows.append(
            ("fake-portal", "service", _run("fake-portal", "--port", "6080"), 6080, H, {}, False)
        )
    return rows + [
        (
            "portal-connector",
            "connector",
            _run("portal", "--portal-url", portal_url),
            6091,
            H,
            {},
            False,
        ),
        ("fake-postal", "service", (*FAKE_POSTAL, *secret_args), 6081, H, {}, False),
        (
            "postal-connector",
            "connector",
            _run("postal", "--url", "http://127.0.0.1:6081"),
            6092,
            H,
            secret_env,
            False,
        ),
        ("fake-central", "service", _run("fake-central", "--port", "6082"), 6082, H, {}, False),
        (
            "central-adapter",
            "connector",
            _run("central"),
            6093,
            H,
            {"LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__000.00.64.H10": "http://127.0.0.1:6082"},
            False,
        ),
        (
            "simulator",
            "job",
            (*SIMULATE, "--postal", "connector", "--leave-out-agency", "000.00.64.H10"),
            None,
            None,
            {},
            True,
        ),
    ]


DEMO_GATEWAY = {"LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": "<run>/demo/gateway-clients.toml"}
DEMO_CONSOLE = {"LIENTHONG_CONSOLE__USERS_FILE": "<run>/demo/console-users.toml"}

CASES: dict[str, tuple[dict[str, str], bool, list[Row]]] = {
    "nothing configured": ({}, False, PLAIN),
    "external schema registry": (
        {"LIENTHONG_SCHEMA_REGISTRY_URL": "http://registry.example:8081"},
        False,
        [PLAIN[0], *PLAIN[2:]],
    ),
    "configured, 2 workers": (
        CONFIGURED,
        False,
        _workers(2, "replay") + _base() + CONFIGURED_EDGES,
    ),
    "demo, 2 workers": (DEMO, False, _workers(2) + _base() + [_console(), *_demo_edges()]),
    "demo with secrets": (
        DEMO,
        True,
        _workers(2) + _base(DEMO_GATEWAY) + [_console(DEMO_CONSOLE), *_demo_edges("s3cret")],
    ),
    "demo with a real test portal": (
        {**DEMO, "LIENTHONG_DEMO__PORTAL_URL": "https://portal-test.example"},
        False,
        _workers(2)
        + _base()
        + [_console(), *_demo_edges(portal_url="https://portal-test.example")],
    ),
    "demo, everything configured": (
        {**DEMO, **CONFIGURED},
        True,
        _workers(2, "replay")
        + _base()
        + CONFIGURED_EDGES
        + [("simulator", "job", SIMULATE, None, None, {}, True)],
    ),
    "secrets without the demo": (
        {},
        True,
        [PLAIN[0], *_base(DEMO_GATEWAY)],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_component_specs_are_pinned(case: str, tmp_path: Path) -> None:
    environ, secrets, expected = CASES[case]
    assert _rows(environ, tmp_path, secrets) == expected


def test_demo_console_users_are_written_for_the_console(tmp_path: Path) -> None:
    """The console's generated users file exists where its env points."""
    _rows(DEMO, tmp_path, secrets=True)
    assert (tmp_path / "demo" / "console-users.toml").is_file()
