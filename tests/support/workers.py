"""Run real Faust worker subprocesses against the test broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from lienthong.runtime import probe
from lienthong.runtime.children import ChildNotReady, spawn_logged, wait_healthy
from tests.support.metrics import scrape, total
from tests.support.waiting import wait_for

# What a worker's agents consume (streams.tracker, .stats, .monitor, .documents); the tables'
# changelogs are assigned too but never committed, so they are not part of "caught up".
SOURCE_TOPICS = ("dossier-events", "stats-partials", "dead-letters", "documents")


class WorkerProcess:
    """One ``python -m lienthong.streams.worker`` process with its own log file."""

    def __init__(self, env: dict[str, str], log_file: Path, web_port: int | None = None) -> None:
        self.web_port = web_port or probe.free_port()
        self.env = {**os.environ, **env, "LIENTHONG_WORKER__WEB_PORT": str(self.web_port)}
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        self.process = spawn_logged(
            [sys.executable, "-m", "lienthong.streams.worker"], self.env, self.log_file
        )
        self.wait_ready(timeout)
        return self

    def get_json(self, path: str, timeout: float = 2.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        try:
            wait_healthy(self.process, self.url, timeout, "worker", self.log_tail, 0.3)
        except ChildNotReady as exc:
            raise AssertionError(str(exc)) from None

    def processed(self) -> float:
        """Events the worker's tracker has processed so far (all kinds)."""
        return total(scrape(self.url)[1], "lienthong_events_processed_total")

    def source_lag(self, names: tuple[str, ...] = SOURCE_TOPICS) -> dict[tuple[str, int], int]:
        """Records not yet committed by the worker's group, per (topic, partition) of ``names``.

        Read from the broker (committed offsets of the group vs end offsets), not from the
        worker's ``lienthong_consumer_lag``: a restarted worker reports a partition it has not
        committed on itself as lagging by everything, though its predecessor committed it.
        """
        from kafka import KafkaConsumer, TopicPartition

        from lienthong.runtime.offsets import high_watermarks

        prefix = self.env.get("LIENTHONG_TOPIC_PREFIX", "")
        group = self.env["LIENTHONG_WORKER__APP_ID"]
        consumer = KafkaConsumer(
            bootstrap_servers=self.env["LIENTHONG_BOOTSTRAP"].split(","),
            group_id=group,
            enable_auto_commit=False,
        )
        try:
            tps = [
                TopicPartition(prefix + name, partition)
                for name in names
                for partition in sorted(consumer.partitions_for_topic(prefix + name) or ())
            ]
            # Fetched high watermarks, not ListOffsets (under-reported by Tansu for batches).
            ends = high_watermarks(consumer, tps)
            return {
                (tp.topic, tp.partition): max(0, ends[tp] - (consumer.committed(tp) or 0))
                for tp in tps
            }
        finally:
            consumer.close()

    def wait_caught_up(
        self, timeout: float = 180.0, names: tuple[str, ...] = SOURCE_TOPICS
    ) -> None:
        """Wait until the worker's group has committed all it was sent (lag 0 twice in a row).

        Why: a right count seen once proves little; seen after the worker has committed its
        whole input, a worker that counts twice has had every chance to overshoot. This
        replaces "sleep a bit more" before the final assertion.
        """
        streak = [0]
        last: dict[tuple[str, int], int] = {}

        def drained() -> bool:
            lag = self.source_lag(names)
            last.clear()
            last.update(lag)
            streak[0] = streak[0] + 1 if lag and not any(lag.values()) else 0
            return streak[0] >= 2

        def tail() -> str:
            lagging = {f"{t}[{p}]": n for (t, p), n in sorted(last.items()) if n}
            return (
                f"lagging partitions: {lagging or 'none'}\n"
                f"what the worker knows of them: {self.partition_states(lagging)}\n"
                f"{self.log_tail()}"
            )

        wait_for(drained, timeout, "the worker to commit all its input", tail, 0.3)

    def partition_states(self, names: dict[str, int]) -> dict[str, Any] | str:
        """The worker's ``/health`` view of the source partitions in ``names`` (a failure's
        context: applied, read and fetch offsets, paused or not)."""
        try:
            report = self.get_json("/health")["source_partitions"]
        except (OSError, ValueError, KeyError) as exc:
            return f"<no /health: {exc!r}>"
        return {
            f"{agent}:{tp}": state
            for agent, partitions in report.items()
            for tp, state in partitions.items()
            if tp in names
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def kill(self) -> None:
        """SIGKILL: the crash case, no clean shutdown, no final commit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
