"""The topic catalogue (``deploy/topics.toml``) and its reconciliation with a broker.

The catalogue is data so that operators review topic changes like any other change, and so
that ``apply`` (create/raise) and ``check`` (report drift) work the same on the embedded
broker and on a production cluster.

Drift rules: a missing topic is created; fewer partitions than declared are raised (Kafka
cannot shrink a topic, so more partitions than declared is reported, never "fixed"); a
declared config that differs is altered. Brokers that do not report topic configs (the
embedded Tansu broker returns none) get a ``configs unverifiable`` note instead of an
endless alter loop.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lienthong.config import Settings

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class CatalogueError(Exception):
    """The topic catalogue file is invalid; message names the file, topic and field."""


def retention_ms(value: str) -> int:
    """``"30d"`` → milliseconds; ``"forever"`` → -1 (Kafka's unlimited retention)."""
    if value == "forever":
        return -1
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"expected a duration like 30d, 12h, 15m or 'forever', got {value!r}")
    return int(match["n"]) * _UNIT_MS[match["unit"]]


class TopicSpec(BaseModel):
    """One topic of the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    purpose: str = Field(min_length=1)
    key: str = "dossier id"
    partitions: int = Field(ge=1, le=10_000)
    cleanup: Literal["delete", "compact"] = "delete"
    retention: str | None = None
    producers: list[str] = Field(min_length=1)
    consumers: list[str] = Field(min_length=1)
    configs: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value):
            raise ValueError("topic names use letters, digits, '.', '_' and '-' only")
        return value

    @model_validator(mode="after")
    def _retention_fits_cleanup(self) -> TopicSpec:
        if self.cleanup == "delete":
            if self.retention is None:
                raise ValueError("cleanup = 'delete' needs a retention (e.g. '30d' or 'forever')")
            retention_ms(self.retention)
        elif self.retention is not None:
            raise ValueError("cleanup = 'compact' topics keep the latest value; drop retention")
        return self

    def kafka_configs(self) -> dict[str, str]:
        """The topic-level Kafka configs this spec declares."""
        configs = {"cleanup.policy": self.cleanup}
        if self.retention is not None:
            configs["retention.ms"] = str(retention_ms(self.retention))
        configs.update(self.configs)
        return configs


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    topic: list[TopicSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Catalogue:
        names = [t.name for t in self.topic]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate topic names: {', '.join(duplicates)}")
        return self

    @property
    def topics(self) -> list[TopicSpec]:
        return list(self.topic)

    def get(self, name: str) -> TopicSpec:
        for spec in self.topic:
            if spec.name == name:
                return spec
        raise KeyError(name)


def render_markdown(catalogue: Catalogue, source: str = "deploy/topics.toml") -> str:
    """docs/topics.md, generated so the documentation cannot drift from the catalogue."""
    lines = [
        "# Topic catalogue",
        "",
        f"Generated from `{source}` (version {catalogue.version}) by `lienthong topics docs`;",
        "edit the catalogue, not this file. Names get the configured `topic_prefix`.",
        "",
        "| topic | key | partitions | retention | producers | consumers |",
        "|---|---|---|---|---|---|",
    ]
    for spec in catalogue.topics:
        keep = f"{spec.retention} (delete)" if spec.cleanup == "delete" else "compacted"
        lines.append(
            f"| `{spec.name}` | {spec.key} | {spec.partitions} | {keep} | "
            f"{', '.join(spec.producers)} | {', '.join(spec.consumers)} |"
        )
    lines.append("")
    for spec in catalogue.topics:
        lines += [f"## `{spec.name}`", "", spec.purpose, ""]
    return "\n".join(lines)


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: topic catalogue not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Catalogue.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "topic" and isinstance(loc[1], int):
            topics = raw.get("topic", [])
            name = topics[loc[1]].get("name", f"#{loc[1] + 1}") if loc[1] < len(topics) else "?"
            where = f"topic {name!r}" + (
                f" field {'.'.join(map(str, loc[2:]))!r}" if loc[2:] else ""
            )
        else:
            where = "field " + ".".join(map(str, loc)) if loc else "catalogue"
        raise CatalogueError(f"{path}: {where}: {err['msg']}") from None


# -- reconciliation ---------------------------------------------------------------------


@dataclass
class TopicDrift:
    """What differs between one declared topic and the broker."""

    name: str
    missing: bool = False
    partitions_actual: int | None = None
    partitions_declared: int = 0
    config_diffs: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    configs_unverifiable: bool = False

    @property
    def too_few_partitions(self) -> bool:
        return (
            self.partitions_actual is not None and self.partitions_actual < self.partitions_declared
        )

    @property
    def too_many_partitions(self) -> bool:
        return (
            self.partitions_actual is not None and self.partitions_actual > self.partitions_declared
        )

    @property
    def in_sync(self) -> bool:
        return not (
            self.missing or self.too_few_partitions or self.too_many_partitions or self.config_diffs
        )

    def describe(self) -> list[str]:
        if self.missing:
            return [f"{self.name}: missing (declared {self.partitions_declared} partitions)"]
        lines = []
        if self.too_few_partitions or self.too_many_partitions:
            lines.append(
                f"{self.name}: partitions {self.partitions_actual}, declared "
                f"{self.partitions_declared}"
                + (" (cannot shrink a topic)" if self.too_many_partitions else "")
            )
        for key, (actual, declared) in sorted(self.config_diffs.items()):
            lines.append(f"{self.name}: {key} = {actual!r}, declared {declared!r}")
        return lines


class TopicAdmin:
    """kafka-python admin operations against the configured bootstrap (embedded or cluster)."""

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None) -> None:
        from kafka import KafkaAdminClient

        from lienthong.connectors.kafka import kafka_python_config

        self.settings = settings
        self.catalogue = catalogue or load_catalogue(settings.topics_file)
        self.admin = KafkaAdminClient(request_timeout_ms=15_000, **kafka_python_config(settings))

    def close(self) -> None:
        self.admin.close()

    def __enter__(self) -> TopicAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _broker_state(self, names: list[str]) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
        from kafka.admin import ConfigResource, ConfigResourceType

        existing = set(self.admin.list_topics())
        present = [n for n in names if n in existing]
        partitions: dict[str, int] = {}
        configs: dict[str, dict[str, str]] = {}
        if present:
            for topic in self.admin.describe_topics(present):
                partitions[topic["name"]] = len(topic["partitions"])
            resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
            described = self.admin.describe_configs(resources, config_filter="all")
            configs = _configs_by_topic(described)
        return partitions, configs

    def drift(self) -> list[TopicDrift]:
        specs = self.catalogue.topics
        names = [self.settings.topic(s.name) for s in specs]
        partitions, configs = self._broker_state(names)
        result = []
        for spec, name in zip(specs, names, strict=True):
            drift = TopicDrift(name=name, partitions_declared=spec.partitions)
            if name not in partitions:
                drift.missing = True
            else:
                drift.partitions_actual = partitions[name]
                actual = configs.get(name, {})
                if not actual:
                    drift.configs_unverifiable = True
                else:
                    for key, declared in spec.kafka_configs().items():
                        if actual.get(key) != declared:
                            drift.config_diffs[key] = (actual.get(key), declared)
            result.append(drift)
        return result

    def apply(self) -> list[str]:
        """Create/raise topics to match the catalogue; returns one line per change made."""
        from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        changes: list[str] = []
        specs = {self.settings.topic(s.name): s for s in self.catalogue.topics}
        rf = self.settings.kafka.replication_factor
        for drift in self.drift():
            spec = specs[drift.name]
            if drift.missing:
                try:
                    self.admin.create_topics(
                        [
                            NewTopic(
                                drift.name, spec.partitions, rf, topic_configs=spec.kafka_configs()
                            )
                        ]
                    )
                    changes.append(
                        f"created {drift.name} ({spec.partitions} partitions, {spec.cleanup}"
                        + (f", retention {spec.retention}" if spec.retention else "")
                        + ")"
                    )
                except TopicAlreadyExistsError:
                    pass  # created concurrently by another process: nothing to do
                continue
            if drift.too_few_partitions:
                self.admin.create_partitions({drift.name: NewPartitions(spec.partitions)})
                changes.append(
                    f"raised {drift.name} partitions {drift.partitions_actual} -> {spec.partitions}"
                )
            if drift.config_diffs:
                wanted = {k: declared for k, (_actual, declared) in drift.config_diffs.items()}
                self.admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, drift.name, configs=wanted)]
                )
                for key, (actual, declared) in sorted(drift.config_diffs.items()):
                    changes.append(f"set {drift.name} {key}: {actual!r} -> {declared!r}")
        return changes


def _configs_by_topic(described: Any) -> dict[str, dict[str, str]]:
    """Normalise kafka-python's describe_configs answer (its shape varies across versions)."""
    result: dict[str, dict[str, str]] = {}
    if isinstance(described, dict):
        for name, entries in (described.get("topic") or {}).items():
            result[name] = {
                k: str(v) if v is not None else "" for k, v in _entries(entries).items()
            }
        return result
    for response in described or []:
        for resource in getattr(response, "resources", []):
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name, entries = resource[3], resource[4]
            result[name] = {e[0]: e[1] for e in entries}
    return result


def _entries(entries: Any) -> dict[str, Any]:
    if isinstance(entries, dict):
        return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in entries.items()}
    return {}
