"""What one record costs in the embedded broker's memory, and whether anything gives it back.

Why: issue 14 asks whether the embedded Tansu (memory storage) can hold a province-year and, if
not, how many bytes per record it costs. This starts a private Tansu on a free loopback port and
writes records of one size to fresh topics in four ways, reading the broker's RSS after each:

  single      one record per batch (what the changelogs get on the embedded broker)
  batched     the same records in batches of up to 500 (what the outputs get)
  compacted   single-record batches to a ``cleanup.policy=compact`` topic, every key written
              ``REWRITES`` times (as a changelog rewrites a dossier on every event)
  retention   single-record batches to a topic with ``retention.ms=1000``, then a wait for
              retention to run (does memory storage ever free a record?)
  trimmed     the ``single`` topic's records deleted up to its end (DeleteRecords)
  deleted     the topics deleted

Run:  python benchmarks/bench_broker_memory.py [RECORDS] [VALUE_BYTES]
      (defaults 100000 records of 600 bytes: about what one event writes on average)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from lienthong.runtime import probe  # noqa: E402
from lienthong.runtime.broker import EmbeddedBroker  # noqa: E402
from tests.support.broker import embedded_settings  # noqa: E402

REWRITES = 10
RETENTION_WAIT_S = 90.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def produce(bootstrap: str, topic: str, n: int, size: int, *, batch: bool, keys: int) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20 if batch else 0,
        batch_size=500 * (size + 64) if batch else 1,
        max_in_flight_requests_per_connection=5,
    )
    value = b"x" * size
    for i in range(n):
        producer.send(topic, key=f"k{i % keys:08d}".encode(), value=value)
    producer.flush()
    producer.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        broker = EmbeddedBroker(embedded_settings(Path(tmp), probe.free_port()))
        record = broker.start()
        try:
            admin = KafkaAdminClient(bootstrap_servers=record.bootstrap)
            topics = {
                "single": {},
                "batched": {},
                "compacted": {"cleanup.policy": "compact", "segment.ms": "1000"},
                "retention": {"retention.ms": "1000", "segment.ms": "1000"},
            }
            admin.create_topics(
                [NewTopic(t, 1, 1, topic_configs=c) for t, c in topics.items()],
                validate_only=False,
            )
            base = rss_bytes(record.pid)
            print(f"broker pid {record.pid}: {n:,} records of {size} bytes per case")
            print(f"idle RSS {base / 2**20:,.1f} MiB")
            cases = [
                ("single", False, n),
                ("batched", True, n),
                ("compacted", False, max(1, n // REWRITES)),
                ("retention", False, n),
            ]
            for topic, batch, keys in cases:
                before = rss_bytes(record.pid)
                t0 = time.perf_counter()
                produce(record.bootstrap, topic, n, size, batch=batch, keys=keys)
                wall = time.perf_counter() - t0
                grown = rss_bytes(record.pid) - before
                print(
                    f"{topic:10s} +{grown / 2**20:8,.1f} MiB  {grown / n:7,.0f} B/record  "
                    f"{grown / (n * size):5.2f}x payload  ({n / wall:,.0f} records/s, "
                    f"{keys:,} keys)"
                )
            before = rss_bytes(record.pid)
            time.sleep(RETENTION_WAIT_S)  # retention is the broker's timer; nothing to poll for
            after = rss_bytes(record.pid)
            print(
                f"after {RETENTION_WAIT_S:.0f} s (retention.ms=1000, compaction due): "
                f"{(after - before) / 2**20:+,.1f} MiB"
            )
            try:
                answer = admin.delete_records({TopicPartition("single", 0): n})
                print(f"DeleteRecords answered: {answer}")
            except Exception as exc:  # report what the broker answers, it is the finding
                print(f"DeleteRecords refused: {exc!r}")
            time.sleep(5)  # let the broker act on it; RSS is what we read
            trimmed = rss_bytes(record.pid)
            print(f"after DeleteRecords on single: {(trimmed - after) / 2**20:+,.1f} MiB")
            after = trimmed
            admin.delete_topics(list(topics))
            time.sleep(5)
            deleted = rss_bytes(record.pid)
            print(f"topics deleted: {(deleted - after) / 2**20:+,.1f} MiB")
            print(f"total RSS {deleted / 2**20:,.1f} MiB (idle {base / 2**20:,.1f} MiB)")
            admin.close()
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
