"""A re-emitted portal record equals the first emission, whatever the dossier did since.

After a batch whose sends failed, the redelivered events of a dossier are recognised in a
record that may already hold *later* events; their portal records are emitted again from that
record (``portal_view(record, index)``) and must be byte-identical to the first ones, since
consumers keep the first record per event id.
"""

from __future__ import annotations

from lienthong.domain.procedures import load_procedures
from lienthong.domain.tracking import Applied, Record, portal_view, track_in
from lienthong.schemas.models import DossierSubmitted
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_scenarios import CENTER, PROC, SUBJECT, Script, march_script, t


def _apply(script: Script) -> dict[str, list[tuple[Record, int]]]:
    """Per dossier: the record right after each applied event, with that event's index."""
    procedures = load_procedures()
    records: dict[str, Record] = {}
    steps: dict[str, list[tuple[Record, int]]] = {}
    for offset, (event, _partition) in enumerate(script.ordered()):
        facts = facts_of(event)
        assert facts is not None
        record = records.get(facts.dossier_id)
        result = track_in(procedures, record, facts, partition=0, offset=offset)
        if isinstance(result, Applied):
            records[facts.dossier_id] = result.record
            steps.setdefault(facts.dossier_id, []).append((result.record, result.history_index))
    return steps


def test_every_earlier_event_re_emits_its_first_portal_record() -> None:
    for dossier, steps in _apply(march_script()).items():
        final = steps[-1][0]
        for record, index in steps:
            assert portal_view(final, index) == portal_view(record, index), (dossier, index)


def test_submitted_online_then_received_at_the_counter_keeps_the_submission_values() -> None:
    s = Script()
    s.add(
        DossierSubmitted,
        "HS-SUB",
        t(3, 20),
        procedure_code=PROC,
        receiving_agency=CENTER,
        subject=SUBJECT,
    )
    s.received("HS-SUB", t(4, 8), t(14, 16), channel="counter")
    (first, _), (second, _) = _apply(s)["HS-SUB"]
    submitted = portal_view(first, 0)
    assert portal_view(second, 0) == submitted
    assert (submitted["NgayTiepNhan"], submitted["KenhThucHien"]) == (t(3, 20).isoformat(), 2)
    received = portal_view(second, 1)
    assert (received["NgayTiepNhan"], received["KenhThucHien"]) == (t(4, 8).isoformat(), 1)
