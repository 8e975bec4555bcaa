"""Build one stream worker's Faust app and stages from settings (the composition root).

Why a factory: importing a ``lienthong.streams`` module reads no settings and creates no app,
so tests and tools import them freely, and :func:`bootstrap` builds as many independent
runtimes as asked, one per Settings (tests build two in one process, without a broker). Every
piece of mutable state of the stream stage (tables, topics, the clock, timers, caches, the live
counts, the gap guards, metrics) is an attribute of a stage object held by the
:class:`StreamsRuntime`; the agents, timers and pages are registered on the app here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import faust

from lienthong.config import Settings
from lienthong.domain.procedures import ProcedureCatalogue
from lienthong.runtime.topics import Catalogue
from lienthong.streams.app import StreamsApp
from lienthong.streams.counts import LiveCounts
from lienthong.streams.documents import DocumentsStage
from lienthong.streams.health import HealthStage
from lienthong.streams.monitor import MonitorStage
from lienthong.streams.stats import StatsStage
from lienthong.streams.tracker import TrackerStage

__all__ = ["Stage", "StreamsRuntime", "bootstrap"]


class Stage(Protocol):
    def register(self) -> None:
        """Put this stage's agents, timers, hooks and pages on its app."""


@dataclass(frozen=True)
class StreamsRuntime:
    """One worker's app and its stages; nothing in it is shared with another runtime."""

    streams: StreamsApp
    health: HealthStage
    monitor: MonitorStage
    tracker: TrackerStage
    stats: StatsStage
    documents: DocumentsStage

    @property
    def app(self) -> faust.App:
        return self.streams.app

    @property
    def settings(self) -> Settings:
        return self.streams.settings

    def stages(self) -> tuple[Stage, ...]:
        """In registration order, the order the agent modules registered theirs in before the
        factory (the tracker module imported the stats module first)."""
        return (self.health, self.monitor, self.stats, self.tracker, self.documents)


def bootstrap(
    settings: Settings,
    *,
    catalogue: Catalogue | None = None,
    procedures: ProcedureCatalogue | None = None,
) -> StreamsRuntime:
    """The app for ``settings`` with every stage built and registered on it.

    ``catalogue`` and ``procedures`` default to the configured topic catalogue and the packaged
    procedures (both read-only); a test may pass its own. The app is not started: the caller
    runs it (``faust.Worker``, see :mod:`lienthong.streams.worker`) or inspects it.
    """
    streams = StreamsApp(settings, catalogue)
    health = HealthStage(streams)
    monitor = MonitorStage(streams)
    counts = LiveCounts()  # stage 1 of the live counts: the tracker feeds it, stats flushes it
    stats = StatsStage(streams, counts)
    tracker = TrackerStage(streams, counts, health.metrics, procedures)
    runtime = StreamsRuntime(streams, health, monitor, tracker, stats, DocumentsStage(streams))
    for stage in runtime.stages():
        stage.register()
    guarded = {"tracker": tracker, "documents": runtime.documents, "monitor": monitor}
    for name, guarded_stage in guarded.items():
        health.partition_reports[name] = guarded_stage.gap_guard.partitions_report
        health.guards[guarded_stage.gap_guard.source_topic] = guarded_stage.gap_guard
    return runtime
