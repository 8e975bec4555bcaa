"""The tracker's per-dossier aggregate (bản ghi theo dõi hồ sơ): typed, immutable, bounded.

Why these fields and no more: the record must answer, from itself alone, everything one
event or one clock tick asks of a dossier — the lifecycle transition (``state``), the
appointment pushed back by supplement pauses, the pending deadline alerts and which of them
were sent, the live counts' instants, the process control slip, the portal status record of
the event (and of a redelivered one, byte-identical) and whether an event was already
applied. The full event history is *not* among them: a dossier's record is rewritten to the
changelog on every event, so a history makes the bytes per dossier grow with the square of
its events. What replaces it is bounded:

- ``entries``: the newest :data:`ENTRIES_KEPT` applied events, each as its portal status
  record needs it (status, note, appointment and intake *as of that event*), so the portal's
  progress log (QuaTrinhXuLy, itself capped at 20 lines) and a re-emission come from them;
- ``sources``: per source partition, the highest offset applied, so a redelivered record
  older than the entries held is still recognised (offsets are contiguous and applied in
  order, see :mod:`lienthong.streams.gaps`);
- ``supplement_agencies``: who asked for each supplement (the slip blames the second and
  later requests), as the pauses, one per request: the law allows one, so this stays tiny.

Handoffs and steps are one per procedure step. Pure data, no Kafka: the changelog encoding
is :mod:`lienthong.schemas.dossier_record`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from lienthong.domain.deadlines import Pause, extend_for_pauses
from lienthong.domain.lifecycle import DossierState, EventKind

__all__ = [
    "ENTRIES_KEPT",
    "DossierRecord",
    "Entry",
    "Handoff",
    "NOTES",
    "PauseSpan",
    "Source",
    "effective_due",
    "pauses_of",
]

# NoiDungXuLy of each kind of event (a reason the event gives follows after ": ").
NOTES: dict[EventKind, str] = {
    EventKind.DOSSIER_SUBMITTED: "Nộp hồ sơ trực tuyến",
    EventKind.DOSSIER_RECEIVED: "Tiếp nhận hồ sơ",
    EventKind.INTAKE_REFUSED: "Từ chối tiếp nhận",
    EventKind.HANDOFF_SENT: "Chuyển xử lý",
    EventKind.HANDOFF_ACCEPTED: "Nhận hồ sơ chuyển đến",
    EventKind.HANDOFF_RETURNED: "Trả kết quả bước xử lý",
    EventKind.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    EventKind.SUPPLEMENT_RECEIVED: "Nhận hồ sơ bổ sung",
    EventKind.FEE_REQUESTED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    EventKind.FEE_PAID: "Đã thực hiện nghĩa vụ tài chính",
    EventKind.DOSSIER_WITHDRAWN: "Công dân rút hồ sơ",
    EventKind.PROCESSING_STOPPED: "Dừng xử lý",
    EventKind.PROCESSING_FINISHED: "Đã xử lý xong",
    EventKind.RESULT_RETURNED: "Đã trả kết quả",
}


# Applied events a record keeps (newest first out of the window). 40 > the portal log's 20
# lines, so a redelivered event up to 20 events back re-emits its portal record unchanged.
ENTRIES_KEPT = 40


@dataclass(frozen=True, slots=True)
class Entry:
    """One applied event, as its portal status record needs it (a QuaTrinhXuLy line and the
    record's fields as they were right after the event)."""

    index: int  # position among the dossier's applied events (0: the first)
    event_id: str
    kind: EventKind
    agency: str
    status: int  # TrangThaiHoSo after the event
    at: datetime
    reason: str | None  # the reason the event gave (free text), if any
    due: datetime | None  # NgayHenTra: the appointment with the pauses known then
    finished_at: datetime | None  # NgayKetThucXuLy
    returned_at: datetime | None  # NgayTra
    received_at: datetime | None  # NgayTiepNhan as of this event (None: not received yet)
    channel: int | None  # KenhThucHien as of this event
    source_partition: int
    source_offset: int

    @property
    def note(self) -> str:
        """NoiDungXuLy: the kind's wording, then the event's reason."""
        wording = NOTES[self.kind]
        return f"{wording}: {self.reason}" if self.reason else wording


class Source(NamedTuple):
    """The highest offset of one source partition applied to a dossier."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Handoff:
    """The latest handoff of one step (chuyển hồ sơ liên thông): for the escalation alert."""

    step: int
    handoff_id: str | None
    from_agency: str
    to_agency: str | None


@dataclass(frozen=True, slots=True)
class PauseSpan:
    """A supplement pause (tạm dừng chờ bổ sung); ``end`` None while still waiting."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class DossierRecord:
    id: str
    partition: int  # the source partition that owns the dossier
    state: DossierState
    procedure: str | None = None  # MaTTHC
    receiving_agency: str | None = None
    holder: str | None = None  # who has the dossier now (for the dossier's alerts)
    first_at: datetime | None = None  # the first applied event's instant
    last_at: datetime | None = None  # the newest applied event's (older ones are stale)
    applied: int = 0  # events applied so far
    entries: tuple[Entry, ...] = ()  # the newest ENTRIES_KEPT, oldest first
    sources: tuple[Source, ...] = ()  # per source partition, the highest offset applied
    pauses: tuple[PauseSpan, ...] = ()
    handoffs: tuple[Handoff, ...] = ()  # by step, the latest handoff of each
    sent_alerts: tuple[str, ...] = ()  # keys of the deadline alerts emitted, sorted
    supplement_agencies: tuple[str, ...] = ()  # who asked, per supplement request
    returned_by_post_at: datetime | None = None
    withdrawn_at: datetime | None = None
    refused_at: datetime | None = None
    outcome: str | None = None  # early | on_time | late, once ended (not for a refusal)
    # Derived, not state: (rules, calendar, keys) of the alerts this very record still has to
    # emit, as lienthong.domain.decide.tick found them, so that the decision on its next event
    # need not work them out again (~20% of a decision). Not encoded, not compared; a record
    # made by replace() starts without it.
    pending_memo: tuple[object, object, frozenset[str]] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    @classmethod
    def new(cls, dossier_id: str, partition: int) -> DossierRecord:
        return cls(id=dossier_id, partition=partition, state=DossierState(dossier_id=dossier_id))

    def entry(self, index: int) -> Entry | None:
        """The applied event at ``index``, if still held."""
        if not self.entries:
            return None
        position = index - self.entries[0].index
        if 0 <= position < len(self.entries):
            return self.entries[position]
        return None

    def find(self, event_id: str) -> Entry | None:
        for e in reversed(self.entries):
            if e.event_id == event_id:
                return e
        return None

    def applied_offset(self, partition: int) -> int | None:
        """The highest source offset of ``partition`` applied to this dossier."""
        for p, offset in self.sources:
            if p == partition:
                return offset
        return None

    def handoff(self, step: int) -> Handoff | None:
        for h in self.handoffs:
            if h.step == step:
                return h
        return None

    def with_alerts(self, keys: tuple[str, ...] | list[str]) -> DossierRecord:
        """This record noting the alerts ``keys`` as emitted."""
        return replace(self, sent_alerts=tuple(sorted({*self.sent_alerts, *keys})))


def pauses_of(record: DossierRecord, until: datetime | None = None) -> list[Pause]:
    """Supplement pauses; an open one runs to ``until`` (or is left out without it)."""
    result = []
    for p in record.pauses:
        if p.end is not None:
            result.append(Pause(p.start, p.end))
        elif until is not None and until > p.start:
            result.append(Pause(p.start, until))
    return result


def effective_due(record: DossierRecord, until: datetime | None = None) -> datetime | None:
    """The appointment pushed back by the supplement pauses (closed ones, or up to ``until``)."""
    due = record.state.due
    if due is None:
        return None
    return extend_for_pauses(due, pauses_of(record, until))
