"""BusClient without a broker: envelope, validation, hashing, wait/no-wait (a recording producer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from lienthong.config import load_settings
from lienthong.connectors.sdk import BusClient, PendingEvent, PublishError
from lienthong.schemas import decode, encode
from lienthong.schemas.models import (
    VN_TZ,
    DossierReceived,
    HandoffSent,
    PostalOrderRequested,
    hash_identifier,
)

CENTER = "000.00.01.H10"
TAX = "000.00.60.H10"
SALT = "unit-test-salt-0123456789"


class _Future:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.is_done = True

    def get(self, timeout: float | None = None) -> object:
        if self.fail:
            raise TimeoutError("no ack")
        return object()


class RecordingProducer:
    def __init__(self, fail: bool = False) -> None:
        self.settings = load_settings(environ={"LIENTHONG_IDENTIFIER_SALT": SALT})
        self.sent: list[Any] = []
        self.fail = fail

    def send(self, event: Any, **_: Any) -> _Future:
        encode(event)  # must be encodable as it is
        self.sent.append(event)
        return _Future(self.fail)

    def flush(self, timeout: float | None = None) -> None:
        pass


def _client(**kw: Any) -> tuple[BusClient, RecordingProducer]:
    producer = RecordingProducer(kw.pop("fail", False))
    return BusClient(producer, agency=CENTER, **kw), producer  # type: ignore[arg-type]


def test_received_builds_envelope_and_hashes_the_identifier() -> None:
    client, producer = _client()
    event = client.publish_received(
        "H10-1", procedure_code="1.004227", subject_id="0012 3456 7890", channel="counter"
    )
    assert isinstance(event, DossierReceived)
    assert producer.sent == [event]
    env = event.envelope
    assert env.producer_agency == CENTER
    assert env.dossier_id == "H10-1"
    assert env.trace_id == env.event_id.hex
    assert abs(env.occurred_at - datetime.now(UTC)) < timedelta(seconds=5)
    assert event.received_at == env.occurred_at
    assert event.receiving_agency == CENTER
    assert event.subject.identifier_hash == hash_identifier("001234567890", SALT)
    assert "001234567890" not in encode(event).decode("latin-1")
    assert decode(encode(event)) == event


def test_caused_by_carries_trace_and_causation() -> None:
    client, _ = _client()
    first = client.submit("H10-2", procedure_code="P", identifier_hash="a" * 64)
    due = datetime(2026, 3, 2, 17, 0, tzinfo=VN_TZ)
    sent = client.hand_off(
        "H10-2", handoff_id="H10-2/1", to_agency=TAX, step=1, step_due_at=due, caused_by=first
    )
    assert isinstance(sent, HandoffSent)
    assert sent.envelope.causation_id == first.envelope.event_id
    assert sent.envelope.trace_id == first.envelope.trace_id
    assert sent.from_agency == CENTER and sent.to_agency == TAX


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda c: c.hand_off(
                "D", handoff_id="h", to_agency="tax", step=1, step_due_at=datetime.now(UTC)
            ),
            "to_agency",
        ),
        (
            lambda c: c.hand_off(
                "D", handoff_id="h", to_agency=TAX, step=0, step_due_at=datetime.now(UTC)
            ),
            "step",
        ),
        (
            lambda c: c.hand_off(
                "D", handoff_id="h", to_agency=TAX, step=1, step_due_at=datetime(2026, 1, 1)
            ),
            "step_due_at",
        ),
        (
            lambda c: c.return_handoff(
                "D", handoff_id="h", from_agency=TAX, step=1, outcome="maybe"
            ),
            "outcome",
        ),
        (
            lambda c: c.request_fee("D", obligation="fee", amount_vnd=-1, description="x"),
            "amount_vnd",
        ),
        (lambda c: c.finish_processing("D", outcome="ok"), "outcome"),
        (lambda c: c.refuse_intake("D", reason=""), "reason"),
        (lambda c: c.withdraw("", reason=None), "dossier_id"),
    ],
)
def test_invalid_field_is_named_and_nothing_is_sent(call: Any, field: str) -> None:
    client, producer = _client()
    with pytest.raises(ValidationError) as info:
        call(client)
    assert field in str(info.value)
    assert producer.sent == []


def test_bad_agency_and_missing_salt_are_clear() -> None:
    with pytest.raises(ValueError, match="agency"):
        BusClient(RecordingProducer(), agency="H10")  # type: ignore[arg-type]
    producer = RecordingProducer()
    producer.settings = load_settings(environ={})
    client = BusClient(producer, agency=CENTER)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt"):
        client.submit("D", procedure_code="P", subject_id="001234567890")
    with pytest.raises(ValueError, match="exactly one"):
        client.submit("D", procedure_code="P")
    with pytest.raises(ValueError, match="store"):
        client.publish_document("D", document_id="d", content=b"x", media_type="text/plain")


def test_wait_false_returns_pending_and_ack_failure_raises() -> None:
    client, _ = _client()
    pending = client.fee_paid(
        "D", obligation="charge", amount_vnd=50_000, payment_ref="PAY-1", wait=False
    )
    assert isinstance(pending, PendingEvent)
    assert pending.get(1).envelope.dossier_id == "D"
    failing, _ = _client(fail=True)
    with pytest.raises(PublishError):
        failing.stop_processing("D", reason="court order")


def test_postal_order_ids_are_deterministic_and_event_id_can_be_given() -> None:
    client, _ = _client()
    eid = uuid.uuid4()
    order = client.order_postal_delivery(
        "H10-9", recipient_name="Nguyễn Văn A", address="1 Lê Lợi, Bến Tre", event_id=eid
    )
    assert isinstance(order, PostalOrderRequested)
    assert order.order_id == "H10-9/delivery" and order.kind == "delivery"
    assert order.envelope.event_id == eid
    assert order.requesting_agency == CENTER
    pickup = client.order_postal_pickup("H10-9", recipient_name="A", address="B")
    assert pickup.kind == "pickup"
