"""A record whose handling fails must not stop the tracker nor take its neighbours with it.

The realistic trigger: the portal status record repeats the dossier's whole processing log,
free-text reasons included, so two supplement requests with long (valid, < 1 MB) reasons make
the second portal record larger than the worker's producer accepts (Faust's
``producer_max_request_size``, 1,000,000 bytes). That event is dead-lettered with the reason;
dossiers before and after it in the same partition are processed; the worker stays up.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.models import DossierReceived, SupplementReceived, SupplementRequested
from lienthong.schemas.registry import registry_from_settings
from tests.integration.test_streams_scenarios import (
    CENTER,
    PROC,
    REPLAY,
    SUBJECT,
    Script,
    consume,
    publish,
    t,
)

pytestmark = pytest.mark.integration

PARTITION = 0
# A long reason of the kind an officer pastes (list of missing documents with legal grounds):
# ~560 KB of UTF-8, so one request is a valid input (< 1 MB) but two do not fit one record.
REASON_LINE = (
    "Thiếu bản sao chứng thực Giấy chứng nhận quyền sử dụng đất theo khoản 2 Điều 9 "
    "Nghị định 61/2018/NĐ-CP; đề nghị bổ sung trích lục bản đồ địa chính. "
)  # 201 bytes of UTF-8
LONG_REASON = REASON_LINE * 2800
# A table pasted from a spreadsheet (tabs, line breaks): ~997 KB, which the portal record
# (Avro) still holds but the tracker record does not, since its JSON escapes every tab and
# line break (+7 %); and too large for the event to be dead-lettered whole with its headers.
TABLE_ROW = "1\tBản sao Giấy chứng nhận quyền sử dụng đất\t01\tbản sao chứng thực\n"  # 89 B
TABLE_REASON = TABLE_ROW * 11_200


def received(s: Script, dossier: str, day: int) -> None:
    s.add(
        DossierReceived,
        dossier,
        t(day, 8),
        PARTITION,
        channel="counter",
        procedure_code=PROC,
        receiving_agency=CENTER,
        subject=SUBJECT,
        received_at=t(day, 8),
        appointment_at=t(28, 16),
    )


def supplement(s: Script, dossier: str, day: int, reason: str) -> None:
    s.add(
        SupplementRequested,
        dossier,
        t(day, 9),
        PARTITION,
        requesting_agency=CENTER,
        reason=reason,
        documents=["so-do"],
    )


def portal_by_dossier(bootstrap: str, topic: str, codec: AvroCodec) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for record in consume(bootstrap, topic, codec, idle_s=2.0):
        out.setdefault(record.MaHoSo, []).append(record)
    return out


def wait_portal(
    bootstrap: str, topic: str, codec: AvroCodec, expected: dict[str, int], timeout: float
) -> dict[str, list[Any]]:
    deadline = time.monotonic() + timeout
    portal: dict[str, list[Any]] = {}
    while time.monotonic() < deadline:
        portal = portal_by_dossier(bootstrap, topic, codec)
        if {k: len(v) for k, v in portal.items()} == expected:
            return portal
        time.sleep(1.0)
    return portal


def test_event_with_an_oversize_portal_record_is_dead_lettered_and_its_neighbours_processed(
    kafka_bootstrap, catalogue_topics, bus_settings, start_worker
):
    codec = AvroCodec(registry_from_settings(bus_settings))
    assert 500_000 < len(LONG_REASON.encode()) < 700_000
    assert 996_000 < len(TABLE_REASON.encode()) < 998_000
    s = Script()
    received(s, "HS-BEFORE-1", 3)
    received(s, "HS-BEFORE-2", 3)
    received(s, "HS-HUGE", 4)
    supplement(s, "HS-HUGE", 4, LONG_REASON)
    s.add(
        SupplementReceived,
        "HS-HUGE",
        t(5, 9),
        PARTITION,
        receiving_agency=CENTER,
        documents=["so-do"],
    )
    supplement(s, "HS-HUGE", 6, LONG_REASON.replace("bổ sung", "nộp lại"))  # portal > 1 MB
    received(s, "HS-HUGER", 6)
    supplement(s, "HS-HUGER", 6, TABLE_REASON)
    received(s, "HS-AFTER-1", 6)
    received(s, "HS-AFTER-2", 7)
    publish(kafka_bootstrap, catalogue_topics, codec, s.events)
    worker = start_worker(REPLAY)

    expected = {
        "HS-BEFORE-1": 1,
        "HS-BEFORE-2": 1,
        "HS-HUGE": 3,
        "HS-HUGER": 1,
        "HS-AFTER-1": 1,
        "HS-AFTER-2": 1,
    }
    portal = wait_portal(
        kafka_bootstrap, catalogue_topics["portal-status"], codec, expected, timeout=90.0
    )
    assert {k: len(v) for k, v in portal.items()} == expected, worker.log_tail(60)
    # The huge dossier's last portal record is the supplement received (status back to 2).
    assert [p.TrangThaiHoSo for p in portal["HS-HUGE"]] == [2, 5, 2]

    dead = consume(kafka_bootstrap, catalogue_topics["dead-letters"], None, idle_s=2.0)
    assert len(dead) == 2, [dict(m.headers) for m in dead]
    huge, huger = sorted(dead, key=lambda m: m.key)
    headers = {k: v.decode() for k, v in dict(huge.headers).items()}
    assert huge.key == b"HS-HUGE" and huge.value == codec.encode(s.events[5][0])
    assert headers["lienthong.dlq.error_class"] == "OutputTooLarge"
    assert "portal-status" in headers["lienthong.dlq.reason"]
    assert headers["lienthong.dlq.source_offset"] == "5"
    assert headers["lienthong.dlq.consumer"] == "streams.tracker"
    headers = {k: v.decode() for k, v in dict(huger.headers).items()}
    assert huger.key == b"HS-HUGER" and not huger.value  # left out, too large
    assert headers["lienthong.dlq.error_class"] == "OutputTooLarge"
    reason = headers["lienthong.dlq.reason"]
    assert "tracker record (changelog)" in reason and "left out" in reason, reason
    assert f"{catalogue_topics['dossier-events']} partition 0 offset 7" in reason

    # The tracker kept the dossier as it was before the rejected event: one supplement asked.
    slip = worker.get_json("/dossiers/slip?id=HS-HUGE")
    assert slip["supplement_requests"] == 1 and slip["status"] == "received", slip
    slip = worker.get_json("/dossiers/slip?id=HS-HUGER")
    assert slip["supplement_requests"] == 0 and slip["status"] == "received", slip

    # Still healthy and still applying: a dossier published afterwards is processed too.
    assert worker.process is not None and worker.process.poll() is None
    assert worker.get_json("/health")["status"] == "ok"
    later = Script()
    received(later, "HS-LATER", 8)
    publish(kafka_bootstrap, catalogue_topics, codec, later.events)
    portal = wait_portal(
        kafka_bootstrap,
        catalogue_topics["portal-status"],
        codec,
        {**expected, "HS-LATER": 1},
        timeout=60.0,
    )
    assert len(portal.get("HS-LATER", [])) == 1, worker.log_tail(60)
    assert worker.get_json("/dossiers/slip?id=HS-AFTER-2")["status"] == "received"
    # Nothing was applied twice or restarted: the worker never crashed its agent.
    log_text = worker.log_file.read_text(errors="replace")
    assert "Restarting" not in log_text and "crashed" not in log_text.lower()


# Loaded into the first worker only (``sitecustomize`` on its PYTHONPATH): the broker answers
# the first portal record of one dossier with a timeout, as aiokafka reports a batch that
# expired after its retries. Nothing in the worker is changed; the bus just fails once.
FAILING_BUS = """
import asyncio
import os
from pathlib import Path

import aiokafka
from aiokafka.errors import KafkaTimeoutError

_marker = Path(os.environ["TEST_FAIL_ONCE"])
_dossier = os.environ["TEST_FAIL_DOSSIER"].encode()
_send = aiokafka.AIOKafkaProducer.send


async def send(self, topic, value=None, key=None, *args, **kwargs):
    if topic.endswith("portal-status") and key == _dossier and not _marker.exists():
        _marker.write_text(topic)
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(KafkaTimeoutError("injected: batch expired after the retries"))
        return failed
    return await _send(self, topic, value, key, *args, **kwargs)


aiokafka.AIOKafkaProducer.send = send
"""


def test_a_send_failing_after_retries_stops_the_worker_and_nothing_is_lost(
    kafka_bootstrap, catalogue_topics, bus_settings, start_worker, tmp_path
):
    from tests.integration.test_streams_scenarios import (
        EXPECTED_ALERTS,
        EXPECTED_MARCH,
        alert_set,
        march_script,
        wait_stats,
    )

    codec = AvroCodec(registry_from_settings(bus_settings))
    hook = tmp_path / "failing-bus"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAILING_BUS)
    marker = tmp_path / "failed-once"
    script = march_script()
    events = script.ordered()
    first = start_worker(
        {
            **REPLAY,
            "PYTHONPATH": str(hook),
            "TEST_FAIL_ONCE": str(marker),
            "TEST_FAIL_DOSSIER": "HS-POSTAL",
        }
    )
    publish(kafka_bootstrap, catalogue_topics, codec, events)
    assert first.process is not None
    try:
        code = first.process.wait(timeout=90)
    except Exception:
        raise AssertionError(f"the worker did not stop:\n{first.log_tail(60)}") from None
    assert marker.exists(), first.log_tail(60)
    assert code == 75, first.log_tail(60)
    log_text = first.log_file.read_text(errors="replace")
    assert '"event": "tracker_batch_failed"' in log_text and '"level": "critical"' in log_text
    assert "KafkaTimeoutError" in log_text
    assert "Restarting dead" not in log_text  # no in-process restart of the agent

    # The restarted worker (same group) reads the uncommitted batch again: nothing is missing.
    second = start_worker(REPLAY)
    body = wait_stats(second, EXPECTED_MARCH)
    assert body["totals"] == EXPECTED_MARCH, (body, second.log_tail())
    alerts = consume(kafka_bootstrap, catalogue_topics["deadline-alerts"], codec)
    assert alert_set(alerts) == EXPECTED_ALERTS
    assert len({a.envelope.event_id for a in alerts}) == len(EXPECTED_ALERTS)
    portal = consume(kafka_bootstrap, catalogue_topics["portal-status"], codec)
    assert len({p.envelope.event_id for p in portal}) == len(events)
    by_id: dict[Any, Any] = {}
    for p in portal:  # repeats after the restart are identical records
        seen = by_id.setdefault(p.envelope.event_id, p)
        a, b = seen.model_dump(mode="json"), p.model_dump(mode="json")
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    postal = sorted(
        (p for p in by_id.values() if p.MaHoSo == "HS-POSTAL"), key=lambda p: len(p.QuaTrinhXuLy)
    )
    assert [p.TrangThaiHoSo for p in postal] == [2, 5, 2, 5, 2, 9, 10]
    dead = consume(kafka_bootstrap, catalogue_topics["dead-letters"], None, idle_s=1.0)
    assert dead == []


def test_records_on_stats_partials_that_are_not_partials_are_dead_lettered_and_counts_hold(
    kafka_bootstrap, catalogue_topics, bus_settings, start_worker
):
    """Stage 2 sums whatever is in its table into a key's totals on every later partial: a
    malformed record there (a stray producer, a hand-made test record) must be refused with
    the reason, not stored, and the month's counts of that very key must still come out."""
    from kafka import KafkaProducer

    from lienthong.connectors.headers import DLQ_ERROR_CLASS, DLQ_REASON, DLQ_SOURCE_OFFSET
    from tests.integration.test_streams_scenarios import (
        EXPECTED_MARCH,
        march_script,
        wait_stats,
    )

    codec = AvroCodec(registry_from_settings(bus_settings))
    key = f"{CENTER}|{PROC}|counter|month:2025-03".encode()
    stray = [
        (key, b"not a partial"),
        # Would outrank every real partial of source partition 0 and has no figures to sum.
        (key, b'{"partition": 0, "version": [9e12, 9], "as_of": "2025-03-01T00:00:00+07:00"}'),
        (b"no-period", b"{}"),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for k, v in stray:
        producer.send(catalogue_topics["stats-partials"], key=k, value=v)
    producer.flush()
    producer.close()
    publish(kafka_bootstrap, catalogue_topics, codec, march_script().ordered())
    worker = start_worker(REPLAY)

    body = wait_stats(worker, EXPECTED_MARCH)
    assert body["totals"] == EXPECTED_MARCH, (body, worker.log_tail())
    dead = consume(kafka_bootstrap, catalogue_topics["dead-letters"], None, idle_s=2.0)
    headers = sorted((dict(m.headers or []) for m in dead), key=lambda h: h[DLQ_SOURCE_OFFSET])
    assert [h[DLQ_ERROR_CLASS] for h in headers] == [b"ProcessingFailed"] * 3, headers
    reasons = [h[DLQ_REASON].decode() for h in headers]
    assert "value is not JSON" in reasons[0]
    assert "figures: must be an object" in reasons[1]
    assert "is not agency|procedure|channel|period" in reasons[2]
    assert worker.get_json("/health")["status"] == "ok"
