"""Wire event (pydantic model) → the tracker's :class:`~lienthong.domain.tracking.Facts`.

Kept apart from the Faust agents so tests and tools can apply the very same conversion
without starting an app. Handoff conventions: ``handoff_sent``/``handoff_accepted``/
``handoff_returned`` all carry the handoff's ``from_agency`` (sender) and ``to_agency`` (the
agency doing the step); the step's agency is the actor of accepted/returned.
"""

from __future__ import annotations

from typing import Any

from lienthong.domain.lifecycle import Channel, EventKind
from lienthong.domain.tracking import Facts
from lienthong.schemas.models import Event

_CHANNELS = {"counter": Channel.COUNTER, "online": Channel.ONLINE, "postal": Channel.POSTAL}


def facts_of(model: Event) -> Facts | None:
    """Adapter from the wire model to the tracker's facts (None: not a dossier lifecycle event)."""
    try:
        kind = EventKind(model.EVENT_TYPE)
    except ValueError:
        return None
    env = model.envelope
    m: Any = model
    agency = (
        getattr(m, "agency", None)
        or getattr(m, "receiving_agency", None)
        or getattr(m, "requesting_agency", None)
        or env.producer_agency
    )
    to_agency = None
    if kind is EventKind.HANDOFF_SENT:
        agency, to_agency = m.from_agency, m.to_agency
    elif kind in (EventKind.HANDOFF_ACCEPTED,):
        agency, to_agency = m.to_agency, m.to_agency
    elif kind is EventKind.HANDOFF_RETURNED:
        agency, to_agency = m.to_agency, m.from_agency
    channel = _CHANNELS[m.channel.value] if kind is EventKind.DOSSIER_RECEIVED else None
    if kind is EventKind.DOSSIER_SUBMITTED:
        channel = Channel.ONLINE
    due = None
    at = env.occurred_at
    if kind is EventKind.DOSSIER_RECEIVED:
        due, at = m.appointment_at, m.received_at
    elif kind is EventKind.HANDOFF_SENT:
        due = m.step_due_at
    return Facts(
        event_id=str(env.event_id),
        kind=kind,
        dossier_id=env.dossier_id or "",
        at=at,
        agency=agency,
        to_agency=to_agency,
        step=getattr(m, "step", None),
        channel=channel,
        due=due,
        outcome=getattr(m, "outcome", None) and str(m.outcome.value),
        reason=getattr(m, "reason", None),
        procedure=getattr(m, "procedure_code", None),
        handoff_id=getattr(m, "handoff_id", None),
        return_method=m.method.value if kind is EventKind.RESULT_RETURNED else None,
    )
