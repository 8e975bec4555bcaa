"""A restarted worker resumes from its local RocksDB store plus the changelog tail (issue 14).

Real broker, real worker subprocesses (same web port, so the same data directory), replay
clock. After the scripted month the worker is SIGKILLed: its tables' partition databases are
on disk, each with the changelog offset it holds, and that offset is the changelog's end (so
the restart has no changelog to read back but the tail). The restarted worker then serves
the same counts and the same slips (what of them does not depend on the replay clock, which a
restarted worker has again only as events come in), and an event sent again changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rocksdict
from kafka import KafkaConsumer, TopicPartition

from lienthong.config import load_settings
from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.registry import registry_from_settings
from tests.integration.test_streams_scenarios import (
    EXPECTED_MARCH,
    PROC,
    REPLAY,
    march_script,
    publish,
    wait_stats,
)
from tests.support.workers import WorkerProcess

CLOCK_FIELDS = ("effective_due", "late", "responsible_agencies")
OFFSET_KEY = b"__faust\0offset__"  # where faust's RocksDB store keeps its changelog offset


@pytest.fixture
def codec(bus_settings) -> AvroCodec:
    return AvroCodec(registry_from_settings(bus_settings))


def local_offsets(tables: Path, table: str) -> dict[int, int]:
    """Changelog offset each partition database of ``table`` holds (read-only, worker dead)."""
    found = {}
    for path in sorted(tables.glob(f"{table}-*.db")):
        partition = int(path.name.removesuffix(".db").rsplit("-", 1)[1])
        db = rocksdict.Rdict(str(path), access_type=rocksdict.AccessType.read_only())
        try:
            raw = db.get(OFFSET_KEY)
            if raw is not None:
                found[partition] = int(raw)
        finally:
            db.close()
    return found


def changelog_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Offset of the last record of each non-empty partition of ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end - 1 for tp, end in consumer.end_offsets(parts).items() if end}
    finally:
        consumer.close()


def slips(worker: WorkerProcess, ids: list[str], *, clock: bool = True) -> dict[str, Any]:
    """The slips of ``ids``; ``clock=False`` leaves out what is judged at the partition's
    clock (an open pause runs to it, lateness is as of it), which a restarted replay worker
    only has again once events come in."""
    out = {d: worker.get_json(f"/dossiers/slip?id={d}") for d in ids}
    return out if clock else {d: without_clock(slip) for d, slip in out.items()}


def without_clock(slip: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in slip.items() if k not in CLOCK_FIELDS}
    kept["steps"] = [{k: v for k, v in s.items() if k != "on_time"} for s in slip["steps"]]
    return kept


def test_a_restarted_worker_resumes_from_its_local_store(
    kafka_bootstrap, catalogue_topics, codec, bus_env, tmp_path
):
    settings = load_settings(environ={**bus_env, **REPLAY})
    env = {**bus_env, **REPLAY}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    script = march_script()
    publish(kafka_bootstrap, catalogue_topics, codec, script.events)
    before = wait_stats(worker, EXPECTED_MARCH)
    assert before["totals"] == EXPECTED_MARCH, worker.log_tail()
    ids = sorted({event.envelope.dossier_id for event, _ in script.events})
    slips_before = slips(worker, ids)
    assert all("status" in s for s in slips_before.values()), slips_before
    worker.kill()

    data = settings.run_dir / "worker-data" / f"{settings.worker.app_id}-{worker.web_port}"
    tables = data / "v1" / "tables"
    changelog = f"{settings.worker.app_id}-dossiers-changelog"
    held = local_offsets(tables, "dossiers")
    ends = changelog_ends(kafka_bootstrap, changelog)
    assert ends, f"no dossiers changelog records in {changelog}"
    # Every changelog record the worker wrote is in its local store: nothing to read back.
    assert held == ends, (held, ends, sorted(p.name for p in tables.iterdir()))

    worker.start()  # same web port: same data directory
    after = wait_stats(worker, EXPECTED_MARCH)
    assert after["totals"] == before["totals"], worker.log_tail()
    restored = slips(worker, ids, clock=False)
    expected = {d: without_clock(slip) for d, slip in slips_before.items()}
    assert restored == expected, [
        (d, expected[d], restored[d]) for d in ids if restored[d] != expected[d]
    ]
    # The month's newest event again: recognised from the restored record (a duplicate); it
    # brings its partition's replay clock back to where it was, so the counts are as before.
    newest = max(script.events, key=lambda ep: ep[0].envelope.occurred_at)
    publish(kafka_bootstrap, catalogue_topics, codec, [newest])
    worker.wait_caught_up()
    again = worker.get_json(f"/stats?procedure={PROC}&period=month:2025-03")
    assert again["totals"] == EXPECTED_MARCH
    assert slips(worker, ids, clock=False) == expected
    worker.kill()
