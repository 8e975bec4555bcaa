"""Replay on a real broker: every planned record lands, in order per dossier, faults as bytes."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_replay_produces_the_planned_records(
    bus_env, bus_settings, catalogue_topics, monkeypatch, tmp_path: Path, capsys
) -> None:
    from lienthong import schemas
    from lienthong.cli.main import main
    from lienthong.simulators.verify import read_topic

    for name, value in bus_env.items():
        monkeypatch.setenv(name, value)
    schemas.set_default_codec(None)
    truth_file = tmp_path / "truth.json"
    try:
        code = main(
            [
                "simulate",
                "--mode",
                "replay",
                "--period",
                "2026-01",
                "--seed",
                "7",
                "--dossiers",
                "150",
                "--all-faults",
                "0.05",
                "--truth",
                str(truth_file),
            ]
        )
        assert code == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        truth = json.loads(truth_file.read_text())
        by_topic: Counter[str] = Counter()
        per_dossier: dict[str, list[int]] = defaultdict(list)
        malformed = 0
        events = 0
        for name in ("dossier-events", "postal-tracking", "documents"):
            for record in read_topic(bus_settings, name, 20.0):
                by_topic[name] += 1
                if name != "dossier-events":
                    continue
                verdict = schemas.decode_or_reason(record.value)
                if isinstance(verdict, schemas.DecodeError):
                    malformed += verdict.error_class in ("NotFramed", "UnknownSchemaId")
                    continue
                events += 1
                per_dossier[record.key.decode()].append(record.partition)
        assert sum(by_topic.values()) == summary["records"] == truth["events"]
        assert malformed == truth["dead_letters"].get("NotFramed", 0) + truth["dead_letters"].get(
            "UnknownSchemaId", 0
        )
        assert malformed > 0
        assert all(len(set(parts)) == 1 for parts in per_dossier.values())  # key = dossier id
        assert len(per_dossier) == 150
    finally:
        schemas.set_default_codec(None)


def test_paced_mode_is_paced_and_ends_now(bus_env, catalogue_topics, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime

    from lienthong.config import load_settings
    from lienthong.schemas import AvroCodec, registry_from_settings
    from lienthong.simulators.verify import read_topic

    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lienthong",
            "simulate",
            "--mode",
            "paced",
            "--live-days",
            "7",
            "--dossiers",
            "40",
            "--rate",
            "150",
        ],
        env={**os.environ, **bus_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads(result.stdout.strip().splitlines()[-1])["records"]
    assert records > 100
    assert elapsed >= records / 150 * 0.9  # paced, not as fast as the broker takes it
    settings = load_settings(environ=bus_env)
    codec = AvroCodec(registry_from_settings(settings))
    got = read_topic(settings, "dossier-events", 20.0)
    assert len(got) > 50
    now = datetime.now(UTC)
    assert all(codec.decode(r.value).envelope.occurred_at <= now for r in got)


@pytest.mark.parametrize(
    "rules",
    [
        {},
        # A short warning lead, and a quarter of a working hour to accept a handoff: the
        # simulated agencies accept within 1-30 minutes, so some are late and escalated.
        {
            "LIENTHONG_STREAMS__WARNING_LEAD_HOURS": "3",
            "LIENTHONG_STREAMS__HANDOFF_ACCEPT_HOURS": "0.25",
        },
    ],
    ids=["default-rules", "short-lead-and-accept"],
)
def test_replay_into_a_worker_verifies_every_alert_kind(
    bus_env, catalogue_topics, start_worker, tmp_path: Path, rules: dict[str, str]
) -> None:
    """A replay-clock worker emits exactly the warnings, overdue notices, apologies (agency,
    new appointment) and escalations the truth predicts, faults included, with the rules the
    worker is configured with (the simulator reads the same settings)."""
    import os
    import re
    import subprocess
    import sys

    env = {**bus_env, "LIENTHONG_STREAMS__CLOCK": "replay", **rules}
    start_worker(env)
    truth_file = tmp_path / "truth.json"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lienthong", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    sim = cli(
        "simulate",
        "--mode",
        "replay",
        "--period",
        "2026-01",
        "--seed",
        "7",
        "--dossiers",
        "300",
        "--all-faults",
        "0.05",
        "--truth",
        str(truth_file),
    )
    assert sim.returncode == 0, sim.stderr[-2000:]
    alerts = json.loads(truth_file.read_text())["alerts"]
    assert alerts["version"] >= 2
    # Enough of each kind that a wrong rule shows: every kind is present in the truth.
    assert len(alerts["warnings"]) > 20
    assert alerts["apologies"] and alerts["overdue_dossiers"] and alerts["overdue_steps"]
    assert alerts["escalations"]  # out-of-order accepts leave handoffs unaccepted
    if rules:
        assert alerts["rules"]["warning_lead_hours"] == 3.0
        assert len(alerts["escalations"]) > 50  # late accepts, not only the faults
    result = cli("verify", "--truth", str(truth_file), "--wait", "120", "--timeout", "5")
    out = result.stdout
    assert result.returncode == 0, out
    assert "MISMATCH" not in out and "not checked" not in out

    def row(figure: str) -> tuple[int, int]:
        m = re.search(rf"^{re.escape(figure)}\s+(\d+)\s+(\d+)\s+ok$", out, re.MULTILINE)
        assert m, f"no ok row {figure!r} in:\n{out}"
        return int(m.group(1)), int(m.group(2))

    assert row("warnings (dossier and step)") == (len(alerts["warnings"]),) * 2
    assert row("apologies") == (len(alerts["apologies"]),) * 2
    assert row("escalations (handoffs not accepted)") == (len(alerts["escalations"]),) * 2
    for figure in (
        "warnings not matching",
        "apologies not matching",
        "apologies with wrong agency/new appointment",
        "escalations not matching",
        "escalations with wrong agencies",
        "overdue dossiers not matching",
        "overdue steps not matching",
    ):
        assert row(figure) == (0, 0)
    assert row("dossier-events partitions")[0] == alerts["rules"]["dossier_partitions"]
