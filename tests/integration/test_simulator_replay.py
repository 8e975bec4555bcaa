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
