"""Dossier and step lifecycle: allowed transitions and the portal's status codes.

A dossier's state changes only through :func:`apply`, a pure function ``(state, event) ->
state``. An event the current state does not allow raises :class:`IllegalTransition` naming
the dossier, the state and the event, so a stream processor can dead-letter it with a reason
instead of silently corrupting the counts.

Event kinds are shared with the wire schemas (``event_type``): keep the strings stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType

__all__ = [
    "Channel",
    "DossierEvent",
    "DossierState",
    "DossierStatus",
    "EventKind",
    "IllegalTransition",
    "LifecycleError",
    "StepState",
    "StepStatus",
    "apply",
    "apply_step",
    "fold",
    "portal_channel",
    "portal_status",
]


class EventKind(StrEnum):
    """What happened to a dossier (the ``event_type`` on the wire)."""

    DOSSIER_SUBMITTED = "dossier_submitted"  # nộp trực tuyến, chưa tiếp nhận (portal 1)
    DOSSIER_RECEIVED = "dossier_received"  # tiếp nhận (2)
    INTAKE_REFUSED = "intake_refused"  # từ chối tiếp nhận (3)
    HANDOFF_SENT = "handoff_sent"  # chuyển xử lý / liên thông (4)
    HANDOFF_ACCEPTED = "handoff_accepted"  # cơ quan nhận xác nhận (4)
    HANDOFF_RETURNED = "handoff_returned"  # bước xử lý xong, trả kết quả bước (4)
    SUPPLEMENT_REQUESTED = "supplement_requested"  # yêu cầu bổ sung, hoàn thiện hồ sơ (5)
    SUPPLEMENT_RECEIVED = "supplement_received"  # nhận hồ sơ bổ sung (clock resumes)
    FEE_REQUESTED = "fee_requested"  # thực hiện nghĩa vụ tài chính (6)
    FEE_PAID = "fee_paid"
    DOSSIER_WITHDRAWN = "dossier_withdrawn"  # công dân rút hồ sơ (7)
    PROCESSING_STOPPED = "processing_stopped"  # dừng xử lý (8)
    PROCESSING_FINISHED = "processing_finished"  # đã xử lý xong (9)
    RESULT_RETURNED = "result_returned"  # đã trả kết quả (10)


class DossierStatus(StrEnum):
    """Where a dossier is; each maps to one portal TrangThaiHoSo code."""

    NEW = "new"  # nothing known yet (no portal code)
    REGISTERED = "registered"  # 1 mới đăng ký
    RECEIVED = "received"  # 2 được tiếp nhận
    REFUSED = "refused"  # 3 không được tiếp nhận
    PROCESSING = "processing"  # 4 đang xử lý
    AWAITING_SUPPLEMENT = "awaiting_supplement"  # 5 yêu cầu bổ sung giấy tờ
    AWAITING_FEE = "awaiting_fee"  # 6 yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = "withdrawn"  # 7 công dân yêu cầu rút hồ sơ
    STOPPED = "stopped"  # 8 dừng xử lý
    FINISHED = "finished"  # 9 đã xử lý xong
    RETURNED = "returned"  # 10 đã trả kết quả


class Channel(IntEnum):
    """KenhThucHien: how the dossier came in."""

    COUNTER = 1  # trực tiếp
    ONLINE = 2  # trực tuyến
    POSTAL = 3  # dịch vụ bưu chính công ích


_PORTAL_STATUS: Mapping[DossierStatus, int] = MappingProxyType(
    {
        DossierStatus.REGISTERED: 1,
        DossierStatus.RECEIVED: 2,
        DossierStatus.REFUSED: 3,
        DossierStatus.PROCESSING: 4,
        DossierStatus.AWAITING_SUPPLEMENT: 5,
        DossierStatus.AWAITING_FEE: 6,
        DossierStatus.WITHDRAWN: 7,
        DossierStatus.STOPPED: 8,
        DossierStatus.FINISHED: 9,
        DossierStatus.RETURNED: 10,
    }
)

TERMINAL: frozenset[DossierStatus] = frozenset(
    {DossierStatus.REFUSED, DossierStatus.WITHDRAWN, DossierStatus.STOPPED, DossierStatus.RETURNED}
)


def portal_status(status: DossierStatus) -> int:
    """TrangThaiHoSo 1–10 for a status; NEW has none and raises ``ValueError``."""
    try:
        return _PORTAL_STATUS[status]
    except KeyError:
        raise ValueError(f"status {status.value!r} has no portal code") from None


def portal_channel(channel: Channel | str | int) -> int:
    """KenhThucHien 1–3 from a :class:`Channel`, its code, or a name like ``"postal"``."""
    if isinstance(channel, str) and not channel.isdigit():
        try:
            return int(Channel[channel.strip().upper()])
        except KeyError:
            raise ValueError(f"unknown channel {channel!r}: counter, online or postal") from None
    return int(Channel(int(channel)))


class LifecycleError(ValueError):
    """Base of lifecycle errors."""


class IllegalTransition(LifecycleError):
    """An event that the dossier's (or step's) current state does not allow."""

    def __init__(self, dossier_id: str, state: str, event: EventKind, detail: str = "") -> None:
        self.dossier_id = dossier_id
        self.state = state
        self.event = event
        msg = f"dossier {dossier_id}: event {event.value!r} not allowed in state {state!r}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class DossierEvent:
    """A domain event; the wire models convert to this, the domain never sees pydantic.

    ``step`` numbers a handoff (1-based, in procedure order); ``agency`` is the agency that
    acts (sender for ``handoff_sent``, receiver for ``handoff_accepted``/``handoff_returned``
    and for supplement/fee requests); ``to_agency`` is the receiver of a ``handoff_sent``.
    """

    kind: EventKind
    dossier_id: str
    at: datetime
    agency: str | None = None
    to_agency: str | None = None
    step: int | None = None
    channel: Channel | None = None
    due: datetime | None = None  # appointment (on receipt) or step due (on handoff)
    outcome: str | None = None  # step outcome on handoff_returned, e.g. "approved"
    reason: str | None = None


class StepStatus(StrEnum):
    """A handoff between agencies (bước liên thông)."""

    SENT = "sent"  # chuyển, chưa xác nhận
    ACCEPTED = "accepted"  # cơ quan nhận đã nhận
    RETURNED = "returned"  # bước đã xong, kết quả đã chuyển lại


@dataclass(frozen=True)
class StepState:
    step: int
    agency: str | None
    status: StepStatus
    sent_at: datetime
    accepted_at: datetime | None = None
    returned_at: datetime | None = None
    due: datetime | None = None
    outcome: str | None = None


_STEP_NEXT: Mapping[tuple[StepStatus | None, EventKind], StepStatus] = MappingProxyType(
    {
        (None, EventKind.HANDOFF_SENT): StepStatus.SENT,
        # A handoff that was returned (e.g. sent back for rework) may be sent again.
        (StepStatus.RETURNED, EventKind.HANDOFF_SENT): StepStatus.SENT,
        (StepStatus.SENT, EventKind.HANDOFF_ACCEPTED): StepStatus.ACCEPTED,
        (StepStatus.SENT, EventKind.HANDOFF_RETURNED): StepStatus.RETURNED,  # refused unread
        (StepStatus.ACCEPTED, EventKind.HANDOFF_RETURNED): StepStatus.RETURNED,
    }
)


def apply_step(step: StepState | None, event: DossierEvent) -> StepState:
    """Pure transition of one handoff; ``step`` is ``None`` before it was first sent."""
    current = step.status if step else None
    nxt = _STEP_NEXT.get((current, event.kind))
    if nxt is None or event.step is None:
        state = f"step {event.step}: {current.value if current else 'not sent'}"
        raise IllegalTransition(event.dossier_id, state, event.kind)
    if event.kind is EventKind.HANDOFF_SENT:
        return StepState(
            step=event.step,
            agency=event.to_agency or event.agency,
            status=nxt,
            sent_at=event.at,
            due=event.due,
        )
    assert step is not None
    if event.kind is EventKind.HANDOFF_ACCEPTED:
        return replace(step, status=nxt, accepted_at=event.at, due=event.due or step.due)
    return replace(step, status=nxt, returned_at=event.at, outcome=event.outcome)


@dataclass(frozen=True)
class DossierState:
    """Everything the lifecycle needs to decide the next transition."""

    dossier_id: str
    status: DossierStatus = DossierStatus.NEW
    channel: Channel | None = None
    resume_status: DossierStatus | None = None  # where fee_paid / supplement_received go back
    received_at: datetime | None = None
    due: datetime | None = None
    supplement_requests: int = 0
    steps: tuple[StepState, ...] = field(default=())
    finished_at: datetime | None = None
    ended_at: datetime | None = None  # first of finished / returned / stopped / refused

    @property
    def portal_status(self) -> int:
        return portal_status(self.status)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def step(self, number: int) -> StepState | None:
        for s in self.steps:
            if s.step == number:
                return s
        return None


S = DossierStatus
E = EventKind
_ACTIVE = (S.RECEIVED, S.PROCESSING)
_WAITING = (S.AWAITING_SUPPLEMENT, S.AWAITING_FEE)

# (from states) -> to state; RESUME means "back to where the dossier was before waiting".
_RESUME = "resume"
_TRANSITIONS: Mapping[E, tuple[tuple[S, ...], S | str]] = MappingProxyType(
    {
        E.DOSSIER_SUBMITTED: ((S.NEW,), S.REGISTERED),
        E.DOSSIER_RECEIVED: ((S.NEW, S.REGISTERED), S.RECEIVED),
        E.INTAKE_REFUSED: ((S.NEW, S.REGISTERED, S.RECEIVED), S.REFUSED),
        E.HANDOFF_SENT: (_ACTIVE, S.PROCESSING),
        E.HANDOFF_ACCEPTED: (_ACTIVE, S.PROCESSING),
        E.HANDOFF_RETURNED: (_ACTIVE, S.PROCESSING),
        E.SUPPLEMENT_REQUESTED: ((*_ACTIVE, S.REGISTERED), S.AWAITING_SUPPLEMENT),
        E.SUPPLEMENT_RECEIVED: ((S.AWAITING_SUPPLEMENT,), _RESUME),
        E.FEE_REQUESTED: ((*_ACTIVE, S.FINISHED), S.AWAITING_FEE),
        E.FEE_PAID: ((S.AWAITING_FEE,), _RESUME),
        E.DOSSIER_WITHDRAWN: ((S.REGISTERED, *_ACTIVE, *_WAITING), S.WITHDRAWN),
        E.PROCESSING_STOPPED: ((*_ACTIVE, *_WAITING), S.STOPPED),
        E.PROCESSING_FINISHED: (_ACTIVE, S.FINISHED),
        E.RESULT_RETURNED: ((S.FINISHED,), S.RETURNED),
    }
)

ALLOWED: Mapping[DossierStatus, frozenset[EventKind]] = MappingProxyType(
    {
        status: frozenset(k for k, (froms, _) in _TRANSITIONS.items() if status in froms)
        for status in DossierStatus
    }
)


def apply(state: DossierState | None, event: DossierEvent) -> DossierState:
    """The dossier's state after ``event``; pure, raises :class:`IllegalTransition`."""
    if state is None:
        state = DossierState(dossier_id=event.dossier_id)
    elif state.dossier_id != event.dossier_id:
        raise LifecycleError(
            f"event for dossier {event.dossier_id} applied to dossier {state.dossier_id}"
        )
    kind = EventKind(event.kind)
    froms, target = _TRANSITIONS[kind]
    if state.status not in froms:
        raise IllegalTransition(state.dossier_id, state.status.value, kind)

    changes: dict[str, object] = {}
    if target == _RESUME:
        new_status = state.resume_status or S.PROCESSING
        changes["resume_status"] = None
    else:
        assert isinstance(target, DossierStatus)
        new_status = target
        if new_status in _WAITING:
            changes["resume_status"] = state.status

    if event.channel is not None:
        changes["channel"] = Channel(event.channel)
    if kind in (E.DOSSIER_RECEIVED,):
        changes["received_at"] = event.at
        if event.due is not None:
            changes["due"] = event.due
    if kind is E.SUPPLEMENT_REQUESTED:
        changes["supplement_requests"] = state.supplement_requests + 1
    if kind in (E.HANDOFF_SENT, E.HANDOFF_ACCEPTED, E.HANDOFF_RETURNED):
        if event.step is None:
            raise IllegalTransition(
                state.dossier_id, state.status.value, kind, "handoff events need a step number"
            )
        try:
            new_step = apply_step(state.step(event.step), event)
        except IllegalTransition as exc:
            raise IllegalTransition(state.dossier_id, exc.state, kind) from None
        steps = [s for s in state.steps if s.step != event.step] + [new_step]
        changes["steps"] = tuple(sorted(steps, key=lambda s: s.step))
    if kind is E.PROCESSING_FINISHED:
        changes["finished_at"] = event.at
    if kind in (E.PROCESSING_FINISHED, E.RESULT_RETURNED, E.PROCESSING_STOPPED, E.INTAKE_REFUSED):
        if state.ended_at is None:
            changes["ended_at"] = event.at
    return replace(state, status=new_status, **changes)  # type: ignore[arg-type]


def fold(events: Iterable[DossierEvent], state: DossierState | None = None) -> DossierState:
    """Apply events in order (the caller orders them, e.g. by Kafka offset)."""
    for e in events:
        state = apply(state, e)
    if state is None:
        raise LifecycleError("no events")
    return state
