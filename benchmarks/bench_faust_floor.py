"""What faust-streaming itself costs per event on this machine, with no lienthong code at all.

Why: issue 5 asks for 20,000 events/s per worker. Before blaming (or optimising) our agents it
helps to know the floor: how fast one Faust worker can merely iterate a topic, and what each
output record costs through ``Topic.send`` versus the producer underneath it. Each mode runs a
minimal Faust app as a real subprocess against a real broker (``LIENTHONG_BOOTSTRAP``, else the
embedded Tansu) over N pre-produced 250-byte records on 6 partitions, and prints events/s and
CPU µs per event measured between the first and the last event (start-up excluded).

Modes:
  iterate       ``async for event in stream.events()``: nothing else
  take          ``stream.take_events(1000, within=0.05)`` batches, nothing else
  topic-send    iterate + ``await out.send(...)`` per event (Faust's Topic.send path)
  producer-send take batches + ``await app.producer.send(...)`` per event (aiokafka underneath)

Run:  python benchmarks/bench_faust_floor.py [N] [MODE ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from tests.support.broker import resolve_broker  # noqa: E402

MODES = ("iterate", "take", "topic-send", "producer-send")

APP = """
import os, time, faust
N = int(os.environ["FLOOR_N"]); MODE = os.environ["FLOOR_MODE"]
app = faust.App(
    "floor-" + os.environ["FLOOR_TOPIC"], broker="kafka://" + os.environ["FLOOR_BOOTSTRAP"],
    broker_session_timeout=6, broker_heartbeat_interval=1, consumer_auto_offset_reset="earliest",
    web_enabled=False, datadir=os.environ["FLOOR_DATA"],
)
source = app.topic(os.environ["FLOOR_TOPIC"], key_serializer="raw", value_serializer="raw")
out = app.topic(os.environ["FLOOR_TOPIC"] + "-out", key_serializer="raw", value_serializer="raw")
state = {"seen": 0}

def seen():
    state["seen"] += 1
    if state["seen"] == 1:
        state["t0"], state["c0"] = time.perf_counter(), time.process_time()
    elif state["seen"] == N:
        wall = time.perf_counter() - state["t0"]
        cpu = time.process_time() - state["c0"]
        print(f"RESULT {N / wall:.0f} {cpu / N * 1e6:.1f}", flush=True)
        os._exit(0)

@app.agent(source)
async def run(stream):
    if MODE == "iterate":
        async for event in stream.events():
            seen()
    elif MODE == "take":
        async for batch in stream.take_events(1000, within=0.05):
            for event in batch:
                seen()
    elif MODE == "topic-send":
        async for event in stream.events():
            await out.send(key=event.key, value=event.value)
            seen()
    else:
        name = out.get_topic_name()
        async for batch in stream.take_events(1000, within=0.05):
            for event in batch:
                await app.producer.send(name, event.key, event.value, None, None, None)
                seen()

app.main()
"""


def run_mode(bootstrap: str, mode: str, n: int, tmp: Path) -> str:
    topic = f"floor-{mode}-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 6, 1), NewTopic(topic + "-out", 6, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20)
    value = b"x" * 250
    for i in range(n):
        producer.send(topic, key=str(i % 5000).encode(), value=value)
    producer.flush()
    producer.close()
    app = tmp / "floor_app.py"
    app.write_text(APP)
    env = {
        **os.environ,
        "FLOOR_N": str(n),
        "FLOOR_MODE": mode,
        "FLOOR_TOPIC": topic,
        "FLOOR_BOOTSTRAP": bootstrap,
        "FLOOR_DATA": str(tmp / f"data-{topic}"),
    }
    done = subprocess.run(
        [sys.executable, str(app), "worker", "-l", "warn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        if "RESULT" in line:
            rate, cpu = line.split("RESULT", 1)[1].split()
            return f"{mode:14} {float(rate):>9,.0f} events/s   {float(cpu):7.1f} µs CPU/event"
    return f"{mode:14} failed: {done.stderr[-500:]}"


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    modes = argv[2:] or list(MODES)
    tmp = Path(tempfile.mkdtemp(prefix="bench-faust-floor-"))
    with resolve_broker(tmp / "broker") as (bootstrap, how):
        print(f"broker: {how}; {n} records of 250 bytes on 6 partitions per mode", flush=True)
        for mode in modes:
            print(run_mode(bootstrap, mode, n, tmp), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
