"""`topics apply` / `topics check` against a real broker."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from lienthong.cli.main import main
from lienthong.runtime.topics import TopicAdmin

pytestmark = pytest.mark.integration


def test_apply_creates_every_catalogue_topic_then_is_idempotent(
    bus_settings, bus_env, monkeypatch, capsys
):
    for key, value in bus_env.items():
        monkeypatch.setenv(key, value)
    assert main(["topics", "check"]) == 1
    missing = capsys.readouterr().out
    assert f"{bus_settings.topic('dead-letters')}: missing" in missing

    assert main(["topics", "apply"]) == 0
    created = capsys.readouterr().out
    with TopicAdmin(bus_settings) as admin:
        names = [bus_settings.topic(t.name) for t in admin.catalogue.topics]
        for name in names:
            assert f"created {name} " in created
        present = set(admin.admin.list_topics())
        assert set(names) <= present
        partitions = {t["name"]: len(t["partitions"]) for t in admin.admin.describe_topics(names)}
        for spec in admin.catalogue.topics:
            assert partitions[bus_settings.topic(spec.name)] == spec.partitions

    assert main(["topics", "apply"]) == 0
    assert "no changes: " in capsys.readouterr().out
    assert main(["topics", "check"]) == 0
    assert "ok: " in capsys.readouterr().out


def test_check_reports_a_topic_with_more_partitions_than_declared(bus_settings, kafka_bootstrap):
    with TopicAdmin(bus_settings) as admin:
        spec = admin.catalogue.get("monitoring-alerts")
        name = bus_settings.topic(spec.name)
        raw = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            raw.create_topics([NewTopic(name, spec.partitions + 2, 1)])
        finally:
            raw.close()
        drift = {d.name: d for d in admin.drift()}[name]
    assert drift.too_many_partitions
    assert drift.describe() == [
        f"{name}: partitions {spec.partitions + 2}, declared {spec.partitions} (cannot shrink a topic)"
    ]
