"""The typed record derives what the dict record of the last release derived, and a changelog
written by that release (encoding versions 1 and 2) is read into it.

The fixture (data/tracker_state_legacy.json, written by data/make_legacy_state.py from release
8667cb5) holds, for every dossier of the scripted March after each applied event, the record
in both legacy encodings and what that release derived from it: the portal view of every
event, the slip, the pending alerts, the next alert instant and the counts key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lienthong.domain.alerts import AlertRules, next_fire, pending_alerts
from lienthong.domain.procedures import ProcedureCatalogue, load_procedures
from lienthong.domain.record import DossierRecord
from lienthong.domain.slip import record_slip
from lienthong.domain.stats import stats_key
from lienthong.domain.tracking import Applied, portal_view, track_in
from lienthong.schemas.dossier_record import decode_state, encode_state
from lienthong.streams.app import changelog_json
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_scenarios import march_script

RULES = AlertRules(warning_lead=timedelta(hours=8), accept_within=timedelta(hours=4))
CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "tracker_state_legacy.json").read_text()
)["cases"]


@pytest.fixture(scope="module")
def catalogue() -> ProcedureCatalogue:
    return load_procedures()


def _derived(record: DossierRecord, case: dict[str, Any], catalogue: ProcedureCatalogue) -> dict:
    now = datetime.fromisoformat(case["slip_now"])
    slip = record_slip(record, procedure=catalogue.get(record.procedure or ""), now=now)
    nf = next_fire(record, RULES)
    return {
        "portal": [portal_view(record, i) for i in range(len(case["portal"]))],
        "slip": {
            "status": slip.status,
            "appointment": slip.appointment.isoformat() if slip.appointment else None,
            "effective_due": slip.effective_due.isoformat() if slip.effective_due else None,
            "late": slip.late,
            "responsible_agencies": list(slip.responsible_agencies),
            "steps": [[s.step, s.agency, s.on_time] for s in slip.steps],
        },
        "pending_alerts": sorted(a.key for a in pending_alerts(record, RULES)),
        "next_fire": nf.isoformat() if nf else None,
        "stats_key": stats_key(record),
    }


def _expected(case: dict[str, Any]) -> dict:
    return {k: case[k] for k in ("portal", "slip", "pending_alerts", "next_fire", "stats_key")}


def _same_instants(got: Any, want: Any) -> bool:
    """Equal, reading ISO strings as instants (a legacy record kept the event's offset)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same_instants(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(map(_same_instants, got, want))
    if isinstance(got, str) and isinstance(want, str) and got != want:
        try:
            return datetime.fromisoformat(got) == datetime.fromisoformat(want)
        except ValueError:
            return False
    return bool(got == want)


def test_the_fixture_covers_the_scripted_month() -> None:
    assert len(CASES) > 40
    assert {len(c["portal"]) for c in CASES} >= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_legacy_changelog_value_reads_into_the_typed_record(
    version: str, catalogue: ProcedureCatalogue
) -> None:
    for case in CASES:
        record = decode_state(changelog_json(case[version]))  # the bytes that release wrote
        assert record == decode_state(case[version])
        got = _derived(record, case, catalogue)
        assert _same_instants(got, _expected(case)), (record.id, got, _expected(case))
        assert record.applied == len(case["portal"])
        # ...and survives being written again in the current encoding.
        again = decode_state(encode_state(record))
        assert again == record
        assert _derived(again, case, catalogue) == got


def test_the_typed_record_derives_what_the_dict_record_derived(
    catalogue: ProcedureCatalogue,
) -> None:
    records: dict[str, DossierRecord] = {}
    cases = iter(CASES)
    for offset, (event, _partition) in enumerate(march_script().ordered()):
        facts = facts_of(event)
        partition = sum(facts.dossier_id.encode()) % 6  # any fixed partition per dossier
        assert facts is not None
        result = track_in(
            catalogue, records.get(facts.dossier_id), facts, partition=partition, offset=offset
        )
        if not isinstance(result, Applied):
            continue
        record = records[facts.dossier_id] = result.record
        case = next(cases)
        assert record.id == case["v1"]["id"]
        got = _derived(record, case, catalogue)
        assert _same_instants(got, _expected(case)), (record.id, got, _expected(case))
        assert decode_state(encode_state(record)) == record
    assert next(cases, None) is None
