"""Central adapter end to end: real broker, fake central systems and the adapter as processes,
a real stream worker tracking the dossiers.

Handoffs are published with the SDK (as the service center's system would); the adapter
delivers them to the fake ministry systems and publishes their answers on their behalf.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lienthong.runtime.probe import free_port
from lienthong.schemas.models import VN_TZ
from tests.support.metrics import scrape, total
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công
TAX = "000.00.60.H10"  # Cục Thuế tỉnh (ngành dọc)
POLICE = "000.00.61.H10"  # Công an tỉnh (ngành dọc)
PROC = "1.004227"


class Proc:
    """A ``python -m MODULE`` subprocess with an HTTP port answering ``GET /health``."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], port: int, log: Path):
        self.module, self.args, self.env, self.port, self.log = module, args, env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Proc:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.module} exited:\n{self.tail()}")
            try:
                if self.get("/health")["status"] == "ok":
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.module} not ready:\n{self.tail()}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=3) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=3) as resp:
            return json.loads(resp.read())

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(module: str, args: list[str], env: dict[str, str], port: int, name: str) -> Proc:
        proc = Proc(module, args, env, port, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc.start()

    yield start
    for proc in reversed(started):
        proc.stop()


def fake_central(procs: Callable[..., Proc], *args: str) -> Proc:
    port = free_port()
    return procs(
        "lienthong.simulators.central", ["--port", str(port), *args], {}, port, "fake-central"
    )


def adapter_env(bus_env: dict[str, str], port: int, endpoints: dict[str, Proc], **extra: str):
    env = {
        **bus_env,
        "LIENTHONG_CONNECTORS__CENTRAL__PORT": str(port),
        "LIENTHONG_CONNECTORS__CENTRAL__POLL_INTERVAL_S": "0.4",
        "LIENTHONG_CONNECTORS__CENTRAL__BASE_DELAY_S": "0.2",
        "LIENTHONG_CONNECTORS__CENTRAL__TIMEOUT_S": "2",
    }
    for code, proc in endpoints.items():
        env[f"LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__{code}"] = f"http://127.0.0.1:{proc.port}"
    env.update({f"LIENTHONG_CONNECTORS__CENTRAL__{k.upper()}": v for k, v in extra.items()})
    return env


def codec_of(settings: Any) -> Any:
    """The codec of the test's own run dir (the processes share its registry file)."""
    from lienthong import schemas

    return schemas.AvroCodec(schemas.registry_from_settings(settings))


def events_of(settings: Any, name: str = "dossier-events") -> list[Any]:
    from lienthong.simulators.verify import read_topic

    codec = codec_of(settings)
    return [codec.decode(r.value) for r in read_topic(settings, name, 5.0)]


def alerts_of(settings: Any) -> list[dict[str, Any]]:
    from lienthong.simulators.verify import read_topic

    return [json.loads(r.value) for r in read_topic(settings, "monitoring-alerts", 5.0)]


def answers(events: list[Any], dossier: str) -> list[str]:
    return [
        e.EVENT_TYPE
        for e in events
        if e.envelope.dossier_id == dossier
        and e.EVENT_TYPE in ("handoff_accepted", "handoff_returned")
    ]


def open_dossier(
    client: Any, dossier: str, to: str, received: datetime, sent: datetime, due: datetime
) -> None:
    first = client.publish_received(
        dossier,
        procedure_code=PROC,
        identifier_hash="ab" * 32,
        channel="counter",
        received_at=received,
        appointment_at=due + timedelta(days=2),
    )
    client.hand_off(
        dossier,
        handoff_id=f"{dossier}/1",
        to_agency=to,
        step=1,
        step_due_at=due,
        occurred_at=sent,
        caused_by=first,
    )


def test_answered_by_callback_and_poll_silent_one_escalates(
    bus_env, bus_settings, catalogue_topics, start_worker, procs
) -> None:
    from lienthong.connectors.central import correlation_id
    from lienthong.connectors.sdk import BusClient, BusProducer

    tag = str(time.time_ns())[-8:]
    answered_cb, answered_poll, silent = (f"H10-C{tag}-{n}" for n in ("CB", "POLL", "SILENT"))
    silent_cid = correlation_id(silent, f"{silent}/1", POLICE)
    tax = fake_central(procs, "--ack-delay", "0.3", "--answer-delay", "0.8")
    police = fake_central(
        procs, "--answer-via", "poll", "--answer-delay", "0.6", "--never-answer", silent_cid
    )
    port = free_port()
    adapter = procs(
        "lienthong.connectors.central",
        [],
        adapter_env(bus_env, port, {TAX: tax, POLICE: police}, answer_timeout_s="4"),
        port,
        "adapter",
    )
    worker = start_worker()

    now = datetime.now(UTC)
    monday = datetime(2026, 11, 16, 8, 0, tzinfo=VN_TZ)  # a week ago: deadlines long passed
    with BusProducer(bus_settings, codec=codec_of(bus_settings)) as producer:
        center = BusClient(producer, agency=CENTER)
        open_dossier(
            center, answered_cb, TAX, now - timedelta(minutes=10), now, now + timedelta(days=3)
        )
        open_dossier(
            center, answered_poll, POLICE, now - timedelta(minutes=10), now, now + timedelta(days=3)
        )
        open_dossier(
            center, silent, POLICE, monday, monday + timedelta(hours=1), monday + timedelta(days=1)
        )

    def done(dossier: str) -> bool:
        return answers(events_of(bus_settings), dossier) == ["handoff_accepted", "handoff_returned"]

    wait_for(lambda: done(answered_cb) and done(answered_poll), 30, "both answers")
    events = events_of(bus_settings)
    returned = [e for e in events if e.EVENT_TYPE == "handoff_returned"]
    assert {(e.envelope.dossier_id, e.envelope.producer_agency, e.outcome) for e in returned} == {
        (answered_cb, TAX, "completed"),
        (answered_poll, POLICE, "completed"),
    }
    # the tracker shows the central agency's step as accepted and handed back
    for dossier, agency in ((answered_cb, TAX), (answered_poll, POLICE)):
        slip = wait_for(
            lambda d=dossier: (
                (s := worker.get_json(f"/dossiers/slip?id={d}"))["steps"]
                and s["steps"][0]["handed_on_at"]
                and s
            ),
            20,
            f"slip of {dossier}",
        )
        step = slip["steps"][0]
        assert (step["step"], step["agency"]) == (1, agency)
        assert step["accepted_at"] and step["handed_on_at"]

    # the silent one: exactly one no_answer alert, nothing invented on dossier-events
    alerts = wait_for(
        lambda: [a for a in alerts_of(bus_settings) if a["alert_type"] == "central_no_answer"],
        20,
        "no_answer alert",
    )
    # more polls pass (counted at the fake, not waited for by the clock): still one alert
    polled = police.get("/_stats")["polls"].get(silent_cid, 0)
    wait_for(
        lambda: police.get("/_stats")["polls"].get(silent_cid, 0) >= polled + 3,
        30,
        "three more polls of the silent request",
    )
    alerts = [a for a in alerts_of(bus_settings) if a["alert_type"] == "central_no_answer"]
    assert len(alerts) == 1
    assert (alerts[0]["dossier_id"], alerts[0]["correlation_id"]) == (silent, silent_cid)
    assert answers(events_of(bus_settings), silent) == []
    health = adapter.get("/health")
    assert (health["sent"], health["answered"], health["no_answer"], health["pending"]) == (
        3,
        2,
        1,
        1,
    )
    _, samples = scrape(f"http://127.0.0.1:{adapter.port}")
    for event, count in (("sent", 3), ("answered", 2), ("no_answer", 1)):
        assert total(samples, "lienthong_connector_events_total", event=event) == count
    assert total(samples, "lienthong_connector_open_items", item="pending") == 1
    # ... and the tracker's own handling of an unaccepted handoff fires for it
    escalated = wait_for(
        lambda: [
            e
            for e in events_of(bus_settings, "deadline-alerts")
            if e.envelope.dossier_id == silent
            and e.EVENT_TYPE in ("handoff_escalated", "deadline_overdue")
        ],
        30,
        "tracker escalation",
    )
    kinds = {e.EVENT_TYPE for e in escalated}
    assert "handoff_escalated" in kinds
    assert next(e for e in escalated if e.EVENT_TYPE == "handoff_escalated").to_agency == POLICE

    # a late answer (the ministry calls back after no_answer) is still applied
    reply = adapter.post(
        f"/callbacks/{silent_cid}",
        {"status": "answered", "outcome": "rejected", "note": "hồ sơ không hợp lệ"},
    )
    assert reply["status"] == "answered"
    wait_for(
        lambda: (
            answers(events_of(bus_settings), silent) == ["handoff_accepted", "handoff_returned"]
        ),
        15,
        "late answer applied",
    )
    assert adapter.get("/health")["answered"] == 3


def test_outage_retried_with_one_request_and_restart_does_not_resend(
    bus_env, bus_settings, catalogue_topics, procs
) -> None:
    from lienthong.connectors.central import correlation_id
    from lienthong.connectors.sdk import BusClient, BusProducer

    tag = str(time.time_ns())[-8:]
    first, second = f"H10-R{tag}-1", f"H10-R{tag}-2"
    cid1 = correlation_id(first, f"{first}/1", TAX)
    cid2 = correlation_id(second, f"{second}/1", TAX)
    # Down until the test says so (not for a time window a loaded machine could miss).
    tax = fake_central(procs, "--down-for", "3600", "--ack-delay", "0.2", "--answer-delay", "0.5")
    port = free_port()
    env = adapter_env(bus_env, port, {TAX: tax}, attempts="8", answer_timeout_s="60")
    adapter = procs("lienthong.connectors.central", [], env, port, "adapter")
    now = datetime.now(UTC)
    producer = BusProducer(bus_settings, codec=codec_of(bus_settings))
    center = BusClient(producer, agency=CENTER)
    try:
        open_dossier(center, first, TAX, now - timedelta(minutes=5), now, now + timedelta(days=2))
        wait_for(lambda: tax.get("/_stats")["errors"] >= 2, 60, "the adapter retrying the outage")
        tax.post("/_control", {"down_for_s": 0})  # the agency comes back
        wait_for(
            lambda: (
                answers(events_of(bus_settings), first) == ["handoff_accepted", "handoff_returned"]
            ),
            30,
            "answer after the outage",
        )
        stats = tax.get("/_stats")
        assert stats["errors"] >= 1 and stats["posts"][cid1] >= 2  # retried through the 500s
        assert stats["created"] == {cid1: 1}  # ... with one request in effect
        assert adapter.get("/health")["posts"] == stats["posts"][cid1]

        # a request still waiting for its answer when the adapter stops
        tax.post("/_control", {"answer_delay_s": 5.0})
        open_dossier(center, second, TAX, now, now, now + timedelta(days=2))
        wait_for(
            lambda: answers(events_of(bus_settings), second) == ["handoff_accepted"],
            20,
            "second accepted",
        )
        assert adapter.stop() == 0
        posts_before = tax.get("/_stats")["posts"]
        restarted = procs("lienthong.connectors.central", [], env, port, "adapter")
        health = restarted.get("/health")
        assert (health["requests"], health["answered"], health["pending"]) == (2, 1, 1)
        wait_for(
            lambda: (
                answers(events_of(bus_settings), second) == ["handoff_accepted", "handoff_returned"]
            ),
            30,
            "pending answer after restart",
        )
        # Every request answered: no delivery task is left that could still re-send.
        wait_for(lambda: restarted.get("/health")["pending"] == 0, 30, "nothing pending")
        assert tax.get("/_stats")["posts"] == posts_before == {cid1: posts_before[cid1], cid2: 1}
        assert restarted.get("/health")["posts"] == 0  # nothing re-sent
        events = events_of(bus_settings)
        assert answers(events, first) == ["handoff_accepted", "handoff_returned"]
        ids = [e.envelope.event_id for e in events]
        assert len(ids) == len(set(ids))
    finally:
        producer.close()


def test_unreachable_central_system_gives_one_no_answer_after_all_attempts(
    bus_env, bus_settings, catalogue_topics, procs
) -> None:
    from lienthong.connectors.central import correlation_id
    from lienthong.connectors.sdk import BusClient, BusProducer

    dossier = f"H10-U{str(time.time_ns())[-8:]}"
    nobody = Proc("-", [], {}, free_port(), Path(os.devnull))  # a port nothing listens on
    port = free_port()
    env = adapter_env(bus_env, port, {TAX: nobody}, attempts="3")
    adapter = procs("lienthong.connectors.central", [], env, port, "adapter")
    now = datetime.now(UTC)
    with BusProducer(bus_settings, codec=codec_of(bus_settings)) as producer:
        open_dossier(BusClient(producer, agency=CENTER), dossier, TAX, now, now, now)
    alerts = wait_for(
        lambda: [a for a in alerts_of(bus_settings) if a["alert_type"] == "central_no_answer"],
        20,
        "no_answer alert",
    )
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["correlation_id"] == correlation_id(dossier, f"{dossier}/1", TAX)
    assert (alert["attempts"], alert["reason"]) == (3, "not delivered after 3 attempts")
    health = adapter.get("/health")
    assert (health["posts"], health["sent"], health["no_answer"]) == (3, 0, 1)
    assert answers(events_of(bus_settings), dossier) == []
