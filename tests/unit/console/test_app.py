"""Deny by default, roles and the audited redrive, through the aiohttp app (no broker).

The producer is replaced by a recorder: what it is given is exactly what ``dlq replay``
would send (same function), plus the audit header.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lienthong.config import load_settings
from lienthong.connectors import headers as h
from lienthong.connectors.console.app import COOKIE, REDRIVEN_BY, Console, create_app
from lienthong.connectors.console.auth import (
    ConsoleRole,
    Gatekeeper,
    UsersFileError,
    parse_users,
    write_demo_users,
)
from lienthong.connectors.console.feed import DeadLetter

MONITOR_KEY, OPERATOR_KEY = "monitor-key-1", "operator-key-2"


def users_toml() -> str:
    def entry(name: str, role: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f'[[user]]\nname = "{name}"\nrole = "{role}"\napi_key_sha256 = "{digest}"\n'

    return entry("Lan", "monitor", MONITOR_KEY) + entry("Minh", "operator", OPERATOR_KEY)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, key: Any = None, value: Any = None, headers: Any = None) -> None:
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def console(tmp_path: Path) -> Console:
    settings = load_settings(environ={"LIENTHONG_RUN_DIR": str(tmp_path / "run")})
    c = Console(settings, parse_users(users_toml(), "users.toml"))
    c._producer = Recorder()
    c.portal_records = lambda dossier_id: []  # type: ignore[method-assign]  # no broker here
    headers = (
        (h.DLQ_SOURCE_TOPIC, b"dossier-events"),
        (h.DLQ_SOURCE_PARTITION, b"2"),
        (h.DLQ_ERROR_CLASS, b"UnknownAgency"),
        (h.DLQ_REASON, b"agency 999 unknown"),
        ("traceparent", b"00-abc"),
    )
    c.state.put_dead_letter(DeadLetter(0, 5, b"HS-1", b"\x00\x01", headers, 1))
    c.state.put_dead_letter(DeadLetter(1, 2, b"HS-2", b"\x00", ((h.DLQ_REASON, b"x"),), 2))
    return c


def run(console: Console, scenario: Any) -> Any:
    async def go() -> Any:
        async with TestClient(TestServer(create_app(console))) as client:
            return await scenario(client)

    return asyncio.run(go())


async def login(client: TestClient, key: str) -> None:
    r = await client.post("/login", data={"api_key": key, "next": "/"}, allow_redirects=False)
    assert r.status == 303, await r.text()
    assert COOKIE in r.cookies


PATHS = (
    "/",
    "/?fragment=1",
    "/overdue",
    "/handoffs",
    "/api/handoffs",
    "/dossiers/HS-1",
    "/dead-letters",
    "/dead-letters/0:5",
    "/bus-health",
    "/static/console.js",
    "/api/overview",
    "/api/dead-letters",
    "/api/bus-health",
    "/nothing-here",
)


def test_nothing_answers_without_a_credential(console: Console) -> None:
    async def scenario(client: TestClient) -> None:
        for path in PATHS:
            r = await client.get(path, allow_redirects=False)
            if path.startswith("/api/") or "fragment" in path:
                assert r.status == 401, path
            else:
                assert r.status == 303, path
                assert r.headers["Location"].startswith("/login?next="), path
            assert "HS-1" not in await r.text()
        for path in ("/dead-letters/redrive", "/api/dead-letters/0:5/redrive"):
            r = await client.post(path, data={"address": "0:5"}, allow_redirects=False)
            assert r.status == 401, path
        r = await client.get("/api/overview", headers={"Authorization": "Bearer wrong"})
        assert r.status == 401
        r = await client.post("/login", data={"api_key": "wrong"}, allow_redirects=False)
        assert r.status == 303 and "failed=1" in r.headers["Location"]
        assert COOKIE not in r.cookies
        r = await client.get("/login")
        assert r.status == 200 and 'name="api_key"' in await r.text()

    run(console, scenario)
    assert console._producer.sent == []


def test_a_monitoring_officer_reads_but_may_not_redrive(console: Console) -> None:
    async def scenario(client: TestClient) -> None:
        await login(client, MONITOR_KEY)
        for path in PATHS[:-1]:
            r = await client.get(path)
            assert r.status == 200, path
        page = await (await client.get("/dead-letters")).text()
        assert "Lan (monitor)" in page and 'class="redrive"' not in page
        r = await client.post("/api/dead-letters/0:5/redrive")
        assert r.status == 403
        r = await client.post("/api/dead-letters/0:5/redrive", headers={"X-API-Key": MONITOR_KEY})
        assert r.status == 403
        r = await client.get("/?lang=en")
        assert "Overview" in await r.text()
        page = await (await client.get("/?period=year&level=department")).text()
        assert 'id="lang"' in page and "period=year&amp;level=department&amp;lang=en" in page
        page = await (await client.get("/?period=year&lang=en")).text()
        assert '<a href="?period=year" id="lang">VI</a>' in page
        r = await client.get("/")
        assert "Tổng quan" in await r.text()

    run(console, scenario)
    assert console._producer.sent == []


def test_an_operator_redrives_with_the_dlq_replay_path_and_is_recorded(console: Console) -> None:
    async def scenario(client: TestClient) -> None:
        await login(client, OPERATOR_KEY)
        page = await (await client.get("/dead-letters")).text()
        assert 'data-address="0:5"' in page and 'class="redrive"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        r = await client.post(
            "/dead-letters/redrive",
            data={"address": "0:5", "csrf": "forged"},
            allow_redirects=False,
        )
        assert r.status == 403  # a form without its session's token
        r = await client.post(
            "/dead-letters/redrive", data={"address": "0:5", "csrf": csrf}, allow_redirects=False
        )
        assert r.status == 303
        page = await (await client.get("/dead-letters?lang=en")).text()
        assert "Redriven by Minh" in page
        r = await client.post("/dead-letters/redrive", data={"address": "9:9", "csrf": csrf})
        assert r.status == 404
        r = await client.post("/dead-letters/redrive", data={"address": "x", "csrf": csrf})
        assert r.status == 400
        # A dead letter that names no source topic is refused, nothing is sent.
        r = await client.post(
            "/api/dead-letters/1:2/redrive", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
        )
        assert r.status == 400 and "no source topic" in await r.text()

    run(console, scenario)
    [sent] = console._producer.sent
    assert sent["topic"] == "dossier-events" and sent["key"] == b"HS-1"
    assert sent["value"] == b"\x00\x01"
    names = dict(sent["headers"])
    assert names["traceparent"] == b"00-abc"
    assert not any(n.startswith("lienthong.dlq.") and n != h.DLQ_REPLAYED_FROM for n in names)
    assert names[h.DLQ_REPLAYED_FROM] == b"dead-letters:0:5"
    assert names[REDRIVEN_BY].startswith(b"Minh (operator) ")
    [entry] = [json.loads(line) for line in console.audit_file.read_text().splitlines()]
    assert entry["by"] == "Minh" and entry["address"] == "0:5" and entry["to"] == "dossier-events"
    # A restarted console still shows who redrove it.
    again = Console(console.settings, [])
    assert again.state.redrives[(0, 5)]["by"] == "Minh"


def test_login_bounces_only_to_local_paths(console: Console) -> None:
    async def scenario(client: TestClient) -> None:
        for target, expected in (
            ("/dead-letters", "/dead-letters"),
            ("//evil", "/"),
            ("https://evil/", "/"),
        ):
            r = await client.post(
                "/login", data={"api_key": MONITOR_KEY, "next": target}, allow_redirects=False
            )
            assert r.headers["Location"] == expected

    run(console, scenario)


def test_users_file_errors_name_the_entry_and_field() -> None:
    digest = "ab" * 32
    cases = {
        "[[user]]\nrole='monitor'\napi_key_sha256='" + digest + "'": "name",
        "[[user]]\nname='A'\nrole='admin'\napi_key_sha256='" + digest + "'": "role",
        "[[user]]\nname='A'\nrole='monitor'\napi_key_sha256='xyz'": "api_key_sha256",
        "[[user]]\nname='A'\nrole='monitor'\napi_key_sha256='" + digest + "'\nx=1": "unknown",
        "not toml [": "not valid TOML",
    }
    for text, word in cases.items():
        with pytest.raises(UsersFileError, match=word):
            parse_users(text, "u.toml")


def test_sessions_expire_and_close() -> None:
    [user] = parse_users(users_toml(), "u")[:1]
    gate = Gatekeeper.of([user])
    assert gate.by_key(MONITOR_KEY) == user and gate.by_key("nope") is None
    token = gate.open_session(user, now=0.0)
    assert gate.session(token, now=10.0).user == user
    assert gate.session(token, now=gate.ttl_s + 1) is None
    token = gate.open_session(user)
    gate.close_session(token)
    assert gate.session(token) is None and gate.session(None) is None


def test_demo_users_are_one_monitor_and_one_operator(tmp_path: Path) -> None:
    path = write_demo_users(tmp_path)
    users = parse_users(path.read_text(), str(path))
    keys = json.loads((tmp_path / "console-keys.json").read_text())
    assert {u.role for u in users} == {ConsoleRole.MONITOR, ConsoleRole.OPERATOR}
    gate = Gatekeeper.of(users)
    assert {gate.by_key(k["api_key"]).role.value for k in keys} == {"monitor", "operator"}
    assert (tmp_path / "console-keys.json").stat().st_mode & 0o077 == 0


def test_overview_api_by_level_and_a_bad_period(console: Console) -> None:
    from tests.unit.console.test_view import CENTER, LAND, snapshot

    console.state.put_stats(snapshot(CENTER, "1.004227", "counter", "month:2026-01", received=4))
    console.state.put_stats(snapshot(LAND, "1.004227", "counter", "month:2026-01", received=3))
    console.state.put_stats(snapshot(LAND, "1.004227", "counter", "day:2026-01-05", received=3))
    console.state.put_stats(snapshot(CENTER, "1.004227", "counter", "day:2026-01-06", received=4))
    auth = {"X-API-Key": MONITOR_KEY}

    async def scenario(client: TestClient) -> None:
        r = await client.get("/api/overview?period=month", headers=auth)
        body = await r.json()
        assert body["period"] == "month:2026-01"  # the bus's clock: the latest as_of
        assert [row["agency"] for row in body["rows"]] == [CENTER, LAND]
        assert body["totals"]["received"] == 7
        r = await client.get("/api/overview?period=month&level=department", headers=auth)
        body = await r.json()
        assert [row["agency"] for row in body["rows"]] == [LAND]
        assert body["totals"]["received"] == 3
        assert sum(received for _, received, _ in body["series"]) == 3
        r = await client.get("/api/overview?period=fortnight", headers=auth)
        assert r.status == 400 and "period" in await r.text()
        # The poll of an unchanged page gets 204; a change of state re-sends it.
        r = await client.get("/?fragment=1", headers=auth)
        version = r.headers["X-Console-Version"]
        r = await client.get(f"/?fragment=1&since={version}", headers=auth)
        assert r.status == 204
        console.state.put_stats(snapshot(LAND, "1.004227", "online", "month:2026-01", received=1))
        r = await client.get(f"/?fragment=1&since={version}", headers=auth)
        assert r.status == 200 and int(r.headers["X-Console-Version"]) > int(version)

    run(console, scenario)


def test_up_starts_the_console_when_someone_can_log_in(tmp_path: Path) -> None:
    from lienthong.runtime.demo import write_demo_secrets
    from lienthong.runtime.supervisor import component_specs

    run_dir = {"LIENTHONG_RUN_DIR": str(tmp_path / "run")}
    plain = load_settings(environ=run_dir)
    assert "console" not in {s.name for s in component_specs(plain)}  # nobody could log in
    users = tmp_path / "users.toml"
    users.write_text(users_toml())
    configured = load_settings(environ=run_dir | {"LIENTHONG_CONSOLE__USERS_FILE": str(users)})
    [spec] = [s for s in component_specs(configured) if s.name == "console"]
    assert spec.port == 6095 and spec.health_path is None
    assert spec.command[-2:] == ["run", "console"]
    demo = load_settings(environ=run_dir | {"LIENTHONG_DEMO__ENABLED": "true"})
    [spec] = [s for s in component_specs(demo, write_demo_secrets(demo)) if s.name == "console"]
    demo_users = Path(spec.env["LIENTHONG_CONSOLE__USERS_FILE"])
    assert len(parse_users(demo_users.read_text(), str(demo_users))) == 2


def test_an_operator_redrives_a_selection(console: Console) -> None:
    headers = ((h.DLQ_SOURCE_TOPIC, b"postal-tracking"), (h.DLQ_ERROR_CLASS, b"NotFramed"))
    console.state.put_dead_letter(DeadLetter(2, 7, b"HS-3", b"{}", headers, 3))

    async def scenario(client: TestClient) -> None:
        await login(client, OPERATOR_KEY)
        page = await (await client.get("/dead-letters")).text()
        assert 'id="redrive-selected"' in page and 'class="select"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        form = [("csrf", csrf), ("address", "0:5"), ("address", "2:7")]
        r = await client.post("/dead-letters/redrive", data=form, allow_redirects=False)
        assert r.status == 303
        r = await client.post("/dead-letters/redrive", data={"csrf": csrf})
        assert r.status == 400

    run(console, scenario)
    assert [(m["topic"], m["key"]) for m in console._producer.sent] == [
        ("dossier-events", b"HS-1"),
        ("postal-tracking", b"HS-3"),
    ]
    assert set(console.state.redrives) == {(0, 5), (2, 7)}


def test_evidence_bundle_is_the_audit_export_command(console: Console) -> None:
    calls: list[list[str]] = []

    def fake_cli(args: list[str]) -> Any:
        from types import SimpleNamespace

        calls.append(args)
        if args[-1] == "HS-NONE":
            return SimpleNamespace(
                returncode=2, stdout="", stderr="lienthong: no audit-chain records for dossier"
            )
        out = Path(args[args.index("--out") + 1]).with_suffix(".zip")
        out.write_bytes(b"PK-bundle")
        return SimpleNamespace(returncode=0, stdout=f"evidence bundle for {args[-1]}: {out}\n")

    console.run_cli = fake_cli  # type: ignore[method-assign]

    async def scenario(client: TestClient) -> None:
        r = await client.get("/dossiers/HS-1/evidence.zip", allow_redirects=False)
        assert r.status == 303  # deny by default here too
        await login(client, MONITOR_KEY)
        page = await (await client.get("/dossiers/HS-1")).text()
        assert 'href="/dossiers/HS-1/evidence.zip"' in page
        r = await client.get("/dossiers/HS-1/evidence.zip")
        assert r.status == 200 and await r.read() == b"PK-bundle"
        assert r.headers["Content-Disposition"] == 'attachment; filename="evidence-HS-1.zip"'
        r = await client.get("/dossiers/HS-NONE/evidence.zip")
        assert r.status == 409 and "no audit-chain records" in await r.text()
        r = await client.get("/dossiers/--store=x/evidence.zip")  # never an option
        assert r.status == 409 and "not a dossier id" in await r.text()

    run(console, scenario)
    assert calls[0][:2] == ["audit", "export"] and calls[0][-2:] == ["--", "HS-1"]
    assert "--zip" in calls[0] and len(calls) == 2


def test_where_to_look_names_the_console_when_up_starts_it(tmp_path: Path) -> None:
    from lienthong.cli.up import where_to_look

    run_dir = {"LIENTHONG_RUN_DIR": str(tmp_path / "run")}
    assert "console" not in where_to_look(load_settings(environ=run_dir))
    demo = where_to_look(load_settings(environ=run_dir | {"LIENTHONG_DEMO__ENABLED": "1"}))
    assert "console (browser)    http://127.0.0.1:6095/" in demo
    assert str(tmp_path / "run" / "demo" / "console-keys.json") in demo


def test_guessing_keys_on_the_login_form_is_throttled(console: Console) -> None:
    async def scenario(client: TestClient) -> None:
        for _ in range(console.gate.max_failures):
            r = await client.post("/login", data={"api_key": "guess"}, allow_redirects=False)
            assert r.status == 303
        r = await client.post("/login", data={"api_key": MONITOR_KEY}, allow_redirects=False)
        assert r.status == 429 and COOKIE not in r.cookies  # even the right key, for now

    run(console, scenario)
    gate = console.gate
    [remote] = gate.failures
    assert gate.blocked(remote)
    later = max(gate.failures[remote]) + gate.failure_window_s + 1
    assert not gate.blocked(remote, now=later) and remote not in gate.failures
