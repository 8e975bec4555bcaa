"""Write the legacy tracker-state fixtures (encoding versions 1 and 2) from a release that
wrote them: run it from a checkout of that release (8667cb5 wrote both), e.g.

    git worktree add /tmp/old 8667cb5 && cd /tmp/old && \\
    PYTHONPATH=/tmp/old python /path/to/this/file OUT_DIR

For every dossier of the scripted March (tests/integration/test_streams_scenarios.py), after
each applied event: the record as version 1 (the dict) and version 2 (the array), with what
that release derived from it (the portal view of every event, the slip, the pending alerts,
the next alert instant, the counts key), which the current release must derive alike.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from lienthong.domain.alerts import AlertRules, next_fire, pending_alerts
from lienthong.domain.procedures import load_procedures
from lienthong.domain.slip import build_slip
from lienthong.domain.state import encode_state
from lienthong.domain.stats import stats_key
from lienthong.domain.tracking import Applied, events_of, portal_view, track_in
from lienthong.streams.facts import facts_of
from tests.integration.test_streams_scenarios import march_script, t

RULES = AlertRules(warning_lead=timedelta(hours=8), accept_within=timedelta(hours=4))


def main(out: Path) -> None:
    procedures = load_procedures()
    records: dict = {}
    cases = []
    for offset, (event, _partition) in enumerate(march_script().ordered()):
        facts = facts_of(event)
        partition = sum(facts.dossier_id.encode()) % 6  # any fixed partition per dossier
        record = records.get(facts.dossier_id)
        result = track_in(procedures, record, facts, partition=partition, offset=offset)
        if not isinstance(result, Applied):
            continue
        record = records[facts.dossier_id] = result.record
        now = t(28, 17)
        slip = build_slip(
            events_of(record), procedure=procedures.get(record["procedure"] or ""), now=now
        )
        nf = next_fire(record, RULES)
        cases.append(
            {
                "v1": record,
                "v2": encode_state(record),
                "portal": [portal_view(record, i) for i in range(len(record["history"]))],
                "slip_now": now.isoformat(),
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
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "tracker_state_legacy.json").write_text(
        json.dumps({"release": "8667cb5", "cases": cases}, ensure_ascii=False, indent=0) + "\n"
    )
    print(len(cases), "cases")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
