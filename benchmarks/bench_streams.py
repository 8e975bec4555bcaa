"""End-to-end throughput and latency of one stream worker (tracker + portal feed + counts).

Two phases against a real broker (``LIENTHONG_BOOTSTRAP``, else the embedded Tansu) and one
real ``python -m lienthong.streams.worker`` subprocess in replay-clock mode:

1. throughput: N events of a generated month are published first, then the worker starts;
   reported are events/s from the first to the last portal record (broker timestamps) and
   events/s until ``GET /stats`` shows every dossier counted ("events in → counts updated");
2. latency: fresh dossiers published at a fixed rate (default 2,000 events/s); latency per
   event = portal record timestamp − source record timestamp (same host clock), p50/p99.
   Counts are published every ``streams.stats_flush_s`` (1 s by default) on top of that.

Run:  python benchmarks/bench_streams.py [DOSSIERS] [RATE] [SECONDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from lienthong.config import load_settings  # noqa: E402
from lienthong.runtime.topics import TopicAdmin  # noqa: E402
from lienthong.schemas.codec import AvroCodec  # noqa: E402
from lienthong.schemas.registry import registry_from_settings  # noqa: E402
from tests.integration.test_streams_replay import generate_month  # noqa: E402
from tests.support.batches import batch_footprint  # noqa: E402
from tests.support.broker import resolve_broker  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402

PORTAL_NAMESPACE = uuid.UUID("0b9c9d4e-3a51-5a0e-8f3e-706f7274616c")  # streams.tracker


def env_for(bootstrap: str, run_dir: Path, how: str) -> dict[str, str]:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    return {
        "LIENTHONG_BOOTSTRAP": bootstrap,
        "LIENTHONG_TOPIC_PREFIX": prefix,
        "LIENTHONG_WORKER__APP_ID": f"bench-{prefix.rstrip('.')}",
        "LIENTHONG_WORKER__SESSION_TIMEOUT_S": "6",
        "LIENTHONG_RUN_DIR": str(run_dir),
        "LIENTHONG_LOG_LEVEL": "WARNING",
        "LIENTHONG_STREAMS__CLOCK": "replay",
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": os.environ.get(
            "BENCH_SINGLE_RECORD_BATCHES", "true" if how.startswith("embedded") else "false"
        ),
    }


def portal_timestamps(bootstrap: str, topic: str, expected: int, timeout: float) -> list[int]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
        enable_auto_commit=False,
    )
    stamps: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(stamps) < expected and time.monotonic() < deadline:
            for m in consumer:
                stamps.append(m.timestamp)
                if len(stamps) >= expected:
                    break
    finally:
        consumer.close()
    return stamps


def cpu_seconds(pid: int) -> float | None:
    """user+sys CPU of a process (Linux /proc), to tell CPU-bound from waiting."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def output_footprint(bootstrap: str, env: dict[str, str], events: int) -> str:
    """Records, record batches and bytes the worker wrote per input event, per topic (every
    output and changelog topic of the run): the per-record and per-request cost of the Kafka
    client dominates the worker's CPU, and the bytes are what the embedded broker keeps in
    memory."""
    prefix = env["LIENTHONG_TOPIC_PREFIX"]
    app_id = env["LIENTHONG_WORKER__APP_ID"]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        names = sorted(
            t
            for t in consumer.topics()
            if (t.startswith(prefix) and not t.endswith("dossier-events"))
            or t.startswith(app_id + "-")
        )
    finally:
        consumer.close()
    lines = [f"{'topic':<28} {'records/ev':>10} {'batches/ev':>10} {'bytes/ev':>9}"]
    totals = [0, 0, 0]
    for name in names:
        records, batches, size = batch_footprint(bootstrap, name)
        if not records:
            continue
        totals = [totals[0] + records, totals[1] + batches, totals[2] + size]
        short = name.removeprefix(prefix).removeprefix(app_id + "-")
        lines.append(
            f"{short:<28} {records / events:>10.3f} {batches / events:>10.3f} {size / events:>9.0f}"
        )
    lines.append(
        f"{'total':<28} {totals[0] / events:>10.3f} {totals[1] / events:>10.3f} "
        f"{totals[2] / events:>9.0f}"
    )
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> int:
    dossiers = int(argv[1]) if len(argv) > 1 else 2000
    rate = float(argv[2]) if len(argv) > 2 else 2000.0
    seconds = float(argv[3]) if len(argv) > 3 else 10.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    with resolve_broker(tmp / "broker") as (bootstrap, how):
        env = env_for(bootstrap, tmp / "run", how)
        settings = load_settings(environ=env)
        with TopicAdmin(settings) as admin:
            admin.apply()
        codec = AvroCodec(registry_from_settings(settings))
        source = settings.topic("dossier-events")
        portal = settings.topic("portal-status")

        # -- phase 1: throughput ---------------------------------------------------------
        script = generate_month(dossiers, seed=11)
        events = script.ordered()
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=1 << 20
        )
        for event, partition in events:
            producer.send(
                source,
                key=event.envelope.dossier_id.encode(),
                value=codec.encode(event),
                partition=partition,
            )
        producer.flush()
        n = len(events)
        received = sum(1 for e, _ in events if e.EVENT_TYPE == "dossier_received")
        print(f"broker: {how}; {n} events ({dossiers} dossiers) published", flush=True)
        worker = WorkerProcess(env, tmp / "worker.log")
        t0 = time.time()
        worker.start(120)
        ready_at = time.time()
        cpu_ready = cpu_seconds(worker.process.pid) if worker.process else None
        counted_at = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            body: Any = worker.get_json("/stats?period=year:2025", timeout=10)
            if body["totals"]["received"] >= received:
                counted_at = time.time()
                break
            time.sleep(0.2)
        stamps = portal_timestamps(bootstrap, portal, n, 120)
        cpu = cpu_seconds(worker.process.pid) if worker.process else None
        first, last = min(stamps) / 1000, max(stamps) / 1000
        print(
            f"throughput: {len(stamps)} portal records in {last - first:.2f} s "
            f"= {len(stamps) / max(last - first, 1e-9):,.0f} events/s (first→last output)"
        )
        if counted_at is not None:
            print(
                f"throughput: all {received} dossiers counted {counted_at - first:.2f} s after "
                f"the first output = {n / max(counted_at - first, 1e-9):,.0f} events/s "
                f"(worker start → ready {first - t0:.1f} s not included)"
            )

        if cpu is not None:
            print(
                f"worker CPU (user+sys, incl. start-up): {cpu:.1f} s = "
                f"{cpu / n * 1e6:,.0f} µs/event → CPU-bound ceiling ≈ {n / cpu:,.0f} events/s"
            )
        after_ready = sum(1 for s in stamps if s / 1000 >= ready_at)
        if cpu is not None and cpu_ready is not None and after_ready:
            # Start-up (imports, group join, table recovery) is a fixed cost that the line
            # above spreads over the events; this one is the per-event cost once running.
            steady = (cpu - cpu_ready) / after_ready
            print(
                f"worker CPU once ready: {cpu - cpu_ready:.1f} s for {after_ready} events = "
                f"{steady * 1e6:,.0f} µs/event → ≈ {1 / steady:,.0f} events/s per core"
            )

        footprint = output_footprint(bootstrap, env, n)
        print("written per input event (phase 1):\n" + footprint, flush=True)

        # -- phase 2: latency at a fixed rate --------------------------------------------
        total = int(rate * seconds)
        fresh = generate_month(max(1, total // 7), seed=12)
        paced = [(e, p) for e, p in fresh.ordered() if not e.envelope.dossier_id.startswith("T")]
        paced = paced[:total]
        renamed = []
        for event, _ in paced:
            env_data = event.envelope.model_copy(
                update={"dossier_id": "L" + (event.envelope.dossier_id or "")}
            )
            env_data = env_data.model_copy(
                update={
                    "event_id": uuid.uuid5(PORTAL_NAMESPACE, f"bench/{event.envelope.event_id}")
                }
            )
            renamed.append(event.model_copy(update={"envelope": env_data}))
        encoded = [(e.envelope.dossier_id.encode(), codec.encode(e)) for e in renamed]
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
        sent_at: dict[uuid.UUID, float] = {}
        start = time.perf_counter()
        for i, (key, value) in enumerate(encoded):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.send(source, key=key, value=value)
            sent_at[uuid.uuid5(PORTAL_NAMESPACE, str(renamed[i].envelope.event_id))] = time.time()
        producer.flush()
        achieved = len(encoded) / (time.perf_counter() - start)
        consumer = KafkaConsumer(
            portal,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
            enable_auto_commit=False,
        )
        latencies = []
        for m in consumer:
            record = codec.decode(m.value)
            sent = sent_at.get(record.envelope.event_id)
            if sent is not None:
                latencies.append(m.timestamp / 1000 - sent)
        consumer.close()
        worker.stop()
        if latencies:
            print(
                f"latency at {achieved:,.0f} events/s offered ({len(latencies)}/{len(encoded)} "
                f"seen): p50 {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms (event in → portal record out; counts "
                "add up to stats_flush_s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
