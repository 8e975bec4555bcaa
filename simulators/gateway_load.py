"""Load on the ingest gateway while it is killed and restarted: what reached the topic?

Department systems (``agencies`` clients, one API key each) post ``dossier_received``
concurrently for ``duration_s``; every ``bad_every``-th request is malformed on purpose. At
``kill_at_s`` the gateway process is SIGKILLed and started again. A client whose request got no
answer (connection refused or reset) retries it with the same ``event_id``, as a department
system would; the gateway's idempotency store recognises a retry of a request it had already
acknowledged. At the end the dossier-events topic is read back and every event id counted.

The claims checked (:meth:`LoadReport.problems`): every 202 is on the topic, exactly once unless
its first attempt went unanswered (then a retry may have published it a second time: the
gateway is at-least-once across a crash, and consumers dedupe by event id); every refusal is an
RFC 9457 problem+json body. Used by ``benchmarks/chaos_gateway.py`` (50 agencies, 60 s) and by
the chaos-marked test at a small scale.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lienthong.domain.agencies import AgencyLevel, load_agencies
from lienthong.runtime import probe
from lienthong.runtime.children import spawn_logged, wait_healthy

RECEIVING_LEVELS = (AgencyLevel.PROVINCE_CENTER, AgencyLevel.DISTRICT, AgencyLevel.COMMUNE)


@dataclass(frozen=True)
class LoadClient:
    name: str
    agency: str
    api_key: str


def make_clients(count: int, path: Path) -> list[LoadClient]:
    """``count`` gateway clients over the registry's receiving agencies; writes the TOML file."""
    receiving = [a.code for a in load_agencies() if a.level in RECEIVING_LEVELS]
    clients = [
        LoadClient(f"load-{n:03d}", receiving[n % len(receiving)], uuid.uuid4().hex)
        for n in range(count)
    ]
    lines = []
    for c in clients:
        digest = _sha(c.api_key)
        lines += ["[[client]]", f'agency = "{c.agency}"', f'name = "{c.name}"']
        lines += [f'api_key_sha256 = "{digest}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)
    return clients


@dataclass
class LoadReport:
    duration_s: float = 0.0
    agencies: int = 0
    requests: int = 0  # HTTP attempts, retries included
    accepted: dict[str, int] = field(default_factory=dict)  # event id -> attempts it took
    refused: Counter[int] = field(default_factory=Counter)  # status -> count
    not_problem_json: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # a 202 or a 5xx where none belongs
    unanswered: int = 0  # attempts without an HTTP answer (the gateway was down)
    gave_up: int = 0  # requests still unanswered at the grace deadline
    latencies_ms: list[float] = field(default_factory=list)
    downtime_s: float = 0.0
    on_topic: Counter[str] = field(default_factory=Counter)

    def problems(self) -> list[str]:
        out = list(self.unexpected) + [f"not problem+json: {p}" for p in self.not_problem_json]
        missing = [e for e in self.accepted if self.on_topic[e] == 0]
        if missing:
            out.append(f"{len(missing)} accepted events not on the topic, e.g. {missing[:3]}")
        twice = [e for e, tries in self.accepted.items() if tries == 1 and self.on_topic[e] > 1]
        if twice:
            out.append(f"{len(twice)} events answered 202 at once but on the topic twice")
        if self.gave_up:
            out.append(f"{self.gave_up} requests never answered")
        return out

    def figures(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        retried = [e for e, tries in self.accepted.items() if tries > 1]
        return {
            "agencies": self.agencies,
            "duration_s": round(self.duration_s, 1),
            "requests": self.requests,
            "accepted_202": len(self.accepted),
            "accepted_per_s": round(len(self.accepted) / self.duration_s, 1)
            if self.duration_s
            else None,
            "refused_by_status": dict(sorted(self.refused.items())),
            "unanswered_attempts": self.unanswered,
            "accepted_after_retry": len(retried),
            "duplicates_on_topic_after_retry": sum(1 for e in retried if self.on_topic[e] > 1),
            "gateway_downtime_s": round(self.downtime_s, 2),
            "latency_ms_p50": pct(0.5),
            "latency_ms_p99": pct(0.99),
            "problems": self.problems(),
        }


class GatewayProcess:
    """``lienthong run gateway`` as a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], port: int, log_file: Path) -> None:
        self.env = {**os.environ, **env, "LIENTHONG_CONNECTORS__GATEWAY__PORT": str(port)}
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> float:
        """Start and wait until /health answers ok; returns the seconds it took."""
        self.process = spawn_logged(
            [sys.executable, "-m", "lienthong", "run", "gateway"], self.env, self.log_file
        )
        return wait_healthy(self.process, self.url, timeout_s, f"gateway (log {self.log_file})")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        return self.process.wait(timeout=30)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _body(client: LoadClient, n: int, event_id: str, bad: bool) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "event_id": event_id,
        "dossier_id": f"LOAD.{client.name}.{n:07d}",
        "occurred_at": now.isoformat(),
        "channel": "online",
        "procedure_code": "1.004227",
        "receiving_agency": client.agency,
        "subject": {"kind": "citizen", "identifier_hash": _sha(event_id)},
        "received_at": now.isoformat(),
        "appointment_at": (now + timedelta(days=10)).isoformat(),
    }
    if bad:
        del body["dossier_id"]  # a malformed request: must get a 422 problem+json
    return body


async def _agency(
    client: LoadClient,
    url: str,
    deadline: float,
    grace: float,
    bad_every: int,
    report: LoadReport,
) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            bad = bad_every > 0 and n % bad_every == 0
            event_id = str(uuid.uuid4())
            data = json.dumps(_body(client, n, event_id, bad))
            tries = 0
            while True:
                if time.monotonic() > grace:
                    report.gave_up += 1
                    return
                tries += 1
                report.requests += 1
                sent = time.monotonic()
                try:
                    async with session.post(
                        f"{url}/v1/events/dossier_received", data=data, headers=headers
                    ) as response:
                        status = response.status
                        ctype = response.headers.get("Content-Type", "")
                        text = await response.text()
                except (TimeoutError, aiohttp.ClientConnectionError):
                    report.unanswered += 1
                    await asyncio.sleep(0.05)
                    continue
                report.latencies_ms.append((time.monotonic() - sent) * 1000)
                break
            if status == 202:
                if bad:
                    report.unexpected.append(f"malformed request accepted: {text[:200]}")
                elif json.loads(text).get("event_id") != event_id:
                    report.unexpected.append(f"202 for another event id: {text[:200]}")
                report.accepted[event_id] = tries
                continue
            report.refused[status] += 1
            if not ctype.startswith("application/problem+json") or "title" not in json.loads(
                text or "{}"
            ):
                report.not_problem_json.append(f"{status} {ctype} {text[:120]}")
            if status >= 500 or (status != 429 and not bad):
                report.unexpected.append(f"{status} for a good request: {text[:200]}")


async def _drive(
    clients: list[LoadClient],
    gateway: GatewayProcess,
    duration_s: float,
    kill_at_s: float | None,
    bad_every: int,
    report: LoadReport,
) -> None:
    start = time.monotonic()
    deadline = start + duration_s
    grace = deadline + 120
    tasks = [
        asyncio.create_task(_agency(c, gateway.url, deadline, grace, bad_every, report))
        for c in clients
    ]
    if kill_at_s is not None:
        await asyncio.sleep(kill_at_s)
        down = time.monotonic()
        gateway.kill()
        await asyncio.get_running_loop().run_in_executor(None, gateway.start)
        report.downtime_s = time.monotonic() - down
    await asyncio.gather(*tasks)
    report.duration_s = time.monotonic() - start


def event_ids_on_topic(settings: Any) -> Counter[str]:
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.registry import registry_from_settings
    from lienthong.simulators.verify import read_topic

    codec = AvroCodec(registry_from_settings(settings))  # the ids the gateway registered
    ids: Counter[str] = Counter()
    for record in read_topic(settings, "dossier-events", timeout_s=120):
        ids[str(codec.decode(record.value).envelope.event_id)] += 1
    return ids


def run_load(
    settings: Any,
    env: dict[str, str],
    work_dir: Path,
    *,
    agencies: int = 50,
    duration_s: float = 60.0,
    kill_at_s: float | None = 20.0,
    bad_every: int = 25,
) -> LoadReport:
    """Run the scenario against the bus of ``settings``/``env`` (topics must exist)."""
    clients_file = work_dir / "load-clients.toml"
    clients = make_clients(agencies, clients_file)
    env = {**env, "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(clients_file)}
    gateway = GatewayProcess(env, probe.free_port(), work_dir / "gateway-load.log")
    gateway.start()
    report = LoadReport(agencies=agencies)
    try:
        asyncio.run(_drive(clients, gateway, duration_s, kill_at_s, bad_every, report))
    finally:
        gateway.stop()
    report.on_topic = event_ids_on_topic(settings)
    return report
