"""deploy/components.toml against the code: names, commands, ports, groups and topics.

The rendered deployments derive everything from the catalogue, so a catalogue that drifts
from the code (a renamed component, a new topic a connector writes) would ship wrong ACLs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lienthong.config import Settings, load_settings
from lienthong.deploy.catalogue import (
    DEFAULT_FILE,
    TOPICS_FILE,
    Component,
    check_topics,
    load_both,
    load_components,
)
from lienthong.runtime.supervisor import component_specs
from lienthong.runtime.topics import CatalogueError, load_catalogue

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "prometheus.yml"

# Every optional edge configured, and the demo on: the supervisor then starts all it can.
EVERYTHING = {
    "LIENTHONG_DEMO__ENABLED": "true",
    "LIENTHONG_WORKER__COUNT": "2",
    "LIENTHONG_CONNECTORS__PORTAL__URL": "https://portal.example",
    "LIENTHONG_CONNECTORS__POSTAL__URL": "https://post.example",
    "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__BCA": "https://central.example",
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Component]:
    components, _ = load_both()
    return {c.name: c for c in components.component}


def _setting(settings: Settings, dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        node = getattr(node, part)  # AttributeError: the catalogue names a missing setting
    return node


def _normalised(command: list[str]) -> list[str]:
    """The supervisor's ``python -m lienthong ...`` as an operator types it."""
    if command[:3] == [sys.executable, "-m", "lienthong"]:
        return ["lienthong", *command[3:]]
    if command[:1] == [sys.executable]:
        return ["python", *command[1:]]
    return command


def test_every_supervisor_component_is_catalogued_or_demo_only() -> None:
    components = load_components()
    # The fakes start only where no real system is configured: look at both set-ups.
    specs = component_specs(load_settings(environ=EVERYTHING))
    specs += component_specs(load_settings(environ={"LIENTHONG_DEMO__ENABLED": "true"}))
    names = {("worker" if s.kind == "worker" else s.name) for s in specs}
    assert set(components.demo_only) <= names
    assert names - set(components.demo_only) == {c.name for c in components.component}


def test_commands_ports_and_health_paths_are_the_supervisors(
    catalogue: dict[str, Component],
) -> None:
    specs = component_specs(load_settings(environ=EVERYTHING))
    checked = set()
    for spec in specs:
        name = "worker" if spec.kind == "worker" else spec.name
        if name not in catalogue:
            continue
        entry = catalogue[name]
        command = _normalised(spec.command)
        assert command[: len(entry.command)] == entry.command, spec.name
        assert spec.health_path == (None if entry.probe == "tcp" else entry.health_path), spec.name
        if spec.name != "worker-2":  # worker N listens on web_port + N - 1
            assert spec.port == entry.port, spec.name
        checked.add(name)
    assert checked == set(catalogue)


def test_port_and_host_settings_exist_with_the_catalogued_defaults(
    catalogue: dict[str, Component],
) -> None:
    defaults = Settings()
    for entry in catalogue.values():
        assert _setting(defaults, entry.port_setting) == entry.port, entry.name
        assert _setting(defaults, entry.host_setting) == "127.0.0.1", entry.name


def test_consumer_groups_are_the_code_defaults(catalogue: dict[str, Component]) -> None:
    from lienthong.connectors.portal.connector import default_group

    defaults = Settings()
    assert catalogue["worker"].group == defaults.worker.app_id
    assert catalogue["portal-connector"].group == default_group(defaults)
    assert catalogue["postal-connector"].group == defaults.connectors.postal.group_id
    assert catalogue["central-adapter"].group == defaults.connectors.central.group_id


def test_worker_consumes_exactly_its_agents_topics_and_owns_its_changelogs(
    catalogue: dict[str, Component],
) -> None:
    from lienthong.streams.bootstrap import bootstrap

    app = bootstrap(load_settings()).app  # what the worker process runs

    worker = catalogue["worker"]
    sources = {agent.channel.get_topic_name() for agent in app.agents.values()}
    assert sources == set(worker.consumes)
    changelogs = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    assert changelogs and all(t.startswith(worker.internal_prefix or "?") for t in changelogs)
    assert worker.internal_prefix == f"{Settings().worker.app_id}-"


def test_connectors_topics_match_the_modules_constants(catalogue: dict[str, Component]) -> None:
    from lienthong.connectors import central
    from lienthong.connectors.gateway import idempotency
    from lienthong.connectors.gateway.openapi import accepted_event_types
    from lienthong.connectors.portal import connector as portal
    from lienthong.schemas.models import (
        MODELS_BY_EVENT_TYPE,
        LiveStatsSnapshot,
        PortalStatusRecord,
        PostalOrderRequested,
        PostalTracking,
    )

    gateway = catalogue["gateway"]
    accepted = {MODELS_BY_EVENT_TYPE[t].TOPIC for t in accepted_event_types()}
    assert set(gateway.produces) == accepted | {idempotency.TOPIC}
    assert gateway.reads == [idempotency.TOPIC]

    portal_entry = catalogue["portal-connector"]
    assert set(portal_entry.consumes) == {PortalStatusRecord.TOPIC, LiveStatsSnapshot.TOPIC}
    assert {portal.PARKED_TOPIC, portal.ALERTS_TOPIC, "dead-letters"} == set(portal_entry.produces)

    postal = catalogue["postal-connector"]
    assert postal.consumes == [PostalOrderRequested.TOPIC]
    assert PostalTracking.TOPIC in postal.produces

    adapter = catalogue["central-adapter"]
    assert set(adapter.produces) == {
        central.STATE_TOPIC,
        central.ALERTS_TOPIC,
        central.DOSSIER_EVENTS,
    }
    assert adapter.consumes == [central.DOSSIER_EVENTS]
    assert adapter.reads == [central.STATE_TOPIC]


def test_every_named_topic_is_in_topics_toml() -> None:
    components, topics = load_both(DEFAULT_FILE, TOPICS_FILE)
    known = {t.name for t in topics.topics}
    for component in components.component:
        assert component.topics <= known, component.name


def test_an_unknown_topic_is_refused_with_its_component(tmp_path: Path) -> None:
    text = DEFAULT_FILE.read_text().replace('"postal-orders"]', '"postal-order"]', 1)
    assert text != DEFAULT_FILE.read_text()
    path = tmp_path / "components.toml"
    path.write_text(text)
    with pytest.raises(CatalogueError, match="postal-connector names topics missing.*postal-order"):
        check_topics(load_components(path), load_catalogue(TOPICS_FILE))


def test_a_consumer_without_group_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_FILE.read_text().replace(
        'group = "lienthong-postal-connector"    # connectors.postal.group_id\n', ""
    )
    path = tmp_path / "components.toml"
    path.write_text(text)
    with pytest.raises(CatalogueError, match="needs its consumer group"):
        load_components(path)


def test_metrics_jobs_match_the_prometheus_scrape_config(catalogue: dict[str, Component]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    by_job = {c.metrics_job: c for c in catalogue.values() if c.metrics_job}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(by_job)
    for name, job in jobs.items():
        entry = by_job[name]
        assert job["metrics_path"] == entry.metrics_path
        ports = {int(t.rsplit(":", 1)[1]) for s in job["static_configs"] for t in s["targets"]}
        assert ports == {entry.port}, name
