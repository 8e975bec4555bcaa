"""Live simulator in real time against a real broker and a real live-clock worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from lienthong.schemas import AvroCodec, registry_from_settings
from lienthong.schemas.models import VN_TZ, DossierReceived
from lienthong.simulators.verify import read_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_live_session_delivers_dossiers_received_now(
    bus_env, bus_settings, catalogue_topics, start_worker, tmp_path
):
    env = {**bus_env, "LIENTHONG_STREAMS__CLOCK": "live"}
    worker = start_worker(env)
    truth_file = tmp_path / "truth.json"
    started = datetime.now(VN_TZ)
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lienthong",
            "simulate",
            "--mode",
            "live",
            "--rate",
            "40",
            "--warmup-days",
            "0.02",
            "--around-the-clock",  # the test must see receipts whatever the hour
            "--seed",
            "11",
            "--truth-periods",
            "day,month",
            "--truth",
            str(truth_file),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    codec = AvroCodec(registry_from_settings(bus_settings))

    def received_live() -> int:
        """Receipts dated after the session started (the warm-up's are all before its t0)."""
        events = [codec.decode(r.value) for r in read_topic(bus_settings, "dossier-events", 2.0)]
        return sum(isinstance(e, DossierReceived) and e.received_at >= started for e in events)

    # Running until told to stop is proven by dossiers arriving in real time, not by a clock.
    wait_for(lambda: sim.poll() is not None or received_live() >= 10, 120, "live receipts")
    assert sim.poll() is None, "live mode must run until it is stopped"
    sim.send_signal(signal.SIGTERM)
    out, err = sim.communicate(timeout=60)
    assert sim.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["mode"] == "live" and summary["stopped_by"] == "SIGTERM"
    truth = json.loads(truth_file.read_text())
    assert truth["meta"]["mode"] == "live" and truth["events"] == summary["records"]
    t0 = datetime.fromisoformat(summary["t0"])
    assert summary["records"] > summary["warmup_records"] > 0

    # What went on the bus: nothing dated after it was sent, receipts of today after t0.
    events = [codec.decode(r.value) for r in read_topic(bus_settings, "dossier-events", 20.0)]
    assert len(events) == summary["by_topic"]["dossier-events"]
    stopped = datetime.fromisoformat(summary["stopped_at"])
    assert all(e.envelope.occurred_at <= stopped for e in events)
    received_now = [e for e in events if isinstance(e, DossierReceived) and e.received_at >= t0]
    assert len(received_now) >= 10, "new dossiers keep arriving in real time"
    today = received_now[-1].received_at.astimezone(VN_TZ).date()
    assert today in (started.date(), datetime.now(VN_TZ).date())

    # The worker tracked them: today's stats match the truth, the slip knows the dossier.
    day_label = f"day:{today.isoformat()}"
    expected = sum(
        row["received"] for key, row in truth["counts"].items() if key.endswith(f"|{day_label}")
    )
    got: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = worker.get_json(f"/stats?period={day_label}")
        if got["totals"]["received"] >= expected:
            break
        time.sleep(1)
    assert got["totals"]["received"] == expected > 0, (got["totals"], worker.log_tail(10))
    last = received_now[-1]
    slip = worker.get_json(f"/dossiers/slip?id={last.envelope.dossier_id}")
    assert slip["dossier_id"] == last.envelope.dossier_id
    assert datetime.fromisoformat(slip["appointment"]) == last.appointment_at
    assert worker.get_json("/dead-letters/summary")["total"] == 0
    assert read_topic(bus_settings, "dead-letters", 5.0) == []
    assert truth["dead_letters"] == {}

    # The truth written at the stop verifies against the bus (shortly after: see the limits
    # of verify in live mode in docs/simulators.md).
    verify = subprocess.run(
        [sys.executable, "-m", "lienthong", "verify", "--truth", str(truth_file)]
        + ["--wait", "60", "--timeout", "5"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert verify.returncode == 0, verify.stdout
    assert f"{day_label} received" in verify.stdout
    # Alerts are checked too, those the wall clock fires after the stop included.
    assert "warnings not matching" in verify.stdout, verify.stdout
    assert "alerts fall due after the window" in verify.stdout, verify.stdout
