from __future__ import annotations

from datetime import timedelta

import pytest

from lienthong.domain.classification import Outcome
from lienthong.domain.deadlines import compute_appointment
from lienthong.domain.lifecycle import DossierEvent, EventKind
from lienthong.domain.procedures import load_procedures
from lienthong.domain.slip import build_apology, build_slip

from .conftest import vn

D = "H10.2025.LAND.1"
CENTER, LAND_OFFICE, TAX = "000.00.01.H10", "000.01.11.H10", "000.00.60.H10"
K = EventKind


def e(kind, at, **kw):
    return DossierEvent(kind, D, at, **kw)


@pytest.fixture
def land():
    return load_procedures()["1.004227"]


def _chain(land_returned_at, finished_at=None):
    events = [
        e(K.DOSSIER_RECEIVED, vn(2025, 3, 3, 8), agency=CENTER),
        e(K.HANDOFF_SENT, vn(2025, 3, 3, 10), step=2, agency=CENTER, to_agency=LAND_OFFICE),
        e(K.HANDOFF_ACCEPTED, vn(2025, 3, 3, 10, 30), step=2, agency=LAND_OFFICE),
        e(K.HANDOFF_RETURNED, land_returned_at, step=2, agency=LAND_OFFICE, outcome="ok"),
        e(K.HANDOFF_SENT, land_returned_at, step=3, agency=LAND_OFFICE, to_agency=TAX),
        e(K.HANDOFF_RETURNED, land_returned_at + timedelta(hours=1), step=3, agency=TAX),
    ]
    if finished_at:
        events.append(e(K.PROCESSING_FINISHED, finished_at, agency=LAND_OFFICE))
    return events


def test_slip_attributes_lateness_to_the_late_step(land):
    slip = build_slip(_chain(vn(2025, 3, 12, 10), finished_at=vn(2025, 3, 24, 10)), procedure=land)
    appointment = compute_appointment(vn(2025, 3, 3, 8), land.duration, cutoff=land.cutoff).due
    assert slip.appointment == appointment
    step2, step3 = slip.steps
    assert step2.agency == LAND_OFFICE and step2.agency_name.startswith("Văn phòng Đăng ký")
    assert step2.received_at == vn(2025, 3, 3, 10)
    assert step2.handed_on_at == vn(2025, 3, 12, 10)
    # 35 % of 10 days = 28 working hours from 03/03 10:00.
    assert step2.due == compute_appointment(vn(2025, 3, 3, 10), timedelta(hours=28)).due
    assert step2.on_time is False and step2.late_by > timedelta(0)
    assert step3.on_time is True
    assert slip.classification.outcome is Outcome.LATE
    assert slip.late
    assert slip.responsible_agencies == (LAND_OFFICE,)


def test_on_time_dossier_names_nobody(land):
    slip = build_slip(_chain(vn(2025, 3, 5, 10), finished_at=vn(2025, 3, 12, 10)), procedure=land)
    assert not slip.late
    assert slip.responsible_agencies == ()
    with pytest.raises(ValueError, match="on time"):
        build_apology(slip, now=vn(2025, 3, 12, 11))


def test_second_supplement_request_is_attributed_to_its_requester(land):
    events = _chain(vn(2025, 3, 5, 10))
    events += [
        e(K.SUPPLEMENT_REQUESTED, vn(2025, 3, 6, 8), agency=TAX),
        e(K.SUPPLEMENT_RECEIVED, vn(2025, 3, 6, 9)),
        e(K.SUPPLEMENT_REQUESTED, vn(2025, 3, 7, 8), agency=LAND_OFFICE),
        e(K.SUPPLEMENT_RECEIVED, vn(2025, 3, 7, 9)),
        e(K.PROCESSING_FINISHED, vn(2025, 3, 10, 8)),
    ]
    slip = build_slip(events, procedure=land)
    assert slip.supplement_requests == 2
    assert slip.classification.outcome is Outcome.LATE
    assert slip.responsible_agencies == (LAND_OFFICE,)


def test_open_overdue_dossier_gets_an_apology(land):
    events = [
        e(K.DOSSIER_RECEIVED, vn(2025, 3, 3, 8), agency=CENTER),
        e(K.HANDOFF_SENT, vn(2025, 3, 3, 10), step=2, agency=CENTER, to_agency=LAND_OFFICE),
    ]
    now = vn(2025, 3, 20, 9)
    slip = build_slip(events, procedure=land, now=now)
    assert slip.classification is None
    assert slip.late and slip.steps[0].on_time is False
    assert slip.responsible_agencies == (LAND_OFFICE,)
    apology = build_apology(slip, now=now, procedure=land)
    assert apology.responsible_agencies == (LAND_OFFICE,)
    assert "step 2" in apology.reason
    assert apology.proposed_appointment > now
    assert apology.original_appointment == slip.appointment
    # Without hand-ons, every step's allotment is still to do: 10 working days from now.
    assert apology.proposed_appointment == compute_appointment(now, land.duration).due
