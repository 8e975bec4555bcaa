"""The tracker record's changelog encoding (lienthong.schemas.dossier_record): version 3 (Avro), and
versions 1 and 2 read after an upgrade."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import fastavro
import pytest

from lienthong.domain.decide import decide
from lienthong.domain.lifecycle import DossierStatus, EventKind, StepStatus
from lienthong.domain.procedures import load_procedures
from lienthong.domain.record import ENTRIES_KEPT
from lienthong.domain.tracking import Applied, Facts, track
from lienthong.schemas.dossier_record import (
    SCHEMA_FILE,
    STATE_VERSION,
    StateDecodeError,
    decode_state,
    encode_state,
)
from lienthong.streams.app import changelog_json
from tests.integration.test_streams_scenarios import PROC, march_script, t
from tests.unit.domain.test_decide import RULES, Partition, facts, run

# A changelog value as the tracker wrote it before version 2 (a JSON object, Faust's json
# codec), kept literally so that the reader is held to the bytes already on the brokers.
LEGACY = (
    '{"id":"HS-OLD","partition":0,"state":{"status":"received","channel":1,"resume":null,'
    '"received_at":"2025-03-03T08:00:00+07:00","due":"2025-03-14T16:00:00+07:00",'
    '"supplements":1,"steps":[],"finished_at":null,"ended_at":null},"procedure":"1.004227",'
    '"receiving_agency":"000.00.01.H10","last_at":"2025-03-05T09:00:00+07:00","seen":{'
    '"9cb7d7c9-bc06-5da3-bd02-46b5282719cb":[[0,40],0],'
    '"c16784bb-db74-5ff4-8aed-74604d5f88b1":[[0,41],1],'
    '"9bd27cb3-d4d7-5fd4-9c3f-e9d0ea41674d":[[0,42],2]},"history":['
    '{"event":["dossier_received","000.00.01.H10",null,null,"2025-03-14T16:00:00+07:00",null,'
    '1],"event_id":"9cb7d7c9-bc06-5da3-bd02-46b5282719cb","status":2,'
    '"at":"2025-03-03T08:00:00+07:00","agency":"000.00.01.H10","note":"Tiếp nhận hồ sơ",'
    '"due":"2025-03-14T16:00:00+07:00","finished_at":null,"returned_at":null},'
    '{"event":["supplement_requested","000.00.01.H10",null,null,null,null,null],'
    '"event_id":"c16784bb-db74-5ff4-8aed-74604d5f88b1","status":5,'
    '"at":"2025-03-04T09:00:00+07:00","agency":"000.00.01.H10",'
    '"note":"Yêu cầu bổ sung hồ sơ: thiếu giấy tờ","due":"2025-03-14T16:00:00+07:00",'
    '"finished_at":null,"returned_at":null},'
    '{"event":["supplement_received","000.00.01.H10",null,null,null,null,null],'
    '"event_id":"9bd27cb3-d4d7-5fd4-9c3f-e9d0ea41674d","status":2,'
    '"at":"2025-03-05T09:00:00+07:00","agency":"000.00.01.H10","note":"Nhận hồ sơ bổ sung",'
    '"due":"2025-03-17T16:00:00+07:00","finished_at":null,"returned_at":null}],'
    '"pauses":[["2025-03-04T09:00:00+07:00","2025-03-05T09:00:00+07:00"]],"handoffs":{},'
    '"sent_alerts":[],"returned_by_post_at":null,"withdrawn_at":null,"refused_at":null,'
    '"holder":"000.00.01.H10","outcome":null}'
)


@pytest.fixture(scope="module")
def month() -> list[Partition]:
    return run(load_procedures(), march_script())


def test_every_record_of_the_scripted_month_survives_the_changelog(month):
    records = [r for p in month for r in p.records.values()]
    saved = [d.final for p in month for d in p.decisions if d.final is not None]
    assert len(records) > 10 and len(saved) > len(records)
    for record in [*records, *saved]:
        value = encode_state(record)
        assert value[:2] == bytes((0, STATE_VERSION)) and STATE_VERSION == 3
        assert decode_state(value) == record


def test_version_3_is_a_fraction_of_the_legacy_json():
    cases = json.loads(
        (Path(__file__).parents[1] / "domain" / "data" / "tracker_state_legacy.json").read_text()
    )["cases"]
    v1 = sum(len(changelog_json(c["v1"])) for c in cases)
    v2 = sum(len(changelog_json(c["v2"])) for c in cases)
    v3 = sum(len(encode_state(decode_state(c["v1"]))) for c in cases)
    assert v3 < 0.5 * v2 and v3 < 0.3 * v1, (v1, v2, v3)


def test_an_old_changelog_record_is_read_after_the_upgrade_and_carries_on():
    old = decode_state(LEGACY.encode())  # the very bytes on the broker
    assert old.id == "HS-OLD" and old.applied == 3 and old.sources == ((0, 42),)
    assert [e.source_offset for e in old.entries] == [40, 41, 42]
    assert old.entries[1].note == "Yêu cầu bổ sung hồ sơ: thiếu giấy tờ"
    assert old.supplement_agencies == ("000.00.01.H10",) and len(old.pauses) == 1
    assert decode_state(encode_state(old)) == old  # rewritten as version 3, same record
    # The upgraded worker recognises the old record's events and goes on from it.
    procedure = load_procedures().get(PROC)
    first = facts(march_script().ordered()[0][0])
    redelivered = replace(first, event_id="9cb7d7c9-bc06-5da3-bd02-46b5282719cb")
    again = decide(old, redelivered, procedure, first.at, partition=0, offset=40, rules=RULES)
    assert again.redelivered and again.portal is not None
    assert again.portal.view["TrangThaiHoSo"] == 2 and len(again.portal.progress) == 1


def test_values_of_no_known_version_are_refused_with_the_reason():
    good = encode_state(decode_state(LEGACY.encode()))
    with pytest.raises(StateDecodeError, match="unknown encoding version 4"):
        decode_state(b"\x00\x04" + good[2:])
    with pytest.raises(StateDecodeError, match="version 3: "):
        decode_state(good[: len(good) // 2])
    with pytest.raises(StateDecodeError, match="unknown framing"):
        decode_state(b"HS-1")
    with pytest.raises(StateDecodeError, match="expected bytes"):
        decode_state("HS-1")  # type: ignore[arg-type]
    with pytest.raises(StateDecodeError, match="unknown array version"):
        decode_state([3, "HS-1"])
    with pytest.raises(StateDecodeError, match="fields, expected 16"):
        decode_state([2, "HS-1", 0])
    v2 = json.loads(LEGACY)
    v2["history"][0].pop("note")
    with pytest.raises(StateDecodeError, match="version 1/2: KeyError"):
        decode_state(v2)


def _fact(n: int, kind: EventKind, hours: int) -> Facts:
    return Facts(
        event_id=f"ev-{n}",
        kind=kind,
        dossier_id="HS-LONG",
        at=t(3, 8) + timedelta(hours=hours),
        agency="000.00.01.H10",
        procedure=PROC if kind is EventKind.DOSSIER_RECEIVED else None,
    )


def test_a_dossier_with_many_events_keeps_a_bounded_record():
    """200 fee rounds: the record holds the newest entries, its bytes stop growing, and every
    event already applied is still recognised (held: by id; older: by source offset)."""
    record = track(None, _fact(0, EventKind.DOSSIER_RECEIVED, 0), partition=2, offset=0).record
    sizes = []
    for n in range(1, 401):
        kind = EventKind.FEE_REQUESTED if n % 2 else EventKind.FEE_PAID
        result = track(record, _fact(n, kind, n), partition=2, offset=n)
        assert isinstance(result, Applied), result
        record = result.record
        sizes.append(len(encode_state(record)))
    assert record.applied == 401 and len(record.entries) == ENTRIES_KEPT
    assert record.entries[0].index == 401 - ENTRIES_KEPT
    # Flat once the window is full (offsets and indices only gain a varint byte now and then).
    assert sizes[-1] < 1.1 * sizes[ENTRIES_KEPT + 10], sizes[::50]
    newest = _fact(400, EventKind.FEE_PAID, 400)
    again = track(record, newest, partition=2, offset=400)
    assert again.same_record and again.history_index == 400  # crash redelivery, held
    assert not track(record, newest, partition=2, offset=999).same_record  # producer retry
    oldest = _fact(3, EventKind.FEE_REQUESTED, 3)
    old = track(record, oldest, partition=2, offset=3)  # older than the entries held
    assert old.same_record and old.history_index == -1
    d = decide(record, oldest, None, oldest.at, partition=2, offset=3, rules=RULES)
    assert d.state is None and d.rejection is None  # nothing to do, nothing re-applied


def test_the_schema_file_is_version_3_and_names_every_state_of_the_domain():
    """The schema of a released version never changes: a new field means version 4 (a new
    file, a new reader branch, this test's fingerprint for the new file)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["name"] == "DossierRecord" and schema["namespace"].endswith(".v3")
    named = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                named[node["name"]] = node["symbols"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert named == {
        "DossierStatus": [s.value for s in DossierStatus],
        "StepStatus": [s.value for s in StepStatus],
        "EventKind": [k.value for k in EventKind],
    }
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    assert fastavro.schema.fingerprint(canonical, "CRC-64-AVRO") == FINGERPRINT


FINGERPRINT = "19f55c0efd1dbe16"  # CRC-64-AVRO of schemas/state/dossier_record.v3.avsc


def test_the_native_writer_and_fastavro_write_the_same_bytes(month):
    """The project's native Avro encoder (when built) writes the record from its attributes;
    fastavro, from a dict, is the reference: same bytes, and each reads what the other wrote."""
    from lienthong.schemas import dossier_record as state
    from lienthong.schemas.codec import NATIVE_AVAILABLE

    records = [d.final for p in month for d in p.decisions if d.final is not None]
    fast = state._native()
    assert (fast is not None) == NATIVE_AVAILABLE
    for record in records:
        reference = encode_state(record, native=False)
        assert encode_state(record) == reference
        if fast is not None:  # not a silent fallback: the native writer took it
            assert fast[0](state._Flat(record), reference[:2]) == reference
            assert state._from_v3(fast[1](reference)) == record
