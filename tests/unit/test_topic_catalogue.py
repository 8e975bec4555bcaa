from pathlib import Path

import pytest

from lienthong.runtime.topics import CatalogueError, TopicDrift, load_catalogue, retention_ms

REPO = Path(__file__).resolve().parents[2]

REQUIRED = {
    "dossier-events",
    "agency-inbox",
    "deadline-alerts",
    "portal-status",
    "live-stats",
    "dead-letters",
}


def test_shipped_catalogue_is_valid_and_covers_the_bus():
    catalogue = load_catalogue(REPO / "deploy" / "topics.toml")
    names = {t.name for t in catalogue.topics}
    assert REQUIRED <= names
    stats = catalogue.get("live-stats")
    assert stats.kafka_configs() == {"cleanup.policy": "compact"}
    assert catalogue.get("dead-letters").kafka_configs()["retention.ms"] == str(30 * 86_400_000)
    assert catalogue.get("dossier-events").kafka_configs()["retention.ms"] == "-1"


@pytest.mark.parametrize(
    ("value", "expected"), [("30d", 2_592_000_000), ("12h", 43_200_000), ("forever", -1)]
)
def test_retention_durations(value, expected):
    assert retention_ms(value) == expected


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "topics.toml"
    path.write_text("version = 1\n" + body)
    return path


def test_error_names_file_topic_and_field(tmp_path):
    path = _write(
        tmp_path,
        '[[topic]]\nname = "x"\npurpose = "p"\npartitions = 0\ncleanup = "delete"\n'
        'retention = "1d"\nproducers = ["a"]\nconsumers = ["b"]\n',
    )
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    assert str(path) in str(err.value)
    assert "topic 'x' field 'partitions'" in str(err.value)


def test_delete_topic_needs_retention(tmp_path):
    path = _write(
        tmp_path,
        '[[topic]]\nname = "x"\npurpose = "p"\npartitions = 1\ncleanup = "delete"\n'
        'producers = ["a"]\nconsumers = ["b"]\n',
    )
    with pytest.raises(CatalogueError, match="needs a retention"):
        load_catalogue(path)


def test_duplicate_names_rejected(tmp_path):
    topic = (
        '[[topic]]\nname = "x"\npurpose = "p"\npartitions = 1\ncleanup = "compact"\n'
        'producers = ["a"]\nconsumers = ["b"]\n'
    )
    with pytest.raises(CatalogueError, match="duplicate topic names: x"):
        load_catalogue(_write(tmp_path, topic + topic))


def test_drift_descriptions():
    assert TopicDrift("a", missing=True, partitions_declared=3).describe() == [
        "a: missing (declared 3 partitions)"
    ]
    shrink = TopicDrift("a", partitions_actual=6, partitions_declared=3)
    assert not shrink.in_sync
    assert "cannot shrink" in shrink.describe()[0]
    configs = TopicDrift(
        "a", partitions_actual=3, partitions_declared=3, config_diffs={"retention.ms": ("1", "2")}
    )
    assert configs.describe() == ["a: retention.ms = '1', declared '2'"]
    assert TopicDrift("a", partitions_actual=3, partitions_declared=3).in_sync


def test_docs_topics_md_is_generated_from_the_catalogue():
    from lienthong.runtime.topics import render_markdown

    expected = render_markdown(load_catalogue(REPO / "deploy" / "topics.toml"))
    actual = (REPO / "docs" / "topics.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/topics.md is stale: run `lienthong topics docs > docs/topics.md`"
    )


def test_example_config_is_valid():
    from lienthong.config import load_settings

    settings = load_settings(REPO / "deploy" / "lienthong.example.toml", environ={})
    assert settings.uses_embedded_broker and settings.embedded.host == "127.0.0.1"
