"""Replay a simulated month into a fresh ``lienthong up --clock replay`` and verify it (issue 14).

What an operator does, timed: ``lienthong up --detach --clock replay`` (own run dir, free ports,
its own embedded broker unless ``LIENTHONG_BOOTSTRAP`` names a cluster), ``lienthong simulate
--mode replay --period 2026-01 --seed 7``, then, once the worker's group has consumed everything,
``lienthong verify`` until it passes. Prints records, seconds from the first record sent to
verify passing, and the peak RSS (VmHWM) of the worker, broker and simulator. Targets: the full
month (36,521 dossiers, 383,481 records) verified in < 5 minutes on 2 cores with one worker.

With ``--kill``: SIGKILL the worker after the verified month; the supervisor starts it again;
prints the time until it has caught up (its group's committed offsets at the end of every
input partition) and ``/stats`` answers with the counts it gave before the kill. Target < 60 s.

Run:  python benchmarks/bench_month.py [--period 2026-01] [--seed 7] [--dossiers N] [--kill]
      (``--dossiers 2000`` for a quick slice; taskset -c 0,1 to hold it to two cores)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_replay_year import PeakWatcher

from lienthong.runtime.probe import free_port

# The edge processes `up` always or possibly starts: each gets a free port (shared machine).
PORT_SETTINGS = (
    "WORKER__WEB_PORT",
    "CONNECTORS__GATEWAY__PORT",
    "CONNECTORS__PORTAL__HEALTH_PORT",
    "CONNECTORS__POSTAL__PORT",
    "CONNECTORS__CENTRAL__PORT",
)


def bench_env(work: Path) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "LIENTHONG_RUN_DIR": str(work / "run"),
        "LIENTHONG_TOPIC_PREFIX": f"month{tag}.",
        "LIENTHONG_WORKER__APP_ID": f"lienthong-month-{tag}",
        "LIENTHONG_LOG_LEVEL": "WARNING",
        **{f"LIENTHONG_{name}": str(free_port()) for name in PORT_SETTINGS},
    }
    env.pop("LIENTHONG_STREAMS__CLOCK", None)  # `up --clock replay` decides
    if "LIENTHONG_BOOTSTRAP" not in os.environ:
        env["LIENTHONG_EMBEDDED__PORT"] = str(free_port())
    return env


def lienthong(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lienthong", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status(env: dict[str, str]) -> dict[str, Any]:
    return json.loads(lienthong(env, "status", "--json").stdout)


def pid_of(report: dict[str, Any], prefix: str) -> int | None:
    return next((r["pid"] for r in report["components"] if r["component"].startswith(prefix)), None)


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 1.0) -> float:
    """Seconds until ``check()`` holds; SystemExit naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"bench_month: {what} not reached within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def get_json(url: str) -> Any | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def group_lag(env: dict[str, str], only: str | None = None) -> int | None:
    """Records of the worker's input partitions (its /health assignment, catalogue topics; or
    only the topic named ``only`` without its prefix) its group has not committed yet; None
    while the worker does not answer."""
    from kafka import KafkaConsumer, TopicPartition

    health = get_json(f"http://127.0.0.1:{env['LIENTHONG_WORKER__WEB_PORT']}/health")
    if not health or health.get("status") != "ok":
        return None
    prefix = env["LIENTHONG_TOPIC_PREFIX"]
    tps = [
        TopicPartition(topic, int(partition))
        for topic, partition in (item.rsplit(":", 1) for item in health["assigned_partitions"])
        if topic.startswith(prefix)  # not the changelogs (named after the app id)
        and (only is None or topic == prefix + only)
    ]
    consumer = KafkaConsumer(
        bootstrap_servers=health["bootstrap"],
        group_id=env["LIENTHONG_WORKER__APP_ID"],
        enable_auto_commit=False,
    )
    try:
        ends = consumer.end_offsets(tps)
        return sum(max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in tps)
    finally:
        consumer.close()


def caught_up(env: dict[str, str]) -> bool:
    return group_lag(env) == 0


def stage2_records(env: dict[str, str], health: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Records written to the live counts' topics (stage 1's partials, stage 2's changelog and
    snapshots): stage 2 sends one changelog record per produce request on the embedded broker,
    so its changelog records are what it costs. Ends from a fetch (``high_watermarks``): the
    ListOffsets answer is only a lower bound on Tansu."""
    from kafka import KafkaConsumer, TopicPartition

    from lienthong.runtime.offsets import high_watermarks

    if not health:
        return [("stage 2 records", "worker not answering")]
    prefix, app_id = env["LIENTHONG_TOPIC_PREFIX"], env["LIENTHONG_WORKER__APP_ID"]
    topics = {
        "stats-partials": f"{prefix}stats-partials",
        "stats-totals changelog": f"{app_id}-stats-totals-changelog",
        "live-stats": f"{prefix}live-stats",
    }
    consumer = KafkaConsumer(bootstrap_servers=health["bootstrap"], enable_auto_commit=False)
    rows = []
    try:
        for label, topic in topics.items():
            parts = consumer.partitions_for_topic(topic) or set()
            ends = high_watermarks(consumer, [TopicPartition(topic, p) for p in parts])
            rows.append((f"records {label}", f"{sum(ends.values()):,}"))
    finally:
        consumer.close()
    return rows


def cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--period", default="2026-01", help="a month, YYYY-MM")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dossiers", type=int, default=None, help="a smaller slice")
    parser.add_argument("--kill", action="store_true", help="also measure a worker restart")
    parser.add_argument("--deadline", type=float, default=1800, help="give up after N s")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lienthong-month-"))
    env = bench_env(work)
    truth = work / "truth.json"
    stats_url = f"http://127.0.0.1:{env['LIENTHONG_WORKER__WEB_PORT']}/stats?period=month:"
    stats_url += args.period
    rows: list[tuple[str, str]] = []
    started = time.monotonic()
    up = lienthong(env, "up", "--detach", "--clock", "replay", "--timeout", "300")
    try:
        if up.returncode != 0:
            raise SystemExit(f"bench_month: up failed: {up.stderr.strip() or up.stdout}")
        rows.append(("up --clock replay healthy after", f"{time.monotonic() - started:.1f} s"))
        report = status(env)
        watchers = {
            name: PeakWatcher(pid)
            for name, pid in (
                ("worker", pid_of(report, "worker-1")),
                ("broker", pid_of(report, "broker (embedded")),
            )
            if pid
        }
        cmd = ["simulate", "--mode", "replay", "--period", args.period, "--seed", str(args.seed)]
        cmd += ["--truth", str(truth)]
        if args.dossiers:
            cmd += ["--dossiers", str(args.dossiers)]
        sim = subprocess.Popen(
            [sys.executable, "-m", "lienthong", *cmd], env=env, stdout=subprocess.PIPE, text=True
        )
        watchers["simulator"] = PeakWatcher(sim.pid)
        for watcher in watchers.values():
            watcher.start()
        out, _ = sim.communicate()
        if sim.returncode != 0:
            raise SystemExit(f"bench_month: simulate exited {sim.returncode}")
        sim_done = time.monotonic()
        summary = json.loads(out.strip().splitlines()[-1])
        # simulate's own "seconds" run from just before its producer connects and sends.
        first_sent = sim_done - summary["seconds"]
        verified, check = False, None
        deadline = first_sent + args.deadline
        first_caught_up = None
        # When the tracker's input is consumed (the rest is stage 2 draining the partials).
        tracked = wait_for(
            "the tracker caught up",
            lambda: group_lag(env, "dossier-events") == 0,
            deadline - time.monotonic(),
        )
        tracked += sim_done - first_sent
        while time.monotonic() < deadline and not verified:
            wait_for("the worker caught up", lambda: caught_up(env), deadline - time.monotonic())
            first_caught_up = first_caught_up or time.monotonic()
            check = lienthong(env, "verify", "--truth", str(truth), "--wait", "120")
            verified = check.returncode == 0
        done = time.monotonic()
        records = summary["records"]
        rows += [
            ("dossiers", f"{summary['dossiers']:,}"),
            ("records", f"{records:,}"),
            (
                "simulate (produce)",
                f"{summary['seconds']:.1f} s, {records / summary['seconds']:,.0f} records/s",
            ),
            ("first record sent -> dossier-events consumed", f"{tracked:.1f} s"),
            (
                "first record sent -> worker caught up",
                f"{(first_caught_up or done) - first_sent:.1f} s",
            ),
            (
                "first record sent -> verify passed",
                f"{done - first_sent:.1f} s, {records / (done - first_sent):,.0f} records/s"
                + ("" if verified else " (verify FAILED)"),
            ),
        ]
        if not verified and check is not None:
            print(check.stdout)
        rows += stage2_records(
            env, get_json(f"http://127.0.0.1:{env['LIENTHONG_WORKER__WEB_PORT']}/health")
        )
        for name, watcher in watchers.items():
            rows.append((f"peak RSS {name}", f"{watcher.peak:,.0f} MB"))
        for name in ("worker", "broker"):
            cpu = cpu_seconds(watchers[name].pid) if name in watchers else None
            if cpu is not None:  # the machine is shared: CPU is steadier than wall time
                rows.append((f"CPU {name} (user+sys)", f"{cpu:.1f} s"))
        if args.kill and verified:
            rows += restart(env, stats_url)
    finally:
        lienthong(env, "down", timeout=120)
    width = max(len(label) for label, _ in rows)
    print(f"bench_month: {args.period}, seed {args.seed}, one worker, clock replay")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    if args.keep:
        print(f"  work directory: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if verified else 1


def restart(env: dict[str, str], stats_url: str) -> list[tuple[str, str]]:
    """SIGKILL the worker; the supervisor restarts it; time until it has caught up and /stats
    gives the counts it gave before."""
    before = get_json(stats_url)
    old = pid_of(status(env), "worker-1")
    assert old is not None and before is not None
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()

    def new_pid() -> int | None:
        pid = pid_of(status(env), "worker-1")
        return pid if pid not in (None, old) else None

    wait_for("a restarted worker", lambda: new_pid() is not None, 120, every=0.5)
    watcher = PeakWatcher(new_pid() or 0)
    watcher.start()
    wait_for(
        "the restarted worker caught up with /stats as before",
        lambda: caught_up(env) and get_json(stats_url) == before,
        300,
    )
    return [
        ("SIGKILL worker -> caught up, /stats as before", f"{time.monotonic() - killed:.1f} s"),
        ("peak RSS restarted worker", f"{watcher.peak:,.0f} MB"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
