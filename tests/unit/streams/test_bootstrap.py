"""The stream app factory (lienthong.streams.bootstrap): nothing at import, runtimes independent.

No broker: building a Faust app, its topics, tables, agents and pages does not connect.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from lienthong.config import Settings, load_settings
from lienthong.streams.bootstrap import StreamsRuntime, bootstrap

STREAM_MODULES = (
    "app",
    "bootstrap",
    "clock",
    "counts",
    "documents",
    "facts",
    "failures",
    "gaps",
    "health",
    "monitor",
    "portal",
    "stats",
    "timers",
    "tracker",
    "worker",
)


def _settings(tmp_path: Path, app_id: str, port: int) -> Settings:
    return load_settings(
        environ={
            "LIENTHONG_RUN_DIR": str(tmp_path / app_id),
            "LIENTHONG_WORKER__APP_ID": app_id,
            "LIENTHONG_WORKER__WEB_PORT": str(port),
        }
    )


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[StreamsRuntime, StreamsRuntime]:
    tmp = tmp_path_factory.mktemp("runtimes")
    return bootstrap(_settings(tmp, "alpha", 7101)), bootstrap(_settings(tmp, "beta", 7202))


def test_importing_streams_modules_reads_no_settings_and_builds_no_app() -> None:
    """In a fresh interpreter where reading settings or creating an app raises."""
    imports = "\n".join(f"import lienthong.streams.{name}" for name in STREAM_MODULES)
    script = textwrap.dedent(
        """
        import faust
        import lienthong.config

        def refuse(*args, **kwargs):
            raise AssertionError("built at import time")

        lienthong.config.load_settings = refuse
        faust.App.__init__ = refuse
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script + imports + "\nprint('clean')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "clean"


def test_each_runtime_has_its_settings_app_id_and_port(two: tuple[StreamsRuntime, ...]) -> None:
    alpha, beta = two
    assert (alpha.app.conf.id, alpha.app.conf.web_port) == ("alpha", 7101)
    assert (beta.app.conf.id, beta.app.conf.web_port) == ("beta", 7202)
    assert alpha.health.health_report()["app_id"] == "alpha"
    assert beta.health.health_report()["status"] == "starting"  # no rebalance yet


def test_agents_tables_and_pages_are_registered_on_each_app(
    two: tuple[StreamsRuntime, ...],
) -> None:
    agents = {
        "lienthong.streams.documents.verify_documents",
        "lienthong.streams.monitor.monitor_dead_letters",
        "lienthong.streams.stats.sum_partials",
        "lienthong.streams.tracker.track_dossiers",
    }
    tables = {
        "dead-letter-state",
        "document-dossiers",
        "documents-progress",
        "dossiers",
        "stats-totals",
        "tracker-progress",
    }
    for runtime in two:
        assert set(runtime.app.agents) == agents
        assert set(runtime.app.tables) == tables
        changelogs = {t.changelog_topic.get_topic_name() for t in runtime.app.tables.values()}
        assert all(name.startswith(f"{runtime.app.conf.id}-") for name in changelogs)
        # Timers: three tail-gap checks (tracker, monitor, documents), the fetch watch, live
        # tick, stats flush.
        assert len(runtime.app._app_tasks) == 6
        assert set(runtime.health.guards) == {
            runtime.settings.topic(name) for name in ("dossier-events", "dead-letters", "documents")
        }
        assert set(runtime.app.web.views) == {
            "/health",
            "/metrics",
            "/stats",
            "/dossiers/slip",
            "/documents/",
            "/dead-letters/summary",
        }


def _attributes(runtime: StreamsRuntime) -> dict[str, object]:
    """Every attribute of the runtime's app object and stages, by ``stage.attribute``."""
    found: dict[str, object] = {}
    for holder in (runtime.streams, *runtime.stages()):
        for name, value in vars(holder).items():
            found[f"{type(holder).__name__}.{name}"] = value
    return found


def test_two_runtimes_share_no_mutable_object(two: tuple[StreamsRuntime, ...]) -> None:
    alpha, beta = two
    a, b = _attributes(alpha), _attributes(beta)
    assert a.keys() == b.keys()
    immutable = (str, bytes, int, float, bool, type(None), tuple, frozenset)
    shared = [k for k in a if a[k] is b[k] and not isinstance(a[k], immutable)]
    # The packaged procedure catalogue is loaded once per process and read-only (a
    # MappingProxyType of frozen models), so both trackers may hold the same one.
    assert shared == ["TrackerStage.procedures"]
    assert isinstance(alpha.tracker.procedures._by_code, MappingProxyType)
    # Faust objects built per app: tables, topics, the web server.
    for key in ("TrackerStage.dossiers", "StatsStage.stats_table", "MonitorStage.dead_letters"):
        assert a[key] is not b[key] and a[key].app is alpha.app and b[key].app is beta.app


def test_state_of_one_runtime_is_invisible_to_the_other(two: tuple[StreamsRuntime, ...]) -> None:
    alpha, beta = two
    for attribute in ("app", "streams"):
        assert getattr(alpha, attribute) is not getattr(beta, attribute)
    assert alpha.tracker.counts is alpha.stats.counts  # the tracker feeds its own stage 1
    assert alpha.tracker.counts is not beta.tracker.counts
    assert alpha.tracker.metrics is alpha.health.metrics is not beta.health.metrics
    alpha.tracker.partition_timers.rebuilt(3)
    alpha.tracker.clock.observe(3, alpha.tracker.clock.now(3) or _instant())
    alpha.health.rebalances += 1
    assert beta.tracker.partition_timers.built() == []
    assert beta.tracker.clock.now(3) is None or not beta.tracker.clock.replay
    assert beta.health.rebalances == 0
    alpha.health.rebalances -= 1
    # Rebalance hooks are connected to their own app only.
    # (mode keeps them per sender: health's counter and the tracker's rebuild, for each app.)
    mine = set(alpha.app.on_rebalance_complete.iter_receivers(alpha.app))
    theirs = set(beta.app.on_rebalance_complete.iter_receivers(beta.app))
    assert len(mine) == len(theirs) == 2 and mine.isdisjoint(theirs)


def _instant() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 5, 9, tzinfo=UTC)
