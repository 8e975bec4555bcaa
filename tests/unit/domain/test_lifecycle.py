from __future__ import annotations

import pytest

from lienthong.domain.lifecycle import (
    Channel,
    DossierEvent,
    DossierStatus,
    EventKind,
    IllegalTransition,
    apply,
    fold,
    portal_channel,
    portal_status,
)

from .conftest import vn

D = "H10.2025.000123"


def ev(kind: EventKind, day: int = 3, hour: int = 8, **kw) -> DossierEvent:
    return DossierEvent(kind, D, vn(2025, 3, day, hour), **kw)


def test_event_kind_strings_are_the_wire_contract():
    assert [k.value for k in EventKind] == [
        "dossier_submitted",
        "dossier_received",
        "intake_refused",
        "handoff_sent",
        "handoff_accepted",
        "handoff_returned",
        "supplement_requested",
        "supplement_received",
        "fee_requested",
        "fee_paid",
        "dossier_withdrawn",
        "processing_stopped",
        "processing_finished",
        "result_returned",
    ]
    assert isinstance(EventKind.DOSSIER_RECEIVED, str)
    assert EventKind("handoff_sent") is EventKind.HANDOFF_SENT


def test_happy_path_with_handoffs_supplement_and_fee():
    events = [
        ev(EventKind.DOSSIER_SUBMITTED, channel=Channel.ONLINE),
        ev(EventKind.DOSSIER_RECEIVED, hour=9, agency="000.00.01.H10"),
        ev(EventKind.HANDOFF_SENT, hour=10, step=1, to_agency="000.01.11.H10"),
        ev(EventKind.HANDOFF_ACCEPTED, hour=11, step=1, agency="000.01.11.H10"),
        ev(EventKind.SUPPLEMENT_REQUESTED, day=4),
        ev(EventKind.SUPPLEMENT_RECEIVED, day=5),
        ev(EventKind.HANDOFF_RETURNED, day=6, step=1, outcome="approved"),
        ev(EventKind.FEE_REQUESTED, day=6, hour=10),
        ev(EventKind.FEE_PAID, day=6, hour=14),
        ev(EventKind.PROCESSING_FINISHED, day=7),
        ev(EventKind.RESULT_RETURNED, day=10),
    ]
    codes = []
    state = None
    for e in events:
        state = apply(state, e)
        codes.append(state.portal_status)
    assert codes == [1, 2, 4, 4, 5, 4, 4, 6, 4, 9, 10]
    assert state.channel is Channel.ONLINE
    assert state.supplement_requests == 1
    assert state.ended_at == vn(2025, 3, 7, 8)
    assert state.step(1).outcome == "approved"


def test_supplement_before_processing_returns_to_received():
    s = fold([ev(EventKind.DOSSIER_RECEIVED), ev(EventKind.SUPPLEMENT_REQUESTED)])
    assert s.portal_status == 5
    assert apply(s, ev(EventKind.SUPPLEMENT_RECEIVED)).status is DossierStatus.RECEIVED


def test_fee_after_finish_returns_to_finished():
    s = fold(
        [
            ev(EventKind.DOSSIER_RECEIVED),
            ev(EventKind.PROCESSING_FINISHED),
            ev(EventKind.FEE_REQUESTED),
        ]
    )
    assert apply(s, ev(EventKind.FEE_PAID)).status is DossierStatus.FINISHED


@pytest.mark.parametrize(
    ("history", "event", "state"),
    [
        ([], EventKind.RESULT_RETURNED, "new"),
        ([EventKind.DOSSIER_RECEIVED], EventKind.DOSSIER_RECEIVED, "received"),
        ([EventKind.DOSSIER_RECEIVED], EventKind.FEE_PAID, "received"),
        (
            [EventKind.DOSSIER_RECEIVED, EventKind.PROCESSING_FINISHED],
            EventKind.SUPPLEMENT_REQUESTED,
            "finished",
        ),
        ([EventKind.INTAKE_REFUSED], EventKind.DOSSIER_RECEIVED, "refused"),
        (
            [EventKind.DOSSIER_RECEIVED, EventKind.DOSSIER_WITHDRAWN],
            EventKind.PROCESSING_FINISHED,
            "withdrawn",
        ),
        (
            [EventKind.DOSSIER_RECEIVED, EventKind.PROCESSING_STOPPED],
            EventKind.RESULT_RETURNED,
            "stopped",
        ),
    ],
)
def test_illegal_transitions_name_dossier_state_and_event(history, event, state):
    s = fold([ev(k) for k in history]) if history else None
    with pytest.raises(IllegalTransition) as info:
        apply(s, ev(event))
    assert info.value.dossier_id == D
    assert info.value.state == state
    assert info.value.event is event
    assert D in str(info.value) and state in str(info.value) and event.value in str(info.value)


def test_step_transitions_are_checked():
    s = fold([ev(EventKind.DOSSIER_RECEIVED)])
    with pytest.raises(IllegalTransition, match="not sent"):
        apply(s, ev(EventKind.HANDOFF_ACCEPTED, step=1))
    s = apply(s, ev(EventKind.HANDOFF_SENT, step=1, to_agency="000.00.60.H10"))
    with pytest.raises(IllegalTransition, match="step 1: sent"):
        apply(s, ev(EventKind.HANDOFF_SENT, step=1))
    with pytest.raises(IllegalTransition, match="step number"):
        apply(s, ev(EventKind.HANDOFF_ACCEPTED))


def test_portal_codes():
    assert [portal_status(st) for st in DossierStatus if st is not DossierStatus.NEW] == list(
        range(1, 11)
    )
    with pytest.raises(ValueError):
        portal_status(DossierStatus.NEW)
    assert portal_channel(Channel.COUNTER) == 1
    assert portal_channel("online") == 2
    assert portal_channel("postal") == 3
    assert portal_channel(3) == 3
    with pytest.raises(ValueError):
        portal_channel("fax")
