"""The component catalogue (``deploy/components.toml``): what a deployment runs, and its rights.

Why data: the Compose file, the systemd units, the Kubernetes Deployments and the Strimzi
ACLs must agree on component names, ports and which topics each may touch. Writing that once
and deriving every file from it (:mod:`lienthong.deploy.render`) keeps them from drifting;
a unit test checks the catalogue against the code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lienthong.runtime.topics import Catalogue, CatalogueError, load_catalogue

DEFAULT_FILE = Path(__file__).resolve().parent / "components.toml"
TOPICS_FILE = Path(__file__).resolve().parent / "topics.toml"


class SecretRef(BaseModel):
    """A secret of an outside system the operator provides; rendered files only name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(pattern=r"^LIENTHONG_[A-Z0-9_]+$")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    file: bool = False


class Component(BaseModel):
    """One deployable process (see the header of components.toml for the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Literal["worker", "connector", "registry", "probe", "console"]
    command: list[str] = Field(min_length=1)
    port: int = Field(ge=1024, le=65535)
    port_setting: str
    host_setting: str
    health_path: str = "/health"
    # "tcp": no page answers without a credential (the console), so probes only connect.
    probe: Literal["http", "tcp"] = "http"
    metrics_path: str = "/metrics"
    metrics_job: str | None = None
    replicas: int = Field(default=1, ge=1, le=64)
    local_replicas: int = Field(default=1, ge=1, le=16)
    group: str | None = None
    produces: list[str] = Field(default_factory=list)
    consumes: list[str] = Field(default_factory=list)
    reads: list[str] = Field(default_factory=list)
    internal_prefix: str | None = None
    kafka: bool = True
    monitors: bool = False  # describes every topic and group (the broker probe's lag)
    exposed: bool = False
    documents: bool = False
    cpu: str
    memory: str
    memory_limit: str
    secret: list[SecretRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _group_fits_consumes(self) -> Component:
        if self.consumes and self.group is None:
            raise ValueError("a component that consumes topics needs its consumer group")
        if not self.kafka and (self.produces or self.consumes or self.reads or self.group):
            raise ValueError("kafka = false, yet topics or a group are listed")
        return self

    @property
    def topics(self) -> set[str]:
        """Every catalogue topic the component touches."""
        return {*self.produces, *self.consumes, *self.reads}


class Components(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    demo_only: list[str] = Field(default_factory=list)
    component: list[Component] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Components:
        names = [c.name for c in self.component]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"component names must be unique: {', '.join(dupes)}")
        return self

    def get(self, name: str) -> Component:
        for component in self.component:
            if component.name == name:
                return component
        raise KeyError(name)


def check_topics(components: Components, topics: Catalogue) -> None:
    """Every topic a component names must be in the topic catalogue."""
    known = {t.name for t in topics.topics}
    for component in components.component:
        unknown = sorted(component.topics - known)
        if unknown:
            raise CatalogueError(
                f"components: {component.name} names topics missing from the topic catalogue: "
                + ", ".join(unknown)
            )


def load_components(path: Path = DEFAULT_FILE) -> Components:
    """Read and validate the component catalogue; errors name the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"components: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"components: {path} is not valid TOML: {exc}") from exc
    try:
        return Components.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CatalogueError(f"components: {path}: {where}: {first['msg']}") from exc


def load_both(
    components_file: Path = DEFAULT_FILE, topics_file: Path = TOPICS_FILE
) -> tuple[Components, Catalogue]:
    """The component and topic catalogues, checked against each other."""
    components = load_components(components_file)
    topics = load_catalogue(topics_file)
    check_topics(components, topics)
    return components, topics
