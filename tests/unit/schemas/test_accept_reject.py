"""decode_or_reason: the accept/reject gate returns typed reasons instead of raising."""

from __future__ import annotations

from datetime import datetime, timedelta

from lienthong.schemas import (
    AvroCodec,
    FutureEvent,
    NotFramed,
    UnknownAgency,
    Validator,
    decode_or_reason,
)
from lienthong.schemas.examples import CENTER, LAND_OFFICE, example_event
from lienthong.schemas.models import VN_TZ
from lienthong.schemas.validate import default_agency_check, pattern_only_agency_check

NOW = datetime(2024, 3, 1, 9, 0, tzinfo=VN_TZ)


def test_accepts_a_good_record(codec: AvroCodec) -> None:
    event = example_event("handoff_sent")
    got = decode_or_reason(codec.encode(event), codec=codec, clock=lambda: NOW)
    assert got == event


def test_bad_bytes_are_returned_not_raised(codec: AvroCodec) -> None:
    got = decode_or_reason(b"hello", codec=codec)
    assert isinstance(got, NotFramed)


def test_unknown_producer_agency(codec: AvroCodec) -> None:
    event = example_event("handoff_sent", producer_agency="000.00.77.H10")
    got = decode_or_reason(
        codec.encode(event), codec=codec, is_known_agency={CENTER, LAND_OFFICE}.__contains__
    )
    assert isinstance(got, UnknownAgency)
    assert str(got) == "envelope.producer_agency = '000.00.77.H10' is not a known agency"


def test_unknown_agency_in_a_payload_field(codec: AvroCodec) -> None:
    event = example_event("handoff_sent")  # to_agency is LAND_OFFICE
    got = decode_or_reason(codec.encode(event), codec=codec, is_known_agency={CENTER}.__contains__)
    assert isinstance(got, UnknownAgency)
    assert got.field == "to_agency"


def test_future_event_uses_the_injected_clock_and_skew(codec: AvroCodec) -> None:
    data = codec.encode(example_event("handoff_sent", occurred_at=NOW + timedelta(minutes=6)))
    got = decode_or_reason(data, codec=codec, clock=lambda: NOW)
    assert isinstance(got, FutureEvent)
    assert "ahead of the consumer clock" in str(got)
    assert "allowed skew 0:05:00" in str(got)
    relaxed = decode_or_reason(
        data, codec=codec, clock=lambda: NOW, max_future_skew=timedelta(minutes=10)
    )
    assert not isinstance(relaxed, FutureEvent)
    # within skew is fine
    ok = codec.encode(example_event("handoff_sent", occurred_at=NOW + timedelta(minutes=4)))
    assert not isinstance(decode_or_reason(ok, codec=codec, clock=lambda: NOW), FutureEvent)


def test_validator_caches_agency_lookups(codec: AvroCodec) -> None:
    calls: list[str] = []

    def known(code: str) -> bool:
        calls.append(code)
        return True

    validator = Validator(codec, known, clock=lambda: NOW)
    data = codec.encode(example_event("handoff_sent"))
    for _ in range(3):
        validator.decode_or_reason(data)
    assert sorted(set(calls)) == sorted(calls)


def test_default_agency_check_falls_back_to_the_pattern() -> None:
    check = default_agency_check()
    assert check(CENTER)
    if check is pattern_only_agency_check:
        assert not check("nonsense")
