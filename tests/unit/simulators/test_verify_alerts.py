"""The verifier's alert rows: warnings, apologies and escalations by id, old truth files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lienthong.domain.alerts import AlertRules
from lienthong.schemas import AvroCodec, FileSchemaRegistry
from lienthong.simulators.faults import FaultConfig
from lienthong.simulators.province import Period, SimConfig
from lienthong.simulators.run import Plan
from lienthong.simulators.truth import TruthBuilder
from lienthong.simulators.verify import compare, compare_report, render

JAN = Period.parse("2026-01")


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    codec = AvroCodec(FileSchemaRegistry(Path(tmp_path_factory.mktemp("reg")) / "r.json"))
    plan = Plan(SimConfig(JAN, seed=7, dossiers=300), FaultConfig.all_on(0.05), codec.encode)
    plan.truth = TruthBuilder(JAN, rules=AlertRules(), dossier_partitions=6, from_settings=False)
    for _ in plan.records():
        pass
    data = json.loads(json.dumps(plan.truth_json()))
    alerts = data["alerts"]
    assert alerts["warnings"] and alerts["apologies"] and alerts["escalations"]
    return data


def actual_from(truth: dict[str, Any]) -> dict[str, Any]:
    """What a bus in agreement with the truth would have published."""
    a = truth["alerts"]
    return {
        "stats": copy.deepcopy(truth["counts"]),
        "overdue_dossiers": list(a["overdue_dossiers"]),
        "overdue_steps": list(a["overdue_steps"]),
        "warnings": {i: {"dossier": k.split("|")[0]} for i, k in a["warnings"].items()},
        "apologies": {
            i: {
                "dossier": v["dossier"],
                "responsible": v["responsible"],
                "new_appointment": v["new_appointment"],
            }
            for i, v in a["apologies"].items()
        },
        "escalations": copy.deepcopy(a["escalations"]),
        "portal": copy.deepcopy(truth["portal"]),
        "dead_letters": dict(truth["dead_letters"]),
        "dossier_partitions": 6,
    }


def row(rows: list, figure: str) -> Any:
    return next(r for r in rows if r.figure == figure)


def test_agreeing_bus_passes_with_a_row_per_kind(truth: dict[str, Any]) -> None:
    rows, notes = compare_report(truth, actual_from(truth))
    assert all(r.ok for r in rows), render(rows, notes)
    assert notes == []
    a = truth["alerts"]
    assert row(rows, "warnings (dossier and step)").expected == len(a["warnings"])
    assert row(rows, "apologies").expected == len(a["apologies"])
    assert row(rows, "escalations (handoffs not accepted)").expected == len(a["escalations"])
    assert row(rows, "dossier-events partitions").actual == 6


@pytest.mark.parametrize("kind", ["warnings", "apologies", "escalations"])
def test_a_missing_and_an_unexpected_alert_are_two_not_matching(
    truth: dict[str, Any], kind: str
) -> None:
    actual = actual_from(truth)
    first = sorted(actual[kind])[0]
    actual[kind]["00000000-0000-5000-8000-000000000000"] = actual[kind].pop(first)
    rows, notes = compare_report(truth, actual)
    assert row(rows, f"{kind} not matching").actual == 2
    assert any(r.figure.startswith(kind[:5]) and r.ok for r in rows)  # same count
    assert any(n.startswith(f"{kind} expected, not on the bus") for n in notes)
    assert any(n.startswith(f"{kind} on the bus, not expected") for n in notes)


def test_a_repeated_or_missing_warning_changes_the_count(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    actual["warnings"].pop(sorted(actual["warnings"])[0])
    rows = compare(truth, actual)
    r = row(rows, "warnings (dossier and step)")
    assert (r.expected - r.actual, r.ok) == (1, False)


def test_apology_with_the_wrong_agency_or_appointment(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    i = sorted(actual["apologies"])[0]
    actual["apologies"][i]["responsible"] = "000.99.99.H10"
    assert row(compare(truth, actual), "apologies with wrong agency/new appointment").actual == 1
    actual = actual_from(truth)
    actual["apologies"][i]["new_appointment"] = "2026-12-31T17:00:00+07:00"
    rows, notes = compare_report(truth, actual)
    assert row(rows, "apologies with wrong agency/new appointment").actual == 1
    assert any(n.startswith("apology ") for n in notes)


def test_same_instant_in_another_offset_is_the_same_appointment(truth: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    actual = actual_from(truth)
    for v in actual["apologies"].values():
        v["new_appointment"] = (
            datetime.fromisoformat(v["new_appointment"]).astimezone(UTC).isoformat()
        )
    assert all(r.ok for r in compare(truth, actual))


def test_escalation_naming_the_wrong_agencies(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    i = sorted(actual["escalations"])[0]
    actual["escalations"][i]["to"] = "000.99.99.H10"
    assert row(compare(truth, actual), "escalations with wrong agencies").actual == 1


def test_overdue_steps_are_compared_by_key_not_only_counted(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    actual["overdue_steps"] = actual["overdue_steps"][1:] + ["H10.X#1"]
    rows, notes = compare_report(truth, actual)
    assert row(rows, "overdue steps not matching").actual == 2
    assert "overdue steps on the bus, not expected: H10.X#1" in notes


def test_partition_count_other_than_assumed_is_a_mismatch(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    actual["dossier_partitions"] = 12
    assert not row(compare(truth, actual), "dossier-events partitions").ok


def old_truth(truth: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(truth)
    old["alerts"] = {
        "overdue_dossiers": truth["alerts"]["overdue_dossiers"],
        "overdue_steps": truth["alerts"]["overdue_steps"],
    }
    return old


def test_old_truth_file_verifies_its_rows_and_says_the_new_ones_were_skipped(
    truth: dict[str, Any],
) -> None:
    rows, notes = compare_report(old_truth(truth), actual_from(truth))
    assert all(r.ok for r in rows)
    assert not any(r.figure.startswith(("warnings", "apologies", "escalations")) for r in rows)
    assert len(notes) == 1 and "truth file predates them" in notes[0]
    bad = actual_from(truth)
    bad["overdue_dossiers"] = bad["overdue_dossiers"][1:]
    assert not all(r.ok for r in compare(old_truth(truth), bad))


def test_old_actual_dump_skips_the_new_rows_with_a_note(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    for kind in ("warnings", "apologies", "escalations"):
        del actual[kind]
    rows, notes = compare_report(truth, actual)
    assert all(r.ok for r in rows)
    assert "actual data has none" in notes[0]


def test_cli_prints_the_note_and_exits_by_the_rows(
    truth: dict[str, Any], tmp_path: Path, capsys
) -> None:
    from lienthong.cli.main import main

    (tmp_path / "old.json").write_text(json.dumps(old_truth(truth)))
    (tmp_path / "new.json").write_text(json.dumps(truth))
    actual = actual_from(truth)
    (tmp_path / "good.json").write_text(json.dumps(actual))
    args = ["verify", "--actual", str(tmp_path / "good.json"), "--truth"]
    assert main([*args, str(tmp_path / "old.json")]) == 0
    assert "note: warnings, apologies and escalations not checked" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "escalations (handoffs not accepted)" in out and "note:" not in out
    actual["escalations"] = {}
    (tmp_path / "bad.json").write_text(json.dumps(actual))
    assert (
        main(
            [
                "verify",
                "--actual",
                str(tmp_path / "bad.json"),
                "--truth",
                str(tmp_path / "new.json"),
            ]
        )
        == 1
    )
    assert "MISMATCH" in capsys.readouterr().out


def test_notes_for_repeated_alert_records_and_other_rules(truth: dict[str, Any]) -> None:
    actual = actual_from(truth)
    actual["alerts_repeated"] = 3
    actual["rules"] = {"warning_lead_hours": 4.0, "handoff_accept_hours": 4.0}
    rows, notes = compare_report(truth, actual)
    assert all(r.ok for r in rows)  # repeats carry the same id: exactly once in effect
    assert any(n.startswith("3 alert records repeat") for n in notes)
    assert any("streams.warning_lead_hours = 8" in n for n in notes)
    assert not any("handoff_accept_hours" in n for n in notes)


def test_live_mode_truth_skips_the_new_rows_with_a_note(truth: dict[str, Any]) -> None:
    live = copy.deepcopy(truth)
    live["meta"]["mode"] = "live"
    actual = actual_from(truth)
    actual["warnings"] = {}
    rows, notes = compare_report(live, actual)
    assert all(r.ok for r in rows)
    assert "live-mode truth" in notes[0]


# -- live truths: alerts the wall clock fires after the window ----------------------------


@pytest.fixture(scope="module")
def live_truth() -> dict[str, Any]:
    """One dossier open at the end of a live window; overdue + apology due on 8 Jan 10:00."""
    from tests.unit.simulators.test_truth_alerts import Script, at

    window = Period("live:202601071200", JAN.start, at(7, 12))
    builder = TruthBuilder(window, rules=AlertRules(), dossier_partitions=6, from_settings=False)
    builder.add(Script("H10.TEST.A").received(at(5, 9), at(8, 10)).truth())
    data = json.loads(json.dumps(builder.to_json({"mode": "live"})))
    assert len(data["alerts"]["after_window"]) == 2
    return data


def read_at(truth: dict[str, Any], start: str, end: str, fired: bool) -> dict[str, Any]:
    """The bus read over [start, end]; ``fired``: the after-window alerts are on it."""
    actual = actual_from(truth)
    actual["read_from"], actual["read_to"] = start, end
    if fired:
        for alert_id, later in truth["alerts"]["after_window"].items():
            if later["kind"] == "overdue":
                actual["overdue_dossiers"].append(later["entry"].split("|")[0])
            else:
                actual[later["kind"]][alert_id] = {"dossier": "H10.TEST.A", **later["entry"]}
    return actual


def failing(truth: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [r.figure for r in compare(truth, actual) if not r.ok]


def test_live_alerts_due_before_the_reading_must_be_on_the_bus(live_truth) -> None:
    after = ("2026-01-08T11:00:00+07:00", "2026-01-08T11:00:05+07:00")
    assert failing(live_truth, read_at(live_truth, *after, fired=True)) == []
    missing = failing(live_truth, read_at(live_truth, *after, fired=False))
    assert "overdue dossiers not matching" in missing and "apologies not matching" in missing


def test_live_alerts_due_after_the_reading_must_not_be_on_the_bus(live_truth) -> None:
    before = ("2026-01-08T09:00:00+07:00", "2026-01-08T09:00:05+07:00")
    assert failing(live_truth, read_at(live_truth, *before, fired=False)) == []
    early = failing(live_truth, read_at(live_truth, *before, fired=True))
    assert "overdue dossiers not matching" in early and "apologies not matching" in early


def test_live_alerts_due_while_the_bus_is_read_may_be_either(live_truth) -> None:
    during = ("2026-01-08T10:00:05+07:00", "2026-01-08T10:00:20+07:00")
    assert failing(live_truth, read_at(live_truth, *during, fired=False)) == []
    assert failing(live_truth, read_at(live_truth, *during, fired=True)) == []
    rows, notes = compare_report(live_truth, read_at(live_truth, *during, fired=True))
    assert any(n.startswith("live: 2 alerts fall due after the window; 0 were") for n in notes)
