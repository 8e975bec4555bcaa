"""The tracker record's changelog encoding: versioned, positional, about half the JSON bytes.

Why not the record dict itself (version 1, what the tracker wrote until now): every field
name is repeated in every changelog record, the event ids are held twice (the dedupe map and
the history), and each event's agency twice; a dossier's record is rewritten on every event,
so those bytes are most of what the worker writes to the broker. Version 2 is a JSON array
whose layout is fixed by position (documented in docs/streams.md) and starts with its
version number, so a reader can always tell the layouts apart:

- version 1: a JSON object (the record dict as :mod:`lienthong.domain.tracking` builds it);
- version 2: ``[2, id, partition, lifecycle, procedure, receiving_agency, last_at,
  history, pauses, handoffs, sent_alerts, returned_by_post_at, withdrawn_at, refused_at,
  holder, outcome]`` with ``lifecycle = [status, channel, resume, received_at, due,
  supplements, steps, finished_at, ended_at]`` and each history entry ``[event_id, kind,
  agency, to_agency, step, event_due, outcome, channel, status, at, note, due,
  finished_at, returned_at, source_partition, source_offset]``; the dedupe map (event id →
  source record and history index) is rebuilt from the history on decoding.

Both decode to the same record dict, so an upgraded worker restores a changelog written by
the previous version, and records written before and after the upgrade mix freely. Pure
Python, no Kafka: the adapter turns the encoded value into bytes with Faust's json codec.
"""

from __future__ import annotations

from typing import Any

from lienthong.domain.tracking import Record

__all__ = ["STATE_VERSION", "StateDecodeError", "decode_state", "encode_state"]

STATE_VERSION = 2
_FIELDS = 16  # top-level items of a version 2 value, version included
_ENTRY = 16  # items of a version 2 history entry


class StateDecodeError(ValueError):
    """A changelog value that is no tracker record of a known version."""


def encode_state(record: Record) -> list[Any]:
    """The version 2 value of ``record`` (JSON-able: lists, strings, numbers, None)."""
    s = record["state"]
    seen = record["seen"]
    history = []
    for e in record["history"]:
        (source, _index) = seen[e["event_id"]]
        kind, agency, to_agency, step, event_due, outcome, channel = e["event"]
        history.append(
            [
                e["event_id"],
                kind,
                agency,
                to_agency,
                step,
                event_due,
                outcome,
                channel,
                e["status"],
                e["at"],
                e["note"],
                e["due"],
                e["finished_at"],
                e["returned_at"],
                source[0],
                source[1],
            ]
        )
    return [
        STATE_VERSION,
        record["id"],
        record["partition"],
        [
            s["status"],
            s["channel"],
            s["resume"],
            s["received_at"],
            s["due"],
            s["supplements"],
            s["steps"],
            s["finished_at"],
            s["ended_at"],
        ],
        record["procedure"],
        record["receiving_agency"],
        record["last_at"],
        history,
        record["pauses"],
        record["handoffs"],
        record["sent_alerts"],
        record["returned_by_post_at"],
        record["withdrawn_at"],
        record["refused_at"],
        record["holder"],
        record["outcome"],
    ]


def decode_state(value: Any) -> Record:
    """The record dict of a changelog value of any known version (see the module doc)."""
    if isinstance(value, dict):
        return value  # version 1: the record itself
    if not isinstance(value, list) or not value:
        raise StateDecodeError(f"tracker record: expected an object or array, got {value!r:.80}")
    version = value[0]
    if version != STATE_VERSION:
        raise StateDecodeError(
            f"tracker record: unknown encoding version {version!r} (this worker reads 1 and "
            f"{STATE_VERSION}); was it written by a newer release?"
        )
    if len(value) != _FIELDS:
        raise StateDecodeError(f"tracker record version 2: {len(value)} fields, expected {_FIELDS}")
    (
        _,
        dossier_id,
        partition,
        s,
        procedure,
        receiving_agency,
        last_at,
        entries,
        pauses,
        handoffs,
        sent_alerts,
        returned_by_post_at,
        withdrawn_at,
        refused_at,
        holder,
        outcome,
    ) = value
    history = []
    seen: dict[str, Any] = {}
    for index, e in enumerate(entries):
        if len(e) != _ENTRY:
            raise StateDecodeError(
                f"tracker record {dossier_id}: history entry {index} has {len(e)} fields, "
                f"expected {_ENTRY}"
            )
        (
            event_id,
            kind,
            agency,
            to_agency,
            step,
            event_due,
            event_outcome,
            channel,
            status,
            at,
            note,
            due,
            finished_at,
            returned_at,
            source_partition,
            source_offset,
        ) = e
        history.append(
            {
                "event": [kind, agency, to_agency, step, event_due, event_outcome, channel],
                "event_id": event_id,
                "status": status,
                "at": at,
                "agency": agency,
                "note": note,
                "due": due,
                "finished_at": finished_at,
                "returned_at": returned_at,
            }
        )
        seen[event_id] = [[source_partition, source_offset], index]
    return {
        "id": dossier_id,
        "partition": partition,
        "state": {
            "status": s[0],
            "channel": s[1],
            "resume": s[2],
            "received_at": s[3],
            "due": s[4],
            "supplements": s[5],
            "steps": s[6],
            "finished_at": s[7],
            "ended_at": s[8],
        },
        "procedure": procedure,
        "receiving_agency": receiving_agency,
        "last_at": last_at,
        "seen": seen,
        "history": history,
        "pauses": pauses,
        "handoffs": handoffs,
        "sent_alerts": sent_alerts,
        "returned_by_post_at": returned_by_post_at,
        "withdrawn_at": withdrawn_at,
        "refused_at": refused_at,
        "holder": holder,
        "outcome": outcome,
    }
