"""The tracker record's changelog encoding (lienthong.domain.state): versions 1 and 2."""

from __future__ import annotations

import json

import pytest

from lienthong.domain.decide import decide
from lienthong.domain.procedures import load_procedures
from lienthong.domain.state import STATE_VERSION, StateDecodeError, decode_state, encode_state
from tests.integration.test_streams_scenarios import PROC, march_script
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


def wire(value: object) -> object:
    """Through the changelog and back (JSON text, as Faust's json codec carries it)."""
    return json.loads(json.dumps(value))


@pytest.fixture(scope="module")
def month() -> list[Partition]:
    return run(load_procedures(), march_script())


def test_every_record_of_the_scripted_month_survives_the_changelog(month):
    records = [r for p in month for r in p.records.values()]
    saved = [d.final for p in month for d in p.decisions if d.final is not None]
    assert len(records) > 10 and len(saved) > len(records)
    for record in [*records, *saved]:
        value = wire(encode_state(record))
        assert isinstance(value, list) and value[0] == STATE_VERSION == 2
        assert decode_state(value) == record


def test_version_2_is_much_smaller_than_the_record_dict(month):
    records = [r for p in month for r in p.records.values()]
    v1 = sum(len(json.dumps(r).encode()) for r in records)
    v2 = sum(len(json.dumps(encode_state(r)).encode()) for r in records)
    assert v2 < 0.65 * v1, (v1, v2)


def test_an_old_changelog_record_is_read_after_the_upgrade_and_carries_on():
    old = decode_state(json.loads(LEGACY))
    assert old["id"] == "HS-OLD" and old["seen"]["c16784bb-db74-5ff4-8aed-74604d5f88b1"] == [
        [0, 41],
        1,
    ]
    assert decode_state(wire(encode_state(old))) == old  # rewritten as version 2, same record
    # The upgraded worker recognises the old record's events and goes on from it.
    procedure = load_procedures().get(PROC)
    first = facts(march_script().ordered()[0][0])
    redelivered = {**first.__dict__, "event_id": "9cb7d7c9-bc06-5da3-bd02-46b5282719cb"}
    again = decide(
        old, type(first)(**redelivered), procedure, first.at, partition=0, offset=40, rules=RULES
    )
    assert again.redelivered and again.portal is not None
    assert again.portal.view["TrangThaiHoSo"] == 2 and len(again.portal.progress) == 1


def test_values_of_no_known_version_are_refused_with_the_reason():
    with pytest.raises(StateDecodeError, match="unknown encoding version 3"):
        decode_state([3, "HS-1"])
    with pytest.raises(StateDecodeError, match="fields, expected 16"):
        decode_state([2, "HS-1", 0])
    with pytest.raises(StateDecodeError, match="expected an object or array"):
        decode_state("HS-1")
    value = encode_state(decode_state(json.loads(LEGACY)))
    value[7][0] = value[7][0][:-1]
    with pytest.raises(StateDecodeError, match="history entry 0 has 15 fields"):
        decode_state(value)
