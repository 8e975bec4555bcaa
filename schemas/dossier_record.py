"""The tracker record's changelog encoding: versioned, Avro (fastavro), readable after upgrades.

Why a schema and not the record's JSON: a dossier's record is rewritten to the changelog on
every event of the dossier, so its bytes are most of what the worker writes to the broker,
and a field renamed in the code must not silently break a restore. The value written today is
version 3: two bytes ``0x00 0x03`` then the Avro binary body of
``schemas/state/dossier_record.v3.avsc`` (fastavro's schemaless writer, parsed schema). The
versions a reader may meet, told apart by their first byte:

- ``{`` version 1 (releases before version 2): the record dict as JSON, with the whole
  history and the dedupe map (event id → source record and history index);
- ``[`` version 2: the same dict as a positional JSON array ``[2, id, partition, ...]``;
- ``0x00`` then the version byte: version 3 and later (Avro, one schema file per version).

Versions 1 and 2 are read into the typed record: its newest entries, the highest source
offset applied per partition from the dedupe map, and what the slip needs from the history
(who asked for each supplement); records written before and after an upgrade mix freely. A
version this reader does not know is refused with what to do, never guessed at.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

from lienthong.domain.calendar import VN_TZ
from lienthong.domain.lifecycle import (
    Channel,
    DossierState,
    DossierStatus,
    EventKind,
    StepState,
    StepStatus,
)
from lienthong.domain.record import (
    ENTRIES_KEPT,
    NOTES,
    DossierRecord,
    Entry,
    Handoff,
    PauseSpan,
    Source,
)
from lienthong.schemas import codec as avro_codec

__all__ = [
    "SCHEMA_FILE",
    "STATE_VERSION",
    "StateDecodeError",
    "decode_state",
    "encode_state",
    "from_legacy",
]

STATE_VERSION = 3
SCHEMA_FILE = Path(__file__).resolve().parent / "state" / "dossier_record.v3.avsc"
_HEADER = bytes((0, STATE_VERSION))
_V2_FIELDS = 16  # top-level items of a version 2 value, version included
_V2_ENTRY = 16  # items of a version 2 history entry


class StateDecodeError(ValueError):
    """A changelog value that is no tracker record of a known version."""


@cache
def _schema() -> Any:
    return fastavro.parse_schema(json.loads(_schema_path().read_text()))


def _schema_path() -> Path:
    return SCHEMA_FILE


# -- version 3 ------------------------------------------------------------------------------
# Why two writers: fastavro's schemaless_writer costs ~100 µs for a typical record (a dict
# per entry, a datetime conversion per instant), several times the rest of an event's tracker
# work; the project's native Avro encoder (schemas/_avro_native.c, the events' fast path)
# writes the same bytes from the record's own attributes in a few µs. It declines anything it
# is not sure of, and fastavro then writes the record (same bytes, tests/unit/domain).
@cache
def _native() -> tuple[Any, Any] | None:
    encoder = avro_codec.compile_encoder(json.loads(_schema_path().read_text()))
    decoder = avro_codec.compile_decoder(
        json.loads(_schema_path().read_text()), header_size=len(_HEADER)
    )
    return None if encoder is None or decoder is None else (encoder, decoder)


class _Flat:
    """The record as the schema lays it out (the lifecycle state's fields at the top level),
    read by attribute like the record itself."""

    __slots__ = ("_record", "_state")

    def __init__(self, record: DossierRecord) -> None:
        self._record = record
        self._state = record.state

    def __getattr__(self, name: str) -> Any:
        if name in _STATE_FIELDS:
            value = getattr(self._state, _STATE_FIELDS[name])
            if name == "channel" and value is not None:
                return int(value)
            return value
        return getattr(self._record, name)


_STATE_FIELDS = {
    "status": "status",
    "channel": "channel",
    "resume_status": "resume_status",
    "received_at": "received_at",
    "due": "due",
    "supplement_requests": "supplement_requests",
    "steps": "steps",
    "finished_at": "finished_at",
    "ended_at": "ended_at",
}


def _datum(r: DossierRecord) -> dict[str, Any]:
    """The record as fastavro's writer takes it (a dict per record of the schema)."""
    s = r.state
    return {
        "id": r.id,
        "partition": r.partition,
        "status": s.status.value,
        "channel": int(s.channel) if s.channel is not None else None,
        "resume_status": s.resume_status.value if s.resume_status is not None else None,
        "received_at": s.received_at,
        "due": s.due,
        "supplement_requests": s.supplement_requests,
        "steps": [
            {
                "step": st.step,
                "agency": st.agency,
                "status": st.status.value,
                "sent_at": st.sent_at,
                "accepted_at": st.accepted_at,
                "returned_at": st.returned_at,
                "due": st.due,
                "outcome": st.outcome,
            }
            for st in s.steps
        ],
        "finished_at": s.finished_at,
        "ended_at": s.ended_at,
        "procedure": r.procedure,
        "receiving_agency": r.receiving_agency,
        "holder": r.holder,
        "first_at": r.first_at,
        "last_at": r.last_at,
        "applied": r.applied,
        "entries": [
            {
                "index": e.index,
                "event_id": e.event_id,
                "kind": e.kind.value,
                "agency": e.agency,
                "status": e.status,
                "at": e.at,
                "reason": e.reason,
                "due": e.due,
                "finished_at": e.finished_at,
                "returned_at": e.returned_at,
                "received_at": e.received_at,
                "channel": e.channel,
                "source_partition": e.source_partition,
                "source_offset": e.source_offset,
            }
            for e in r.entries
        ],
        "sources": [{"partition": p, "offset": o} for p, o in r.sources],
        "pauses": [{"start": p.start, "end": p.end} for p in r.pauses],
        "handoffs": [
            {
                "step": h.step,
                "handoff_id": h.handoff_id,
                "from_agency": h.from_agency,
                "to_agency": h.to_agency,
            }
            for h in r.handoffs
        ],
        "sent_alerts": list(r.sent_alerts),
        "supplement_agencies": list(r.supplement_agencies),
        "returned_by_post_at": r.returned_by_post_at,
        "withdrawn_at": r.withdrawn_at,
        "refused_at": r.refused_at,
        "outcome": r.outcome,
    }


def encode_state(record: DossierRecord, *, native: bool = True) -> bytes:
    """The version 3 changelog value of ``record`` (``native=False``: fastavro only)."""
    fast = _native() if native else None
    if fast is not None:
        try:
            return fast[0](_Flat(record), _HEADER)  # type: ignore[no-any-return]
        except Exception:  # declined: fastavro below writes it (or says what is wrong)
            pass
    out = io.BytesIO()
    out.write(_HEADER)
    fastavro.schemaless_writer(out, _schema(), _datum(record))
    return out.getvalue()


def _vn(value: datetime | None) -> datetime | None:
    return value.astimezone(VN_TZ) if value is not None else None


def reason_of(kind: EventKind, note: str) -> str | None:
    """The reason in a legacy entry's note (the kind's wording, then ": " and the reason)."""
    wording = NOTES[kind]
    if note == wording:
        return None
    if note.startswith(wording + ": "):
        return note[len(wording) + 2 :]
    raise ValueError(f"note {note!r} is not {wording!r}[: reason]")


def _state(d: dict[str, Any]) -> DossierState:
    """The lifecycle state of a version 3 datum (or of a legacy one put in that shape)."""
    return DossierState(
        dossier_id=d["id"],
        status=DossierStatus(d["status"]),
        channel=Channel(d["channel"]) if d["channel"] is not None else None,
        resume_status=DossierStatus(d["resume_status"]) if d["resume_status"] else None,
        received_at=_vn(d["received_at"]),
        due=_vn(d["due"]),
        supplement_requests=d["supplement_requests"],
        steps=tuple(
            StepState(
                step=st["step"],
                agency=st["agency"],
                status=StepStatus(st["status"]),
                sent_at=st["sent_at"].astimezone(VN_TZ),
                accepted_at=_vn(st["accepted_at"]),
                returned_at=_vn(st["returned_at"]),
                due=_vn(st["due"]),
                outcome=st["outcome"],
            )
            for st in d["steps"]
        ),
        finished_at=_vn(d["finished_at"]),
        ended_at=_vn(d["ended_at"]),
    )


def _from_v3(d: dict[str, Any]) -> DossierRecord:
    state = _state(d)
    entries = []
    for e in d["entries"]:
        kind = EventKind(e["kind"])
        entries.append(
            Entry(
                index=e["index"],
                event_id=e["event_id"],
                kind=kind,
                agency=e["agency"],
                status=e["status"],
                at=e["at"].astimezone(VN_TZ),
                reason=e["reason"],
                due=_vn(e["due"]),
                finished_at=_vn(e["finished_at"]),
                returned_at=_vn(e["returned_at"]),
                received_at=_vn(e["received_at"]),
                channel=e["channel"],
                source_partition=e["source_partition"],
                source_offset=e["source_offset"],
            )
        )
    return DossierRecord(
        id=d["id"],
        partition=d["partition"],
        state=state,
        procedure=d["procedure"],
        receiving_agency=d["receiving_agency"],
        holder=d["holder"],
        first_at=_vn(d["first_at"]),
        last_at=_vn(d["last_at"]),
        applied=d["applied"],
        entries=tuple(entries),
        sources=tuple(Source(s["partition"], s["offset"]) for s in d["sources"]),
        pauses=tuple(PauseSpan(p["start"].astimezone(VN_TZ), _vn(p["end"])) for p in d["pauses"]),
        handoffs=tuple(
            Handoff(h["step"], h["handoff_id"], h["from_agency"], h["to_agency"])
            for h in d["handoffs"]
        ),
        sent_alerts=tuple(d["sent_alerts"]),
        supplement_agencies=tuple(d["supplement_agencies"]),
        returned_by_post_at=_vn(d["returned_by_post_at"]),
        withdrawn_at=_vn(d["withdrawn_at"]),
        refused_at=_vn(d["refused_at"]),
        outcome=d["outcome"],
    )


def decode_state(value: bytes | dict[str, Any] | list[Any]) -> DossierRecord:
    """The record of a changelog value of any known version (see the module doc); a value
    already parsed from JSON (version 1 or 2) is accepted too."""
    if isinstance(value, dict | list):
        return from_legacy(value)
    if not isinstance(value, bytes | bytearray | memoryview) or not value:
        raise StateDecodeError(f"tracker record: expected bytes, got {value!r:.80}")
    raw = bytes(value)
    first = raw[0]
    if first in (ord("{"), ord("[")):
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise StateDecodeError(f"tracker record: bad JSON ({exc})") from exc
        return from_legacy(parsed)
    if first != 0 or len(raw) < 2:
        raise StateDecodeError(f"tracker record: unknown framing {raw[:8]!r}")
    version = raw[1]
    if version != STATE_VERSION:
        raise StateDecodeError(
            f"tracker record: unknown encoding version {version} (this worker reads 1 to "
            f"{STATE_VERSION}); was it written by a newer release? Run that release, or "
            "rebuild the table from a newer worker's changelog."
        )
    fast = _native()
    datum = None
    if fast is not None:
        try:
            datum = fast[1](raw)
        except Exception:  # declined or malformed: fastavro reads it or says why not
            datum = None
    if datum is None:
        try:
            datum = fastavro.schemaless_reader(io.BytesIO(raw[2:]), _schema(), None)
        except Exception as exc:  # fastavro raises several kinds on a truncated body
            raise StateDecodeError(
                f"tracker record version 3: {type(exc).__name__}: {exc}"
            ) from exc
    return _from_v3(datum)  # type: ignore[arg-type]


# -- versions 1 and 2 -----------------------------------------------------------------------
def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(VN_TZ) if value is not None else None


def _legacy_state(dossier_id: str, s: dict[str, Any]) -> DossierState:
    """A version 1 ``state`` object (ISO instants, steps as arrays), read as version 3's."""
    step_fields = ("step", "agency", "status", "sent_at", "accepted_at", "returned_at", "due")
    return _state(
        {
            "id": dossier_id,
            "status": s["status"],
            "channel": s["channel"],
            "resume_status": s["resume"],
            "received_at": _dt(s["received_at"]),
            "due": _dt(s["due"]),
            "supplement_requests": s["supplements"],
            "steps": [
                {
                    **dict(zip(step_fields[:3], st[:3], strict=True)),
                    **{k: _dt(v) for k, v in zip(step_fields[3:], st[3:7], strict=True)},
                    "outcome": st[7],
                }
                for st in s["steps"]
            ],
            "finished_at": _dt(s["finished_at"]),
            "ended_at": _dt(s["ended_at"]),
        }
    )


def _v2_to_v1(value: list[Any]) -> dict[str, Any]:
    """A version 2 array as the version 1 dict it encodes."""
    if len(value) != _V2_FIELDS:
        raise StateDecodeError(f"tracker record version 2: {len(value)} fields, expected 16")
    (_, dossier_id, partition, s, procedure, receiving_agency, last_at, entries, pauses) = value[:9]
    history, seen = [], {}
    for index, e in enumerate(entries):
        if len(e) != _V2_ENTRY:
            raise StateDecodeError(
                f"tracker record {dossier_id}: history entry {index} has {len(e)} fields, "
                f"expected {_V2_ENTRY}"
            )
        (event_id, kind, agency, to_agency, step, event_due, outcome, channel) = e[:8]
        history.append(
            {
                "event": [kind, agency, to_agency, step, event_due, outcome, channel],
                "event_id": event_id,
                "status": e[8],
                "at": e[9],
                "agency": agency,
                "note": e[10],
                "due": e[11],
                "finished_at": e[12],
                "returned_at": e[13],
            }
        )
        seen[event_id] = [[e[14], e[15]], index]
    keys = ("status", "channel", "resume", "received_at", "due", "supplements", "steps")
    state = dict(zip((*keys, "finished_at", "ended_at"), s, strict=True))
    rest = ("handoffs", "sent_alerts", "returned_by_post_at", "withdrawn_at", "refused_at")
    return {
        "id": dossier_id,
        "partition": partition,
        "state": state,
        "procedure": procedure,
        "receiving_agency": receiving_agency,
        "last_at": last_at,
        "seen": seen,
        "history": history,
        "pauses": pauses,
        **dict(zip((*rest, "holder", "outcome"), value[9:], strict=True)),
    }


def from_legacy(value: dict[str, Any] | list[Any]) -> DossierRecord:
    """A version 1 (dict) or version 2 (array) record as the typed record."""
    if isinstance(value, list):
        if not value or value[0] != 2:
            raise StateDecodeError(f"tracker record: unknown array version {value[:1]!r}")
        value = _v2_to_v1(value)
    try:
        return _from_v1(value)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StateDecodeError(f"tracker record version 1/2: {type(exc).__name__}: {exc}") from exc


def _from_v1(r: dict[str, Any]) -> DossierRecord:
    history = r["history"]
    seen = r["seen"]
    entries, sources = [], {}
    received = channel = None
    agencies = []
    for index, h in enumerate(history):
        kind = EventKind(h["event"][0])
        (partition, offset), _ = seen[h["event_id"]]
        sources[partition] = max(offset, sources.get(partition, -1))
        if kind is EventKind.DOSSIER_RECEIVED:
            received = h["at"]
        if h["event"][6] is not None:
            channel = h["event"][6]
        if kind is EventKind.SUPPLEMENT_REQUESTED:
            agencies.append(h["agency"])
        if index >= len(history) - ENTRIES_KEPT:
            entries.append(
                Entry(
                    index=index,
                    event_id=h["event_id"],
                    kind=kind,
                    agency=h["agency"],
                    status=h["status"],
                    at=_dt(h["at"]),  # type: ignore[arg-type]
                    reason=reason_of(kind, h["note"]),
                    due=_dt(h["due"]),
                    finished_at=_dt(h["finished_at"]),
                    returned_at=_dt(h["returned_at"]),
                    received_at=_dt(received),
                    channel=channel,
                    source_partition=partition,
                    source_offset=offset,
                )
            )
    state = _legacy_state(r["id"], r["state"])
    return DossierRecord(
        id=r["id"],
        partition=r["partition"],
        state=state,
        procedure=r["procedure"],
        receiving_agency=r["receiving_agency"],
        holder=r["holder"],
        first_at=_dt(history[0]["at"]) if history else None,
        last_at=_dt(r["last_at"]),
        applied=len(history),
        entries=tuple(entries),
        sources=tuple(Source(p, o) for p, o in sorted(sources.items())),
        pauses=tuple(PauseSpan(_dt(s), _dt(e)) for s, e in r["pauses"]),  # type: ignore[arg-type]
        handoffs=tuple(
            Handoff(int(step), h[0], h[1], h[2])
            for step, h in sorted(r["handoffs"].items(), key=lambda kv: int(kv[0]))
        ),
        sent_alerts=tuple(sorted(set(r["sent_alerts"]))),
        supplement_agencies=tuple(agencies),
        returned_by_post_at=_dt(r["returned_by_post_at"]),
        withdrawn_at=_dt(r["withdrawn_at"]),
        refused_at=_dt(r["refused_at"]),
        outcome=r.get("outcome"),
    )
