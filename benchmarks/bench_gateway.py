"""Ingest gateway throughput and latency: one gateway process on one core, real broker.

Starts a broker (``LIENTHONG_BOOTSTRAP``, else the embedded Tansu), creates the catalogue
topics under a fresh prefix, runs ``python -m lienthong.connectors.gateway`` pinned to core 0
(``taskset -c 0``; INFO logs to a file, so the one-line-per-request log is paid for), and an
aiohttp load generator pinned to core 1 with keep-alive and N concurrent clients:

1. fixed offered rate (default 1,000 requests/s) for S seconds — latency at a steady load;
2. max rate — every client sends its next request as soon as the previous one is answered.

Every request is a fresh ``dossier_received`` with its own ``Idempotency-Key`` (so the
gateway also writes the idempotency record before answering 202). Reported: accepted
events/s, p50/p99/max latency (send → 202), and any non-202 answers. The per-agency rate
limit is raised for the run (``rate_per_s`` = 1e6) so the limiter does not cap the figure.

Run:  python benchmarks/bench_gateway.py [RATE] [SECONDS] [CLIENTS]
      (defaults 2000 10 128; add --profile to write a cProfile of the gateway to
      gateway.prof in the run directory)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from lienthong.config import load_settings  # noqa: E402
from lienthong.runtime import probe  # noqa: E402
from lienthong.runtime.topics import TopicAdmin  # noqa: E402
from tests.support.broker import resolve_broker  # noqa: E402

CENTER = "000.00.01.H10"
API_KEY = "bench-key-center"


def body(i: int, at: str, due: str) -> bytes:
    return json.dumps(
        {
            "dossier_id": f"HS-BENCH-{i:08d}",
            "occurred_at": at,
            "channel": "counter",
            "procedure_code": "1.004227",
            "receiving_agency": CENTER,
            "subject": {"kind": "citizen", "identifier_hash": "ab" * 32},
            "received_at": at,
            "appointment_at": due,
        }
    ).encode()


class Load:
    def __init__(self, url: str) -> None:
        self.url = url + "/v1/events/dossier_received"
        self.counter = 0
        now = datetime.now(UTC)
        self.at = (now - timedelta(minutes=1)).isoformat()
        self.due = (now + timedelta(days=10)).isoformat()

    def next(self) -> tuple[bytes, dict[str, str]]:
        self.counter += 1
        return body(self.counter, self.at, self.due), {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {API_KEY}",
            "Idempotency-Key": f"bench-{self.counter}",
        }

    async def one(self, session: aiohttp.ClientSession, out: list, statuses: Counter) -> None:
        data, headers = self.next()
        started = time.perf_counter()
        async with session.post(self.url, data=data, headers=headers) as r:
            await r.read()
            statuses[r.status] += 1
            if r.status == 202:
                out.append(time.perf_counter() - started)

    async def raw_max_rate(self, seconds: float, clients: int) -> tuple:
        """Max rate with a minimal HTTP/1.1 keep-alive client on asyncio streams: the aiohttp
        client costs more CPU per request than the gateway, so on one core it, not the
        gateway, is the limit; this shows what the gateway itself sustains."""
        lat: list[float] = []
        statuses: Counter = Counter()
        host, port = self.url.split("//")[1].split("/")[0].split(":")
        path = "/" + self.url.split("//")[1].split("/", 1)[1]
        stop = time.perf_counter() + seconds
        start = time.perf_counter()

        async def client() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while time.perf_counter() < stop:
                    data, headers = self.next()
                    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    writer.write(
                        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}"
                        f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                    )
                    t0 = time.perf_counter()
                    status_line = await reader.readline()
                    length = 0
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    await reader.readexactly(length)
                    status = int(status_line.split()[1])
                    statuses[status] += 1
                    if status == 202:
                        lat.append(time.perf_counter() - t0)
            finally:
                writer.close()

        await asyncio.gather(*(client() for _ in range(clients)))
        return lat, statuses, time.perf_counter() - start

    async def fixed_rate(self, rate: float, seconds: float, clients: int) -> tuple:
        lat: list[float] = []
        statuses: Counter = Counter()
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            sem = asyncio.Semaphore(clients)
            tasks = set()
            start = time.perf_counter()
            n = int(rate * seconds)
            for i in range(n):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await sem.acquire()

                async def run() -> None:
                    try:
                        await self.one(session, lat, statuses)
                    finally:
                        sem.release()

                t = asyncio.create_task(run())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
        return lat, statuses, elapsed

    async def max_rate(self, seconds: float, clients: int) -> tuple:
        lat: list[float] = []
        statuses: Counter = Counter()
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            stop = time.perf_counter() + seconds
            start = time.perf_counter()

            async def client() -> None:
                while time.perf_counter() < stop:
                    await self.one(session, lat, statuses)

            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.perf_counter() - start
        return lat, statuses, elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(
    name: str, lat: list[float], statuses: Counter, elapsed: float, cpu: float | None = None
) -> None:
    accepted = statuses.get(202, 0)
    if lat:
        q = statistics.quantiles(lat, n=100)
        p50, p99, worst = q[49] * 1000, q[98] * 1000, max(lat) * 1000
    else:
        p50 = p99 = worst = float("nan")
    others = {k: v for k, v in statuses.items() if k != 202}
    print(
        f"{name:>22}: {accepted / elapsed:8.0f} accepted events/s  "
        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {worst:6.1f} ms  "
        f"({accepted} in {elapsed:.1f} s{', other: ' + str(others) if others else ''})"
        + (f"  gateway CPU {cpu / elapsed:.0%} of a core" if cpu is not None else "")
    )


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    profile = "--profile" in sys.argv
    rate = float(args[0]) if args else 2000.0
    seconds = float(args[1]) if len(args) > 1 else 10.0
    clients = int(args[2]) if len(args) > 2 else 128
    cores = os.cpu_count() or 1
    run_dir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    try:
        with resolve_broker(run_dir / "broker") as (bootstrap, how):
            prefix = f"bg{uuid.uuid4().hex[:8]}."
            clients_file = run_dir / "clients.toml"
            digest = hashlib.sha256(API_KEY.encode()).hexdigest()
            clients_file.write_text(
                f'[[client]]\nagency = "{CENTER}"\nname = "bench"\napi_key_sha256 = "{digest}"\n'
            )
            port = probe.free_port()
            env = {
                **os.environ,
                "LIENTHONG_BOOTSTRAP": bootstrap,
                "LIENTHONG_TOPIC_PREFIX": prefix,
                "LIENTHONG_RUN_DIR": str(run_dir / "run"),
                "LIENTHONG_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
                "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(clients_file),
                "LIENTHONG_CONNECTORS__GATEWAY__PORT": str(port),
                "LIENTHONG_CONNECTORS__GATEWAY__RATE_PER_S": "1000000",
                "LIENTHONG_CONNECTORS__GATEWAY__BURST": "1000000",
            }
            with TopicAdmin(load_settings(environ=env)) as admin:
                admin.apply()
            cmd = [sys.executable]
            if profile:
                cmd += ["-m", "cProfile", "-o", str(run_dir / "gateway.prof")]
            cmd += ["-m", "lienthong.connectors.gateway"]
            if cores > 1 and shutil.which("taskset"):
                cmd = ["taskset", "-c", "0", *cmd]
            log_path = run_dir / "gateway.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                _wait_health(url, deadline, proc, log_path)
                if cores > 1:
                    os.sched_setaffinity(0, {1})
                print(
                    f"broker {bootstrap} ({how}); gateway pid {proc.pid} on core 0, load on "
                    f"core {'1' if cores > 1 else '0 (only one core)'}; {clients} clients, "
                    f"keep-alive; {cores} cores on this machine"
                )
                load = Load(url)
                asyncio.run(load.fixed_rate(200, 2, clients))  # warm-up
                phases = [
                    (f"offered {rate:.0f}/s", lambda: load.fixed_rate(rate, seconds, clients)),
                    ("max rate (aiohttp)", lambda: load.max_rate(seconds, clients)),
                    ("max rate (raw client)", lambda: load.raw_max_rate(seconds, clients)),
                ]
                for name, phase in phases:
                    cpu0 = cpu_seconds(proc.pid)
                    lat, st, el = asyncio.run(phase())
                    report(name, lat, st, el, cpu_seconds(proc.pid) - cpu0)
            finally:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            if profile:
                import pstats

                pstats.Stats(str(run_dir / "gateway.prof")).sort_stats("tottime").print_stats(25)
    finally:
        if not profile:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def _wait_health(url: str, deadline: float, proc: subprocess.Popen, log_path: Path) -> None:
    import urllib.request

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gateway not healthy within 60 s")


if __name__ == "__main__":
    raise SystemExit(main())
