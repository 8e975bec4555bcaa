"""Replay one province-year through one worker and verify it (issue 6 benchmark).

Starts (unless ``LIENTHONG_BOOTSTRAP`` points at a cluster) an embedded broker, creates the
catalogue topics under a fresh prefix, starts one worker in replay clock, runs
``lienthong simulate --mode replay`` and then ``lienthong verify``, and prints records/s, wall
time, peak memory (VmHWM) per process and the verification result. Target (issue 6): the full
year (~430,000 dossiers) in under 15 minutes on 2 cores with one worker.

Run:  python benchmarks/bench_replay_year.py [--period YEAR] [--dossiers N] [--seed 7]
      (taskset -c 0,1 to hold it to two cores)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakWatcher(threading.Thread):
    """Samples VmHWM of a process until it exits (the kernel keeps the high-water mark)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            value = peak_rss_mb(self.pid)
            if value is None:
                return
            self.peak = max(self.peak, value)
            time.sleep(0.5)


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if json.loads(r.read()).get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("worker not healthy in time")


def main() -> int:
    parser = argparse.ArgumentParser()
    # The last complete year: events after today would be dead-lettered as from the future.
    parser.add_argument("--period", default=str(time.localtime().tm_year - 1))
    parser.add_argument("--dossiers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--faults", type=float, default=0.0, help="--all-faults rate")
    args = parser.parse_args()

    from lienthong.config import load_settings
    from lienthong.runtime.broker import EmbeddedBroker
    from lienthong.runtime.probe import free_port
    from lienthong.runtime.topics import TopicAdmin

    work = Path(tempfile.mkdtemp(prefix="lienthong-bench-"))
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    env = {
        "LIENTHONG_RUN_DIR": str(work / "run"),
        "LIENTHONG_TOPIC_PREFIX": prefix,
        "LIENTHONG_WORKER__APP_ID": f"lienthong-{prefix.rstrip('.')}",
        "LIENTHONG_STREAMS__CLOCK": "replay",
        "LIENTHONG_LOG_LEVEL": "WARNING",
    }
    broker = None
    broker_peak = None
    if "LIENTHONG_BOOTSTRAP" not in os.environ:
        env["LIENTHONG_EMBEDDED__PORT"] = str(free_port())
        settings = load_settings(environ={**os.environ, **env})
        broker = EmbeddedBroker(settings)
        broker_peak = PeakWatcher(broker.start().pid)
        broker_peak.start()
    settings = load_settings(environ={**os.environ, **env})
    full_env = {**os.environ, **env}
    with TopicAdmin(settings) as admin:
        admin.apply()
    port = free_port()
    log = (work / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "lienthong.streams.worker"],
        env={**full_env, "LIENTHONG_WORKER__WEB_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_health(f"http://127.0.0.1:{port}/health", worker)
        worker_peak = PeakWatcher(worker.pid)
        worker_peak.start()
        truth = work / "truth.json"
        cmd = [
            sys.executable,
            "-m",
            "lienthong",
            "simulate",
            "--mode",
            "replay",
            "--period",
            args.period,
            "--seed",
            str(args.seed),
            "--truth",
            str(truth),
        ]
        if args.dossiers:
            cmd += ["--dossiers", str(args.dossiers)]
        if args.faults:
            cmd += ["--all-faults", str(args.faults)]
        started = time.monotonic()
        sim = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, text=True)
        sim_peak = PeakWatcher(sim.pid)
        sim_peak.start()
        out, _ = sim.communicate()
        produced = time.monotonic() - started
        summary = json.loads(out.strip().splitlines()[-1])
        verify = subprocess.run(
            [
                sys.executable,
                "-m",
                "lienthong",
                "verify",
                "--truth",
                str(truth),
                "--wait",
                "1800",
                "--timeout",
                "10",
            ],
            env=full_env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        print(verify.stdout)
        print(
            json.dumps(
                {
                    "dossiers": summary["dossiers"],
                    "records": summary["records"],
                    "produce_seconds": round(produced, 1),
                    "produce_records_per_s": round(summary["records"] / produced, 1),
                    "wall_seconds_to_verified": round(wall, 1),
                    "end_to_end_records_per_s": round(summary["records"] / wall, 1),
                    "peak_rss_mb": {
                        "simulator": round(sim_peak.peak, 1),
                        "worker": round(worker_peak.peak, 1),
                        **({"broker": round(broker_peak.peak, 1)} if broker_peak else {}),
                    },
                    # A province-year is ~430,000 dossiers; at this rate it would take:
                    "projected_full_year_minutes": round(
                        430_000 / max(summary["dossiers"], 1) * wall / 60, 1
                    ),
                    "verified": verify.returncode == 0,
                },
                indent=1,
            )
        )
        return verify.returncode
    finally:
        worker.terminate()
        worker.wait(30)
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
