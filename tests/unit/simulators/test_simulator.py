"""Generator, ground truth, faults, verifier comparison and stats rendering (no broker)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lienthong.schemas import AvroCodec, FileSchemaRegistry
from lienthong.schemas.validate import Validator
from lienthong.simulators.faults import FAULTS, FaultConfig, inject
from lienthong.simulators.province import Period, ProvinceSimulator, SimConfig
from lienthong.simulators.run import GATE_CLASSES, Plan, produce
from lienthong.simulators.statsview import render_table
from lienthong.simulators.truth import COUNT_FIELDS, fold_dossier
from lienthong.simulators.verify import compare, render

JAN = Period.parse("2026-01")


@pytest.fixture(scope="module")
def codec(tmp_path_factory: pytest.TempPathFactory) -> AvroCodec:
    return AvroCodec(FileSchemaRegistry(tmp_path_factory.mktemp("reg") / "registry.json"))


def _plan(codec: AvroCodec, n: int = 600, faults: FaultConfig | None = None, seed: int = 7):
    plan = Plan(
        SimConfig(JAN, seed=seed, dossiers=n),
        faults or FaultConfig(),
        codec.encode,
        ("day", "month"),
    )
    records = list(plan.records())
    return plan, records


def test_period_parse() -> None:
    assert Period.parse("2026-01").end.month == 2
    assert Period.parse("2026-Q4").end.year == 2027
    assert Period.parse("2026").start.isoformat().startswith("2026-01-01T00:00:00+07")
    with pytest.raises(ValueError):
        Period.parse("2026-13")


def test_same_seed_same_bytes_other_seed_differs(codec: AvroCodec) -> None:
    _, a = _plan(codec, 200)
    _, b = _plan(codec, 200)
    _, c = _plan(codec, 200, seed=8)
    assert [(r.topic, r.key, r.value) for r in a] == [(r.topic, r.key, r.value) for r in b]
    assert [r.value for r in a] != [r.value for r in c]


def test_event_time_order_and_per_dossier_order(codec: AvroCodec) -> None:
    _, records = _plan(codec, 400)
    assert all(x.at <= y.at for x, y in zip(records, records[1:], strict=False))
    sim = ProvinceSimulator(SimConfig(JAN, dossiers=400))
    d = sim.dossier(17)
    mine = [codec.decode(r.value) for r in records if r.key == d.dossier_id]
    assert [e.envelope.event_id for e in mine] == [e.envelope.event_id for e in d.events]


def test_left_out_agency_never_receives_a_simulated_handoff() -> None:
    """The demo's central adapter plays this agency; the simulator must not answer for it."""
    customs = "000.00.64.H10"

    def handed_to(config: SimConfig) -> set[str]:
        return {
            e.to_agency
            for d in ProvinceSimulator(config).dossiers()
            for e in d.events
            if e.EVENT_TYPE == "handoff_sent"
        }

    assert customs in handed_to(SimConfig(JAN, dossiers=3000, seed=3))
    left_out = handed_to(
        SimConfig(JAN, dossiers=3000, seed=3, leave_out_agencies=frozenset({customs}))
    )
    assert left_out and customs not in left_out


def test_calibration_channel_mix_and_lateness() -> None:
    sim = ProvinceSimulator(SimConfig(JAN, dossiers=4000))
    channels = Counter(d.channel for d in (sim.dossier(i) for i in range(4000)))
    assert abs(channels["counter"] / 4000 - 0.814) < 0.03
    assert abs(channels["postal"] / 4000 - 0.1381) < 0.02
    assert abs(channels["online"] / 4000 - 0.0477) < 0.015
    plan = Plan(SimConfig(JAN, dossiers=1500), FaultConfig(), lambda e: b"")
    for _ in plan.records():
        pass
    out = plan.truth.outcomes
    finished = sum(out.values())
    assert finished > 500 and out["late"] / finished < 0.04
    assert plan.truth.dead_letters == Counter()  # the clean stream is legal everywhere


def test_truth_counts_are_consistent(codec: AvroCodec) -> None:
    plan, _ = _plan(codec, 800)
    truth = plan.truth_json()
    month = Counter()
    for key, row in truth["counts"].items():
        if key.endswith("month:2026-01"):
            month.update(row)
    # Everything received this month has exactly one place at month end (nothing carried in).
    placed = sum(
        month[f]
        for f in (
            "finished_early",
            "finished_on_time",
            "finished_late",
            "in_progress_on_time",
            "in_progress_overdue",
            "waiting_supplement",
            "refused",
            "withdrawn",
        )
    )
    refused_unreceived = sum(
        1 for p in truth["portal"].values() if p["NgayHenTra"] is None and p["TrangThaiHoSo"] == 3
    )
    assert placed == month["received"] + refused_unreceived  # online refusals had no receipt
    assert month["carried_over"] == 0
    days = Counter()
    for key, row in truth["counts"].items():
        if "|day:" in key:
            days["received"] += row["received"]
    assert days["received"] == month["received"]


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_lands_as_designed(codec: AvroCodec, fault: str) -> None:
    sim = ProvinceSimulator(SimConfig(JAN, dossiers=300))
    validator = Validator(codec)
    hits = 0
    for i in range(300):
        d = sim.dossier(i)
        got = inject(d, FaultConfig({fault: 1.0}), seed=7)
        if got.fault is None:
            continue
        hits += 1
        bad = [x for x in got.deliveries if x.fault]
        assert bad, fault
        for x in bad:
            raw = x.raw if x.raw is not None else codec.encode(x.event)
            verdict = validator.decode_or_reason(raw)
            if x.expect in GATE_CLASSES:
                assert type(verdict).__name__ == x.expect
            else:
                assert not isinstance(verdict, Exception)
        life = [
            x.event
            for x in got.deliveries
            if x.topic == "dossier-events" and x.event and x.expect not in GATE_CLASSES
        ]
        t = fold_dossier(d.dossier_id, life)
        clean = fold_dossier(d.dossier_id, [e for e in d.events if e.TOPIC == "dossier-events"])
        assert dict(t.dead_letters) == {
            k: v for k, v in got.expected_dead_letters.items() if k == "IllegalTransition"
        }
        assert t.transitions[-1] == clean.transitions[-1]  # absorbed: same end state
        if hits >= 5:
            break
    assert hits >= 5


def test_malformed_bytes_are_really_malformed(codec: AvroCodec) -> None:
    plan, records = _plan(codec, 300, FaultConfig({"malformed": 0.2}))
    bad = [r for r in records if r.fault == "malformed"]
    assert bad and all(not r.value.startswith(b"\x00\x00\x00\x00\x01") for r in bad)
    assert sum(plan.truth.dead_letters.values()) == len(bad)


def _actual_from_truth(truth: dict) -> dict:
    return {
        "stats": truth["counts"],
        "overdue_dossiers": truth["alerts"]["overdue_dossiers"],
        "overdue_steps": truth["alerts"]["overdue_steps"],
        "portal": truth["portal"],
        "dead_letters": truth["dead_letters"],
    }


def test_verify_passes_on_truth_and_fails_on_each_kind_of_mismatch(codec: AvroCodec) -> None:
    plan, _ = _plan(codec, 400, FaultConfig.all_on(0.03))
    truth = json.loads(json.dumps(plan.truth_json()))
    rows = compare(truth, _actual_from_truth(truth))
    assert all(r.ok for r in rows), render(rows)
    key = next(iter(truth["counts"]))
    variants = []
    a = _actual_from_truth(json.loads(json.dumps(truth)))
    a["stats"][key]["received"] += 1
    variants.append(a)
    a = _actual_from_truth(json.loads(json.dumps(truth)))
    a["overdue_dossiers"] = a["overdue_dossiers"][1:] + ["H10.X"]
    variants.append(a)
    a = _actual_from_truth(json.loads(json.dumps(truth)))
    first = next(iter(a["portal"]))
    a["portal"][first]["TrangThaiHoSo"] = 1
    variants.append(a)
    a = _actual_from_truth(json.loads(json.dumps(truth)))
    a["dead_letters"] = {}
    variants.append(a)
    for actual in variants:
        assert not all(r.ok for r in compare(truth, actual))


def test_verify_cli_exit_codes(codec: AvroCodec, tmp_path: Path) -> None:
    from lienthong.cli.main import main

    plan, _ = _plan(codec, 200)
    truth = plan.truth_json()
    (tmp_path / "truth.json").write_text(json.dumps(truth, default=str))
    good = _actual_from_truth(truth)
    (tmp_path / "good.json").write_text(json.dumps(good, default=str))
    assert (
        main(
            [
                "verify",
                "--truth",
                str(tmp_path / "truth.json"),
                "--actual",
                str(tmp_path / "good.json"),
            ]
        )
        == 0
    )
    good["stats"] = {}
    (tmp_path / "bad.json").write_text(json.dumps(good, default=str))
    assert (
        main(
            [
                "verify",
                "--truth",
                str(tmp_path / "truth.json"),
                "--actual",
                str(tmp_path / "bad.json"),
            ]
        )
        == 1
    )


def test_stats_table_rendering() -> None:
    stats = {
        "000.00.07.H10|2.000620|counter|month:2026-01": dict.fromkeys(COUNT_FIELDS, 0)
        | {
            "received": 10,
            "finished_early": 3,
            "finished_on_time": 2,
            "finished_late": 1,
            "in_progress_on_time": 4,
        },
        "000.00.07.H10|2.000620|postal|month:2026-01": dict.fromkeys(COUNT_FIELDS, 0)
        | {"received": 2, "waiting_supplement": 1, "in_progress_overdue": 1},
        "000.00.07.H10|2.000620|*|month:2026-01": dict.fromkeys(COUNT_FIELDS, 99),
        "000.00.13.H10|1.000459|counter|month:2026-02": dict.fromkeys(COUNT_FIELDS, 5),
    }
    table = render_table(stats, "month:2026-01")
    line = next(x for x in table.splitlines() if x.startswith("000.00.07.H10"))
    assert "Sở Công Thương" in line
    assert line.split()[-4:] == ["12", "5", "1", "6"]
    assert "000.00.13.H10" not in table
    assert table.splitlines()[-1].split()[-4:] == ["12", "5", "1", "6"]


def test_live_pacing_uses_rate() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    sent: list[int] = []
    n = produce(iter(range(10)), sent.append, rate=5.0, wall_clock=lambda: clock[0], sleep=sleep)
    assert n == 10 and sent == list(range(10))
    assert abs(clock[0] - 9 / 5.0) < 1e-9


def test_verify_defaults_to_the_run_dir_truth(
    codec: AvroCodec, tmp_path: Path, monkeypatch
) -> None:
    from lienthong.cli.main import main

    monkeypatch.setenv("LIENTHONG_RUN_DIR", str(tmp_path))
    plan, _ = _plan(codec, 100)
    truth = plan.truth_json()
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    (tmp_path / "actual.json").write_text(json.dumps(_actual_from_truth(truth)))
    assert main(["verify", "--actual", str(tmp_path / "actual.json")]) == 0
    (tmp_path / "truth.json").unlink()
    assert main(["verify", "--actual", str(tmp_path / "actual.json")]) == 2


def test_stats_table_defaults_to_the_latest_month() -> None:
    row = dict.fromkeys(COUNT_FIELDS, 0) | {"received": 3}
    stats = {
        "000.00.07.H10|2.000620|counter|day:2026-02-02": row,
        "000.00.07.H10|2.000620|counter|month:2026-01": row,
        "000.00.07.H10|2.000620|counter|month:2026-02": row,
        "000.00.07.H10|2.000620|counter|year:2026": row,
    }
    table = render_table(stats)
    assert table.splitlines()[0] == "period month:2026-02"
    assert table.splitlines()[-1].split()[1] == "3"
