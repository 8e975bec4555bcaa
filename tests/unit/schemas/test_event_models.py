"""The models enforce the rules Avro cannot: aware times, agency codes, digests, portal dates."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from lienthong.schemas import (
    EVENT_CLASSES,
    Channel,
    DossierReceived,
    HandoffSent,
    LiveStatsSnapshot,
    from_portal_date,
    hash_identifier,
    to_portal_date,
)
from lienthong.schemas.catalogue import event_schemas
from lienthong.schemas.examples import CENTER, example_event, example_events
from lienthong.schemas.models import AVRO_DIR, VN_TZ

REPO = Path(__file__).resolve().parents[3]


def test_every_event_type_has_a_schema_and_a_model() -> None:
    schemas = event_schemas()
    assert set(schemas) == {cls.EVENT_TYPE for cls in EVENT_CLASSES}
    assert len(schemas) >= 24


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_model_fields_match_avro_fields(cls) -> None:
    schema = event_schemas()[cls.EVENT_TYPE].schema
    assert [f["name"] for f in schema["fields"]] == list(cls.model_fields)
    assert schema["event_type"] == cls.EVENT_TYPE
    assert cls.SCHEMA_VERSION == schema["schema_version"]


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.EVENT_TYPE)
def test_inlined_envelope_equals_envelope_avsc(cls) -> None:
    envelope = json.loads((AVRO_DIR / "envelope.avsc").read_text(encoding="utf-8"))
    schema = event_schemas()[cls.EVENT_TYPE].schema
    assert schema["fields"][0]["name"] == "envelope"
    assert schema["fields"][0]["type"] == envelope


def test_every_event_topic_is_in_the_topic_catalogue() -> None:
    catalogue = tomllib.loads((REPO / "deploy" / "topics.toml").read_text(encoding="utf-8"))
    names = {topic["name"] for topic in catalogue["topic"]}
    for cls in EVENT_CLASSES:
        assert cls.TOPIC in names, cls


def test_naive_datetime_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValidationError) as info:
        example_event("dossier_received", occurred_at=datetime(2024, 3, 1, 8, 30))
    errors = info.value.errors()
    assert errors[0]["loc"] == ("envelope", "occurred_at")
    assert "naive datetime" in errors[0]["msg"]


def test_times_are_rendered_in_vietnam_time() -> None:
    event = example_event("dossier_received", occurred_at=datetime(2024, 3, 1, 1, 30, tzinfo=UTC))
    assert event.envelope.occurred_at.tzinfo == VN_TZ
    assert event.envelope.occurred_at.hour == 8
    assert '"2024-03-01T08:30:00+07:00"' in event.model_dump_json()


@pytest.mark.parametrize(
    "code",
    [
        "000.00.12.H10",
        "000.00.00.G22",
        "A1B.00.12.H10",
        "H10.12",
        "000.0.12.H10",
        "000.00.12.h10",
        "",
    ],
)
def test_agency_code_shape(code: str) -> None:
    ok = code in ("000.00.12.H10", "000.00.00.G22", "A1B.00.12.H10")
    if ok:
        assert (
            example_event("handoff_accepted", producer_agency=code).envelope.producer_agency == code
        )
    else:
        with pytest.raises(ValidationError, match="producer_agency"):
            example_event("handoff_accepted", producer_agency=code)


def test_event_type_must_match_the_model() -> None:
    good = example_event("handoff_accepted").model_dump()
    good["envelope"]["event_type"] = "handoff_sent"
    with pytest.raises(ValidationError, match="envelope.event_type"):
        type(example_event("handoff_accepted")).model_validate(good)


def test_dossier_id_required_except_for_stats() -> None:
    with pytest.raises(ValidationError, match="dossier_id is required"):
        example_event("handoff_accepted", dossier_id=None)
    assert isinstance(example_event("live_stats_snapshot"), LiveStatsSnapshot)


def test_extra_fields_are_rejected() -> None:
    data = example_event("handoff_accepted").model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        type(example_event("handoff_accepted")).model_validate(data)


def test_hash_identifier_is_salted_hmac_and_normalised() -> None:
    salt = "s" * 16
    a = hash_identifier("0012 3456 7890", salt)
    assert a == hash_identifier("001234567890", salt)
    assert a != hash_identifier("001234567890", "t" * 16)
    assert len(a) == 64 and int(a, 16) >= 0
    assert "001234567890" not in a
    with pytest.raises(ValueError, match="at least 16 bytes"):
        hash_identifier("001234567890", "short")


def test_channel_portal_codes() -> None:
    assert [c.portal_code for c in Channel] == [1, 2, 3]
    assert Channel.from_portal_code(3) is Channel.POSTAL
    with pytest.raises(ValueError):
        Channel.from_portal_code(4)


def test_portal_dates() -> None:
    when = datetime(2024, 3, 1, 1, 30, 5, tzinfo=UTC)
    assert to_portal_date(when) == "20240301083005"
    assert from_portal_date("20240301083005") == when
    data = example_event("portal_status_record").model_dump()
    data["NgayTiepNhan"] = "20240231083000"  # 31 February
    with pytest.raises(ValidationError, match="NgayTiepNhan"):
        type(example_event("portal_status_record")).model_validate(data)
    data["NgayTiepNhan"] = "2024-03-01 08:30"
    with pytest.raises(ValidationError, match="yyyyMMddHHmmss"):
        type(example_event("portal_status_record")).model_validate(data)


def test_portal_status_range() -> None:
    data = example_event("portal_status_record").model_dump()
    data["TrangThaiHoSo"] = 11
    with pytest.raises(ValidationError, match="TrangThaiHoSo"):
        type(example_event("portal_status_record")).model_validate(data)


def test_create_fills_the_envelope() -> None:
    event = HandoffSent.create(
        dossier_id="D-1",
        producer_agency=CENTER,
        occurred_at=datetime(2024, 3, 1, 8, tzinfo=VN_TZ),
        handoff_id="h",
        from_agency=CENTER,
        to_agency="000.01.11.H10",
        step=1,
        step_due_at=datetime(2024, 3, 2, 8, tzinfo=VN_TZ),
    )
    assert event.envelope.event_type == "handoff_sent"
    assert event.envelope.schema_version == 1
    assert event.envelope.trace_id == event.envelope.event_id.hex
    assert event.envelope.recorded_at.tzinfo == VN_TZ


def test_examples_cover_every_event() -> None:
    assert {e.EVENT_TYPE for e in example_events().values()} == {
        c.EVENT_TYPE for c in EVENT_CLASSES
    }
    assert isinstance(example_events()["dossier_received"], DossierReceived)


def test_live_stats_key() -> None:
    assert example_event("live_stats_snapshot").key == "000.00.01.H10|*|*|quarter:2024-Q1"
