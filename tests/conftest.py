"""Session-wide fixtures: a real broker, isolated topic names, worker subprocesses.

Every integration test gets its own topic prefix and consumer group (Faust app id), so tests
never see each other's records even on a shared cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import scheduling
from tests.support.broker import NoBroker, resolve_broker
from tests.support.workers import WorkerProcess

_tansu_session = False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Kafka-compatible broker for the whole session."""
    run_dir = tmp_path_factory.mktemp("broker")
    try:
        with resolve_broker(run_dir) as (bootstrap, how):
            global _tansu_session
            _tansu_session = how.startswith("embedded")
            print(f"\n[lienthong tests] broker {bootstrap} ({how})")
            yield bootstrap
    except NoBroker as exc:
        message = f"no Kafka-compatible broker for integration tests: {exc}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix: catalogue topic ``dead-letters`` becomes ``<prefix>dead-letters``."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def unique_topic() -> Callable[[str], str]:
    """Make a unique topic name from a readable base name."""

    def make(base: str) -> str:
        return f"{base}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def bus_env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a bus process isolated to this test (own topics and group id)."""
    return {
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_TOPIC_PREFIX": topic_prefix,
        "LIENTHONG_WORKER__APP_ID": f"lienthong-{topic_prefix.rstrip('.')}",
        "LIENTHONG_WORKER__SESSION_TIMEOUT_S": "6",
        "LIENTHONG_RUN_DIR": str(tmp_path / "run"),
        "LIENTHONG_LOG_LEVEL": "INFO",
        # The session broker is reached through LIENTHONG_BOOTSTRAP even when it is the
        # embedded Tansu, so say explicitly what `up` would infer for the embedded broker.
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": "true" if _tansu_session else "false",
    }


@pytest.fixture
def bus_settings(bus_env: dict[str, str]):
    from lienthong.config import load_settings

    return load_settings(environ=bus_env)


@pytest.fixture
def catalogue_topics(bus_settings) -> dict[str, str]:
    """Create every catalogue topic under this test's prefix; returns name -> full name."""
    from lienthong.runtime.topics import TopicAdmin

    with TopicAdmin(bus_settings) as admin:
        admin.apply()
        return {spec.name: bus_settings.topic(spec.name) for spec in admin.catalogue.topics}


@pytest.fixture
def start_worker(bus_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker subprocesses; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, timeout: float = 90.0) -> WorkerProcess:
        index = len(started) + 1
        worker = WorkerProcess({**bus_env, **(env or {})}, tmp_path / f"worker-{index}.log")
        started.append(worker)
        return worker.start(timeout)

    yield start
    # SIGKILL, not a graceful stop: the test is over and has its own topics and group, so
    # nothing reads what a clean shutdown would commit; Faust's stop took 10-15 s per worker.
    for worker in started:
        worker.kill()


# Minutes of CPU-bound simulation: started first in a parallel run, so that none of them is
# left for the end while the other workers idle (one took 4.5 min on a loaded 2-core machine).
RUN_FIRST = ("tests/unit/simulators/",)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order and group the tests for pytest-xdist (``make test``: ``-n 4 --dist loadgroup``).

    A test using a module- or class-scoped fixture of its own module is put in one xdist group
    with the other users of that fixture, so the fixture is built once, not once per worker
    (before this, a 40-second simulation fixture was built on all four workers). The groups
    reach xdist's scheduler through :mod:`tests.support.scheduling`.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        module = item.nodeid.split("::")[0]
        shared = sorted(
            f"{module}::{name}"
            for name, defs in info.name2fixturedefs.items()
            if defs and defs[-1].scope in ("module", "class") and defs[-1].baseid == module
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
    items.sort(key=lambda item: not item.nodeid.startswith(RUN_FIRST))
    scheduling.write_groups(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller: tell each xdist worker where to write the groups."""
    node.workerinput[scheduling.GROUPS_KEY] = str(scheduling.groups_path())


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Controller: ``--dist loadgroup`` that honours xdist_group marks under pytest 9."""
    return (
        scheduling.make_scheduler(config, log) if config.getvalue("dist") == "loadgroup" else None
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        scheduling.groups_path().unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly how many broker-backed tests ran, so a green run cannot hide skipped ones."""
    ran: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            path = getattr(report, "nodeid", "")
            kind = next((k for k in ("integration", "e2e") if f"tests/{k}/" in path), None)
            if kind is None or getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "skipped":
                skipped[kind] = skipped.get(kind, 0) + 1
            elif getattr(report, "when", "call") == "call":
                ran[kind] = ran.get(kind, 0) + 1
    for kind in ("integration", "e2e"):
        terminalreporter.write_line(
            f"lienthong {kind} tests against a real broker: {ran.get(kind, 0)} ran, "
            f"{skipped.get(kind, 0)} skipped"
        )
