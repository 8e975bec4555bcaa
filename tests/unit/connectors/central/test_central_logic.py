"""Pure decision logic of the central adapter: ids, status folding, no_answer, events, alert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lienthong.connectors.central import (
    CentralRequest,
    answer_overdue,
    apply_remote,
    backoff_delay,
    build_event,
    correlation_id,
    counters,
    mark_no_answer,
    no_answer_alert,
    request_for,
)
from lienthong.schemas import decode, encode
from lienthong.schemas.models import HandoffAccepted, HandoffReturned, HandoffSent

CENTER = "000.00.01.H10"
TAX = "000.00.60.H10"
LAND = "000.01.11.H10"
ENDPOINTS = {TAX: "http://tax.example"}


def _sent(to: str = TAX, handoff: str = "H10-1/1") -> HandoffSent:
    return HandoffSent.create(
        dossier_id="H10-1",
        producer_agency=CENTER,
        occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        handoff_id=handoff,
        from_agency=CENTER,
        to_agency=to,
        step=2,
        step_due_at=datetime(2026, 3, 5, 9, tzinfo=UTC),
    )


def _req() -> CentralRequest:
    req = request_for(_sent(), ENDPOINTS, {}, now=1000.0)
    assert req is not None
    return req


def test_only_handoffs_to_configured_central_agencies_and_only_once() -> None:
    req = _req()
    assert req.correlation_id == correlation_id("H10-1", "H10-1/1", TAX)
    assert req.status == "pending" and req.attempts == 0
    assert request_for(_sent(to=LAND), ENDPOINTS, {}, 0.0) is None
    assert request_for(_sent(), ENDPOINTS, {req.correlation_id: req}, 0.0) is None
    assert correlation_id("H10-1", "H10-1/2", TAX) != req.correlation_id
    assert CentralRequest.from_json(req.to_json()) == req


def test_remote_status_advances_and_emits_events_once() -> None:
    req = _req()
    sent, due = apply_remote(req, {"status": "received"})
    assert sent.status == "sent" and due == []
    acked, due = apply_remote(sent, {"status": "acknowledged", "acknowledged_at": "x"})
    assert acked.status == "acknowledged" and due == ["accepted"]
    acked = replace(acked, accepted_published=True)
    answered, due = apply_remote(acked, {"status": "answered", "outcome": "rejected", "note": "n"})
    assert (answered.status, answered.outcome, answered.note) == ("answered", "rejected", "n")
    assert due == ["returned"]
    done = replace(answered, returned_published=True)
    assert done.done
    # a repeated or stale answer changes nothing and publishes nothing
    assert apply_remote(done, {"status": "answered", "outcome": "completed"}) == (done, [])
    assert apply_remote(done, {"status": "received"}) == (done, [])


def test_answer_without_acknowledgement_implies_it() -> None:
    new, due = apply_remote(_req(), {"status": "answered", "outcome": "completed"})
    assert due == ["accepted", "returned"]


@pytest.mark.parametrize(
    "remote", [{"status": "done"}, {"status": "answered", "outcome": "maybe"}, {}]
)
def test_invalid_remote_answers_raise(remote: dict) -> None:
    with pytest.raises(ValueError):
        apply_remote(_req(), remote)


def test_no_answer_window_and_late_answer_still_applied() -> None:
    req = replace(_req(), status="sent", sent_at=2000.0)
    assert not answer_overdue(req, 2009.0, 10.0)
    assert answer_overdue(req, 2010.0, 10.0)
    silent = mark_no_answer(req, "no answer within 10 s")
    assert silent.outcome == "no_answer" and not answer_overdue(silent, 9999.0, 10.0)
    late, due = apply_remote(silent, {"status": "answered", "outcome": "completed"})
    assert late.status == "answered" and late.outcome == "completed"
    assert due == ["accepted", "returned"]
    never_sent = _req()  # window counted from first sight when never delivered
    assert answer_overdue(never_sent, 1010.0, 10.0)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 0.5, 3.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_events_are_deterministic_and_on_behalf_of_the_central_agency() -> None:
    handoff = _sent()
    first = request_for(handoff, ENDPOINTS, {}, now=0.0)
    assert first is not None
    req, _ = apply_remote(
        first,
        {
            "status": "answered",
            "outcome": "supplement_needed",
            "note": "thiếu tờ khai",
            "answered_at": "2026-03-03T10:00:00+00:00",
        },
    )
    now = datetime.now(UTC)
    accepted = build_event(req, "accepted", now)
    returned = build_event(req, "returned", now)
    assert isinstance(accepted, HandoffAccepted) and isinstance(returned, HandoffReturned)
    assert build_event(req, "returned", now + timedelta(hours=1)).envelope.event_id == (
        returned.envelope.event_id
    )
    assert accepted.envelope.event_id != returned.envelope.event_id
    for event in (accepted, returned):
        assert event.envelope.producer_agency == TAX
        assert event.envelope.causation_id == handoff.envelope.event_id
        assert event.envelope.trace_id == handoff.envelope.trace_id
        assert (event.from_agency, event.to_agency, event.step) == (CENTER, TAX, 2)
        assert decode(encode(event)) == event
    assert returned.outcome == "supplement_needed" and returned.note == "thiếu tờ khai"
    assert returned.envelope.occurred_at == datetime(2026, 3, 3, 10, tzinfo=UTC)


def test_alert_and_counters() -> None:
    req = mark_no_answer(replace(_req(), attempts=3), "not delivered after 3 attempts")
    alert = no_answer_alert(req, datetime(2026, 3, 2, tzinfo=UTC))
    assert alert["alert_type"] == "central_no_answer"
    assert alert["alert_id"] == f"central-requests:{req.correlation_id}:no_answer"
    assert (alert["dossier_id"], alert["central_agency"], alert["attempts"]) == ("H10-1", TAX, 3)
    answered = replace(_req(), correlation_id="b", status="answered", sent_at=1.0)
    figures = counters({"a": req, "b": answered})
    assert figures == {
        "requests": 2,
        "sent": 1,
        "acknowledged": 1,
        "answered": 1,
        "no_answer": 1,
        "pending": 1,
    }
