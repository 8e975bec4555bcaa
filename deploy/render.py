"""Render production deployment files from the component and topic catalogues.

``lienthong deploy render --target compose|systemd|k8s --out DIR`` writes what this module
returns. Why generated: the broker users and ACLs, the topic resources, the ports and the
probes must match ``deploy/components.toml`` and ``deploy/topics.toml`` exactly; files a person
keeps in step by hand drift (a test re-renders the committed copies and compares).

Pure functions from catalogues to ``{relative path: text}``; no Docker, Kubernetes or Kafka is
touched. Secrets are never rendered: files name secrets, ``lienthong deploy secrets`` (see
:mod:`lienthong.deploy.secrets`) or Strimzi's user operator generate them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from lienthong.deploy.catalogue import Component, Components
from lienthong.runtime.topics import Catalogue, TopicSpec

Target = Literal["compose", "systemd", "k8s"]
TARGETS: tuple[Target, ...] = ("compose", "systemd", "k8s")

# Apache Kafka of every target; Strimzi 1.2 supports 4.2.x and 4.3.x (4.3.1 its default).
KAFKA_VERSION = "4.3.1"
KAFKA_METADATA_VERSION = "4.3-IV0"
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
BUS_IMAGE = "lienthong:0.1.0"
ADMIN_USER = "admin"  # broker super user: formats storage, sets ACLs, applies topics
# The broker's own login to its KRaft controller (SASL PLAIN on the loopback controller
# listener: SCRAM cannot serve a controller listener, its credentials live in the metadata).
CONTROLLER_USER = "controller"
SASL_MECHANISM = "SCRAM-SHA-512"
CLIENT_PORT = 9093  # SASL_SSL listener
CONTROLLER_PORT = 9094  # KRaft controller, loopback only
NAMESPACE = "lienthong"
CLUSTER = "lienthong"  # Strimzi Kafka name: bootstrap service lienthong-kafka-bootstrap
PART_OF = "app.kubernetes.io/part-of"
JOB_LABEL = "lienthong.vn/metrics-job"

# Readiness on the /health body, not only its status code: a worker answers 200 with
# {"status": "starting"} until it has joined its group and restored its tables.
HEALTH_PROBE = (
    "import json,sys,urllib.request;"
    "sys.exit(json.load(urllib.request.urlopen(sys.argv[1],timeout=3)).get('status')!='ok')"
)
# For a component whose every page needs a credential: listening is all a probe may learn.
TCP_PROBE = "import socket,sys;socket.create_connection(('127.0.0.1',int(sys.argv[1])),3)"


def header(target: Target, comment: str = "#") -> str:
    """First line of every rendered file: where it comes from, so nobody edits it."""
    return (
        f"{comment} Rendered by `lienthong deploy render --target {target}` from "
        f"deploy/components.toml and deploy/topics.toml. Do not edit; re-render.\n"
    )


def env_name(setting: str) -> str:
    """``connectors.gateway.host`` -> ``LIENTHONG_CONNECTORS__GATEWAY__HOST``."""
    return "LIENTHONG_" + "__".join(part.upper() for part in setting.split("."))


def password_secret(user: str) -> str:
    """Name of the generated secret holding a broker user's SCRAM password."""
    return f"kafka-password-{user}"


def kafka_users(components: Components) -> list[str]:
    """Broker users: the admin, then one per component that talks to Kafka."""
    return [ADMIN_USER, *(c.name for c in components.component if c.kafka)]


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full: anchors and aliases confuse reviewers and tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(documents: list[dict[str, Any]], target: Target) -> str:
    body = yaml.dump_all(
        documents,
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return header(target) + body


# -- ACLs: one derivation for kafka-acls.sh (compose, systemd) and KafkaUser (k8s) ---------


@dataclass(frozen=True)
class Acl:
    """An allow rule: ``operations`` on one resource (literal name or name prefix)."""

    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefix"]
    operations: tuple[str, ...]


def acls_for(component: Component) -> list[Acl]:
    """Least privilege from the catalogue: write what it produces, read what it consumes.

    Names are the catalogue's; a deployment with a ``topic_prefix`` renders its own copy.
    """
    rules: list[Acl] = []
    read = {*component.consumes, *component.reads}
    for name in sorted(set(component.produces) | read):
        ops = (
            *(["Read"] if name in read else []),
            *(["Write"] if name in component.produces else []),
        )
        rules.append(Acl("topic", name, "literal", (*ops, "Describe")))
    if component.internal_prefix:
        # Faust creates and owns its changelog and assignor topics.
        ops = ("Create", "Read", "Write", "Describe", "DescribeConfigs")
        rules.append(Acl("topic", component.internal_prefix, "prefix", ops))
    if component.group:
        rules.append(Acl("group", component.group, "literal", ("Read", "Describe")))
    if component.monitors:
        # Lag of every group: committed offsets (group Describe) against end offsets (topic
        # Describe); no Read, so it sees positions, never a record.
        rules.append(Acl("topic", "*", "literal", ("Describe",)))
        rules.append(Acl("group", "*", "literal", ("Describe",)))
    return rules


def acl_script(components: Components, target: Target, client_config: str) -> str:
    """Shell script adding every component's ACLs with the admin user (idempotent)."""
    lines = [
        "#!/bin/sh",
        header(target).rstrip(),
        "# Adds the least-privilege ACLs of every component (kafka-acls --add is idempotent).",
        "set -eu",
        f'BOOTSTRAP="${{BOOTSTRAP:-localhost:{CLIENT_PORT}}}"',
        f'CLIENT_CONFIG="${{CLIENT_CONFIG:-{client_config}}}"',
        'ACLS="${KAFKA_HOME:-/opt/kafka}/bin/kafka-acls.sh"',
        "",
        "acl() {",
        '  "$ACLS" --bootstrap-server "$BOOTSTRAP" --command-config "$CLIENT_CONFIG" --add "$@"',
        "}",
        "",
    ]
    for component in components.component:
        if not component.kafka:
            continue
        lines.append(f"# {component.name}")
        for rule in acls_for(component):
            ops = " ".join(f"--operation {op}" for op in rule.operations)
            lines.append(
                f"acl --allow-principal User:{component.name} {ops} "
                f"--{rule.resource} '{rule.name}' --resource-pattern-type {rule.pattern}"
            )
        lines.append("")
    lines.append('echo "ACLs in place for: ' + " ".join(kafka_users(components)[1:]) + '"')
    return "\n".join(lines) + "\n"


# -- single-node Kafka (compose and systemd) ------------------------------------------------


@dataclass(frozen=True)
class BrokerPaths:
    """Where the broker's files are on one machine (inside the container, or on the VM)."""

    config_dir: str
    data_dir: str
    secrets_dir: str
    kafka_home: str
    advertised_host: str


RACK_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
DIR_PROVIDER = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"


def _admin_login(secrets_dir: str) -> list[str]:
    """Config provider + SCRAM login of the admin, the password read from its secret file."""
    password = f"${{dir:{secrets_dir}:{password_secret(ADMIN_USER)}}}"
    return [
        "config.providers=dir",
        f"config.providers.dir.class={DIR_PROVIDER}",
        # Only the secrets directory may be read through ${dir:...} (Kafka 3.8+).
        f"config.providers.dir.param.allowed.paths={secrets_dir}",
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{password}";',
    ]


def server_properties(paths: BrokerPaths, target: Target) -> str:
    """KRaft combined broker+controller, one SASL_SSL (SCRAM-SHA-512) client listener."""
    s = paths.secrets_dir
    *providers, login = _admin_login(s)
    controller = f"${{dir:{s}:{password_secret(CONTROLLER_USER)}}}"
    lines = [
        header(target).rstrip(),
        "# Single-node Apache Kafka in KRaft mode (broker and controller in one process).",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@localhost:{CONTROLLER_PORT}",
        "controller.listener.names=CONTROLLER",
        # The controller listener is loopback only and authenticated; clients use SASL_SSL.
        f"listeners=SASL_SSL://0.0.0.0:{CLIENT_PORT},CONTROLLER://localhost:{CONTROLLER_PORT}",
        f"advertised.listeners=SASL_SSL://{paths.advertised_host}:{CLIENT_PORT}",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.enabled.mechanisms={SASL_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SASL_MECHANISM}",
        # Secrets are read from files at start (DirectoryConfigProvider), never written here.
        *providers,
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={login}",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{CONTROLLER_USER}" password="{controller}" '
        f'user_{CONTROLLER_USER}="{controller}";',
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={s}/kafka-broker.pem",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={s}/kafka-ca.pem",
        "ssl.client.auth=none",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN_USER};User:{CONTROLLER_USER}",
        f"log.dirs={paths.data_dir}",
        "num.partitions=1",
        "default.replication.factor=1",
        "min.insync.replicas=1",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "auto.create.topics.enable=false",
        "log.retention.check.interval.ms=300000",
        "group.initial.rebalance.delay.ms=0",
    ]
    return "\n".join(lines) + "\n"


def format_script(components: Components, paths: BrokerPaths, target: Target) -> str:
    """First start only: format the KRaft storage with every SCRAM user (KIP-900)."""
    users = " ".join(kafka_users(components))
    return "\n".join(
        [
            "#!/bin/sh",
            header(target).rstrip(),
            "# Formats the storage once, creating the SCRAM-SHA-512 user of every component from",
            "# the generated password files; a formatted directory is left alone.",
            "set -eu",
            f'DATA="${{KAFKA_DATA_DIR:-{paths.data_dir}}}"',
            f'SECRETS="${{KAFKA_SECRETS_DIR:-{paths.secrets_dir}}}"',
            f'CONFIG="${{KAFKA_CONFIG_FILE:-{paths.config_dir}/server.properties}}"',
            f'KAFKA="${{KAFKA_HOME:-{paths.kafka_home}}}/bin"',
            'if [ -f "$DATA/meta.properties" ]; then exit 0; fi',
            "set --",
            f"for user in {users}; do",
            '  password="$(cat "$SECRETS/kafka-password-$user")"',
            f'  set -- "$@" --add-scram "{SASL_MECHANISM}=[name=$user,password=$password]"',
            "done",
            'cluster_id="$(cat "$SECRETS/kafka-cluster-id")"',
            '"$KAFKA/kafka-storage.sh" format --cluster-id "$cluster_id" --config "$CONFIG" "$@"',
            "",
        ]
    )


def admin_client_properties(secrets_dir: str, target: Target) -> str:
    """Client config of the admin tools; the password comes from the secret file."""
    *providers, login = _admin_login(secrets_dir)
    return "\n".join(
        [
            header(target).rstrip(),
            "security.protocol=SASL_SSL",
            f"sasl.mechanism={SASL_MECHANISM}",
            *providers,
            f"sasl.jaas.config={login}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={secrets_dir}/kafka-ca.pem",
            "",
        ]
    )


def bus_env(component: Component | None, bootstrap: str, ca_file: str, rf: int) -> dict[str, str]:
    """Non-secret settings every bus process gets (component None: the admin's topics job)."""
    user = component.name if component else ADMIN_USER
    env = {
        "LIENTHONG_BOOTSTRAP": bootstrap,
        "LIENTHONG_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LIENTHONG_KAFKA__SASL_MECHANISM": SASL_MECHANISM,
        "LIENTHONG_KAFKA__SASL_USERNAME": user,
        "LIENTHONG_KAFKA__SSL_CAFILE": ca_file,
        "LIENTHONG_KAFKA__REPLICATION_FACTOR": str(rf),
        "LIENTHONG_KAFKA__CLIENT_ID": user,
    }
    return env


# -- compose --------------------------------------------------------------------------------

COMPOSE_SECRETS = "/run/secrets"
COMPOSE_BROKER = BrokerPaths(
    config_dir="/opt/lienthong/kafka",
    data_dir="/var/lib/kafka/data",
    secrets_dir=COMPOSE_SECRETS,
    kafka_home="/opt/kafka",
    advertised_host="kafka",
)
KAFKA_CONFIG = COMPOSE_BROKER.config_dir


def _compose_memory(value: str) -> str:
    """Kubernetes quantities (512Mi, 2Gi) in Compose's byte units."""
    for suffix, unit in (("Gi", "g"), ("Mi", "m")):
        if value.endswith(suffix):
            return value[: -len(suffix)] + unit
    raise ValueError(f"memory {value!r}: use Mi or Gi")


def _bus_service(component: Component | None) -> dict[str, Any]:
    """A bus container: its settings, the secret files it mounts (component None: admin job)."""
    env: dict[str, str] = {}
    secrets: list[str] = []
    from_files: dict[str, str] = {}
    if component is None or component.kafka:
        user = component.name if component else ADMIN_USER
        env |= bus_env(component, f"kafka:{CLIENT_PORT}", f"{COMPOSE_SECRETS}/kafka-ca.pem", 1)
        secrets += [password_secret(user), "kafka-ca.pem"]
        from_files["LIENTHONG_KAFKA__SASL_PASSWORD"] = password_secret(user)
    env["LIENTHONG_RUN_DIR"] = "/var/lib/lienthong"
    if component is not None:
        env[env_name(component.host_setting)] = "0.0.0.0"
        if component.documents:
            env["LIENTHONG_DOCUMENTS__STORE"] = "/srv/lienthong/documents"
        for ref in component.secret:
            secrets.append(ref.name)
            if ref.file:
                env[ref.env] = f"{COMPOSE_SECRETS}/{ref.name}"
            else:
                from_files[ref.env] = ref.name
    if from_files:
        # entrypoint.sh exports VAR=<content of /run/secrets/NAME> for each pair.
        env["SECRET_ENV_FILES"] = " ".join(
            f"{var}={COMPOSE_SECRETS}/{name}" for var, name in from_files.items()
        )
    service: dict[str, Any] = {
        "image": BUS_IMAGE,
        "build": {"context": "../..", "dockerfile": "deploy/compose/Dockerfile"},
        "env_file": [{"path": "site.env", "required": False}],
        "environment": env,
    }
    if secrets:
        service["secrets"] = secrets
    service["restart"] = "unless-stopped" if component is not None else "no"
    service["logging"] = {"driver": "json-file", "options": {"max-size": "20m", "max-file": "5"}}
    return service


def render_compose(components: Components, topics: Catalogue) -> dict[str, str]:
    users = kafka_users(components)
    broker_secrets = [password_secret(u) for u in [*users, CONTROLLER_USER]] + [
        "kafka-cluster-id",
        "kafka-broker.pem",
        "kafka-ca.pem",
    ]
    services: dict[str, Any] = {
        "kafka": {
            "image": KAFKA_IMAGE,
            "hostname": "kafka",
            "entrypoint": [
                "/bin/sh",
                "-c",
                f"sh {KAFKA_CONFIG}/kafka-format.sh && exec "
                f"/opt/kafka/bin/kafka-server-start.sh {KAFKA_CONFIG}/server.properties",
            ],
            "volumes": [
                "kafka-data:/var/lib/kafka/data",
                f"./kafka:{COMPOSE_BROKER.config_dir}:ro",
            ],
            "secrets": broker_secrets,
            # Operators' tools on this machine only; the bus reaches it on the compose network.
            "ports": [f"127.0.0.1:{CLIENT_PORT}:{CLIENT_PORT}"],
            "environment": {"KAFKA_HEAP_OPTS": "-Xms1g -Xmx1g"},
            "healthcheck": {
                "test": ["CMD", "bash", "-c", f"</dev/tcp/localhost/{CLIENT_PORT}"],
                "interval": "10s",
                "timeout": "5s",
                "retries": 30,
            },
            "restart": "unless-stopped",
        },
        "kafka-acls": {
            "image": KAFKA_IMAGE,
            "entrypoint": ["/bin/sh", f"{COMPOSE_BROKER.config_dir}/kafka-acls.sh"],
            "environment": {
                "BOOTSTRAP": f"kafka:{CLIENT_PORT}",
                "CLIENT_CONFIG": f"{COMPOSE_BROKER.config_dir}/admin.properties",
            },
            "volumes": [f"./kafka:{COMPOSE_BROKER.config_dir}:ro"],
            "secrets": [password_secret(ADMIN_USER), "kafka-ca.pem"],
            "depends_on": {"kafka": {"condition": "service_healthy"}},
            "restart": "no",
        },
    }
    topics_job = _bus_service(None)
    topics_job["command"] = ["lienthong", "topics", "apply"]
    topics_job["depends_on"] = {"kafka-acls": {"condition": "service_completed_successfully"}}
    services["topics"] = topics_job
    volumes: dict[str, Any] = {"kafka-data": {}, "documents": {}}
    for component in components.component:
        service = _bus_service(component)
        service["command"] = list(component.command)
        url = f"http://127.0.0.1:{component.port}{component.health_path}"
        test = ["CMD", "python", "-c", HEALTH_PROBE, url]
        if component.probe == "tcp":
            test = ["CMD", "python", "-c", TCP_PROBE, str(component.port)]
        service["healthcheck"] = {
            "test": test,
            "interval": "15s",
            "timeout": "5s",
            "start_period": "60s",
            "retries": 4,
        }
        if component.kafka:
            service["depends_on"] = {"topics": {"condition": "service_completed_successfully"}}
        if component.documents:
            service["volumes"] = ["documents:/srv/lienthong/documents"]
        if component.exposed:
            service["ports"] = [f"{component.port}:{component.port}"]
        service["deploy"] = {
            "replicas": component.local_replicas,
            "resources": {"limits": {"memory": _compose_memory(component.memory_limit)}},
        }
        services[component.name] = service
    all_secrets = sorted({s for svc in services.values() for s in svc.get("secrets", [])})
    compose = {
        "name": "lienthong",
        "services": services,
        "volumes": volumes,
        # Generated by `lienthong deploy secrets --target compose` (0600, git-ignored) or
        # provided by the operator (outside systems' tokens); never committed.
        "secrets": {name: {"file": f"./secrets/{name}"} for name in all_secrets},
    }
    return {
        "compose.yaml": _yaml([compose], "compose"),
        "kafka/server.properties": server_properties(COMPOSE_BROKER, "compose"),
        "kafka/kafka-format.sh": format_script(components, COMPOSE_BROKER, "compose"),
        "kafka/admin.properties": admin_client_properties(COMPOSE_SECRETS, "compose"),
        "kafka/kafka-acls.sh": acl_script(
            components, "compose", f"{COMPOSE_BROKER.config_dir}/admin.properties"
        ),
        "Dockerfile": DOCKERFILE,
        "Dockerfile.dockerignore": DOCKERIGNORE,
        "entrypoint.sh": ENTRYPOINT,
        ".gitignore": header("compose") + "secrets/\nsite.env\n",
    }


DOCKERFILE = (
    header("compose")
    + """# The bus image: every lienthong component, one per container (the command picks it).
# Build from the repository root: docker build -f deploy/compose/Dockerfile -t lienthong:0.1.0 .
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN python -m venv /opt/lienthong \\
    && /opt/lienthong/bin/pip install --no-cache-dir -c constraints.txt '.[s3]'

FROM python:3.11-slim-bookworm
# uid 1000 like the apache/kafka image's user, so one owner fits the mounted secret files.
RUN useradd --system --uid 1000 --home-dir /var/lib/lienthong lienthong \\
    && mkdir -p /var/lib/lienthong /srv/lienthong/documents \\
    && chown lienthong:lienthong /var/lib/lienthong /srv/lienthong/documents
COPY --from=build /opt/lienthong /opt/lienthong
COPY deploy/compose/entrypoint.sh /usr/local/bin/lienthong-entrypoint
ENV PATH=/opt/lienthong/bin:$PATH PYTHONUNBUFFERED=1
USER lienthong
WORKDIR /var/lib/lienthong
ENTRYPOINT ["/bin/sh", "/usr/local/bin/lienthong-entrypoint"]
CMD ["lienthong", "--help"]
"""
)

DOCKERIGNORE = header("compose") + (
    ".venv\n.lienthong\n.git\n**/__pycache__\n.pytest_cache\n.ruff_cache\n.hypothesis\n"
    "build\ndist\n*.egg-info\ndeploy/compose/secrets\n"
)

ENTRYPOINT = (
    "#!/bin/sh\n"
    + header("compose")
    + """# Secrets arrive as files (/run/secrets/NAME); settings are environment variables. For each
# VAR=FILE pair in SECRET_ENV_FILES, export VAR with the file's content, then run the command.
set -eu
for pair in ${SECRET_ENV_FILES:-}; do
  var="${pair%%=*}"
  file="${pair#*=}"
  if [ ! -r "$file" ]; then
    echo "lienthong-entrypoint: secret file $file for $var is missing or unreadable" >&2
    exit 2
  fi
  export "$var=$(cat "$file")"
done
unset SECRET_ENV_FILES
exec "$@"
"""
)


# -- systemd --------------------------------------------------------------------------------

SYSTEMD_PREFIX = "/opt/lienthong/venv/bin"
SYSTEMD_SECRETS = "/etc/lienthong/secrets"
SYSTEMD_BROKER = BrokerPaths(
    config_dir="/etc/kafka/lienthong",
    data_dir="/var/lib/kafka/data",
    secrets_dir="/etc/kafka/lienthong/secrets",
    kafka_home="/opt/kafka",
    advertised_host="localhost",
)


def _cpu_quota(cpu: str) -> str:
    """Kubernetes CPU (1, 500m) as a systemd CPUQuota (100%, 50%)."""
    millis = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
    # Start-up (imports, table recovery) needs more than the steady share: at least one core.
    return f"{max(millis, 1000) // 10}%"


def _systemd_memory(value: str) -> str:
    for suffix, unit in (("Gi", "G"), ("Mi", "M")):
        if value.endswith(suffix):
            return value[: -len(suffix)] + unit
    raise ValueError(f"memory {value!r}: use Mi or Gi")


def _unit(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    out = [header("systemd").rstrip()]
    for title, entries in sections:
        out += ["", f"[{title}]", *(f"{key}={value}" for key, value in entries)]
    return "\n".join(out) + "\n"


def _exec(command: list[str]) -> str:
    program, *args = command
    return " ".join([f"{SYSTEMD_PREFIX}/{program}", *args])


def _component_unit(component: Component) -> str:
    template = component.kind == "worker"
    name = f"{component.name}-%i" if template else component.name
    command = list(component.command)
    if template:
        command += ["--web-port", "%i"]  # lienthong-worker@6066, @6067, ...
    env: dict[str, str] = {}
    if component.kafka:
        env |= bus_env(component, f"localhost:{CLIENT_PORT}", f"{SYSTEMD_SECRETS}/kafka-ca.pem", 1)
    env["LIENTHONG_RUN_DIR"] = f"/var/lib/lienthong/{name}"
    env[env_name(component.host_setting)] = "0.0.0.0" if component.exposed else "127.0.0.1"
    if component.documents:
        env["LIENTHONG_DOCUMENTS__STORE"] = "/srv/lienthong/documents"
    for ref in component.secret:
        if ref.file:
            env[ref.env] = f"{SYSTEMD_SECRETS}/{ref.name}"
    service = [("Type", "simple"), ("User", "lienthong"), ("Group", "lienthong")]
    service += [("Environment", f'"{key}={value}"') for key, value in env.items()]
    # Optional site settings (portal URL, endpoints), then this component's secrets (0600).
    service.append(("EnvironmentFile", "-/etc/lienthong/site.env"))
    service.append(("EnvironmentFile", f"{SYSTEMD_SECRETS}/{component.name}.env"))
    service += [
        ("ExecStart", _exec(command)),
        ("Restart", "on-failure"),
        ("RestartSec", "2s"),
        ("TimeoutStopSec", "30s"),
        ("MemoryMax", _systemd_memory(component.memory_limit)),
        ("CPUQuota", _cpu_quota(component.cpu)),
        ("TasksMax", "512"),
        ("LimitNOFILE", "65536"),
        ("StandardOutput", "journal"),
        ("StandardError", "journal"),
        ("SyslogIdentifier", f"lienthong-{name}"),
        ("StateDirectory", f"lienthong/{name}"),
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
    ]
    if component.documents:
        service.append(("ReadWritePaths", "/srv/lienthong/documents"))
    after = "network-online.target"
    if component.kafka:
        after += " kafka.service lienthong-topics.service"
    unit = [
        ("Description", f"lienthong {component.name}" + (" on port %i" if template else "")),
        ("After", after),
        ("Wants", "network-online.target"),
        ("PartOf", "lienthong.target"),
        ("StartLimitIntervalSec", "300"),
        ("StartLimitBurst", "5"),
    ]
    return _unit(
        [("Unit", unit), ("Service", service), ("Install", [("WantedBy", "lienthong.target")])]
    )


def _unit_file(component: Component) -> str:
    if component.kind == "worker":
        return f"lienthong-{component.name}@.service"
    return f"lienthong-{component.name}.service"


def _instances(component: Component) -> list[str]:
    if component.kind == "worker":
        return [
            f"lienthong-{component.name}@{component.port + i}.service"
            for i in range(component.local_replicas)
        ]
    return [f"lienthong-{component.name}.service"]


def _oneshot(
    description: str, after: str, user: str, service: list[tuple[str, str]], wanted_by: str
) -> str:
    """A set-up step that runs once per boot after the broker (ACLs, topics)."""
    return _unit(
        [
            (
                "Unit",
                [("Description", description), ("After", after), ("Requires", "kafka.service")],
            ),
            (
                "Service",
                [
                    ("Type", "oneshot"),
                    ("RemainAfterExit", "true"),
                    ("User", user),
                    *service,
                    ("StandardOutput", "journal"),
                ],
            ),
            ("Install", [("WantedBy", wanted_by)]),
        ]
    )


def render_systemd(components: Components, topics: Catalogue) -> dict[str, str]:
    files: dict[str, str] = {}
    for component in components.component:
        files[_unit_file(component)] = _component_unit(component)
    wants = " ".join(i for c in components.component for i in _instances(c))
    files["lienthong.target"] = _unit(
        [
            ("Unit", [("Description", "lienthong bus (every component)"), ("Wants", wants)]),
            ("Install", [("WantedBy", "multi-user.target")]),
        ]
    )
    topics_env = bus_env(None, f"localhost:{CLIENT_PORT}", f"{SYSTEMD_SECRETS}/kafka-ca.pem", 1)
    files["lienthong-topics.service"] = _oneshot(
        "lienthong: create or raise the catalogue topics",
        after="kafka.service kafka-acls.service",
        user="lienthong",
        service=[
            *[("Environment", f'"{k}={v}"') for k, v in topics_env.items()],
            ("EnvironmentFile", f"{SYSTEMD_SECRETS}/{ADMIN_USER}.env"),
            ("ExecStart", f"{SYSTEMD_PREFIX}/lienthong topics apply"),
            ("SyslogIdentifier", "lienthong-topics"),
        ],
        wanted_by="lienthong.target",
    )
    files["kafka.service"] = _unit(
        [
            (
                "Unit",
                [
                    ("Description", "Apache Kafka (KRaft, single node, SASL_SSL)"),
                    ("After", "network-online.target"),
                    ("Wants", "network-online.target"),
                ],
            ),
            (
                "Service",
                [
                    ("Type", "simple"),
                    ("User", "kafka"),
                    ("Group", "kafka"),
                    ("Environment", '"KAFKA_HEAP_OPTS=-Xms1g -Xmx1g"'),
                    ("StateDirectory", "kafka"),
                    ("ExecStartPre", f"/bin/sh {SYSTEMD_BROKER.config_dir}/kafka-format.sh"),
                    (
                        "ExecStart",
                        f"{SYSTEMD_BROKER.kafka_home}/bin/kafka-server-start.sh "
                        f"{SYSTEMD_BROKER.config_dir}/server.properties",
                    ),
                    ("Restart", "on-failure"),
                    ("RestartSec", "5s"),
                    ("TimeoutStopSec", "120s"),
                    ("LimitNOFILE", "100000"),
                    ("MemoryMax", "3G"),
                    ("StandardOutput", "journal"),
                    ("StandardError", "journal"),
                    ("SyslogIdentifier", "kafka"),
                ],
            ),
            ("Install", [("WantedBy", "multi-user.target")]),
        ]
    )
    files["kafka-acls.service"] = _oneshot(
        "Kafka: least-privilege ACLs of the lienthong components",
        after="kafka.service",
        user="kafka",
        service=[
            ("Environment", f'"BOOTSTRAP=localhost:{CLIENT_PORT}"'),
            # kafka-server-start returns before the listener is up: retry a while.
            ("Restart", "on-failure"),
            ("RestartSec", "10s"),
            ("ExecStart", f"/bin/sh {SYSTEMD_BROKER.config_dir}/kafka-acls.sh"),
            ("SyslogIdentifier", "kafka-acls"),
        ],
        wanted_by="multi-user.target",
    )
    broker = SYSTEMD_BROKER
    files["kafka/server.properties"] = server_properties(broker, "systemd")
    files["kafka/kafka-format.sh"] = format_script(components, broker, "systemd")
    files["kafka/admin.properties"] = admin_client_properties(broker.secrets_dir, "systemd")
    files["kafka/kafka-acls.sh"] = acl_script(
        components, "systemd", f"{broker.config_dir}/admin.properties"
    )
    return files


# -- Kubernetes (Strimzi) ------------------------------------------------------------------

# Strimzi 1.0 removed v1beta2; v1 is the only served API (KRaft and node pools always on).
STRIMZI_API = "kafka.strimzi.io/v1"
K8S_REPLICATION = 3


def _labels(component: Component) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component.name,
        "app.kubernetes.io/component": component.kind,
        PART_OF: "lienthong",
    }


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = labels
    return meta


ZONE = "topology.kubernetes.io/zone"


def strimzi_cluster() -> list[dict[str, Any]]:
    """Kafka (KRaft) and one node pool of 3 combined controller+brokers spread over zones."""
    kafka = {
        "apiVersion": STRIMZI_API,
        "kind": "Kafka",
        "metadata": _meta(CLUSTER),
        "spec": {
            "kafka": {
                "version": KAFKA_VERSION,
                "metadataVersion": KAFKA_METADATA_VERSION,
                "listeners": [
                    {
                        "name": "tls",
                        "port": CLIENT_PORT,
                        "type": "internal",
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                    }
                ],
                "authorization": {"type": "simple"},
                # Rack awareness (phân tán theo vùng): replicas of a partition in different zones.
                "rack": {"type": "topology-label", "topologyKey": ZONE},
                "config": {
                    "default.replication.factor": K8S_REPLICATION,
                    "min.insync.replicas": 2,
                    "offsets.topic.replication.factor": K8S_REPLICATION,
                    "transaction.state.log.replication.factor": K8S_REPLICATION,
                    "transaction.state.log.min.isr": 2,
                    "auto.create.topics.enable": False,
                    "replica.selector.class": RACK_SELECTOR,
                },
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    pool = {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaNodePool",
        "metadata": _meta("brokers", {"strimzi.io/cluster": CLUSTER}),
        "spec": {
            "replicas": 3,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": "200Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": {
                "requests": {"cpu": "2", "memory": "8Gi"},
                "limits": {"memory": "8Gi"},
            },
            "jvmOptions": {"-Xms": "4g", "-Xmx": "4g"},
            # With rack awareness Strimzi adds no zone affinity itself: one broker per zone.
            "template": {
                "pod": {
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": ZONE,
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {
                                "matchLabels": {
                                    "strimzi.io/cluster": CLUSTER,
                                    "strimzi.io/pool-name": "brokers",
                                }
                            },
                        }
                    ]
                }
            },
        },
    }
    return [kafka, pool]


def kafka_topic(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = dict(spec.kafka_configs())
    config["min.insync.replicas"] = "2"
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaTopic",
        "metadata": _meta(spec.name, {"strimzi.io/cluster": CLUSTER}),
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": K8S_REPLICATION,
            "config": config,
        },
    }


def kafka_user(component: Component) -> dict[str, Any]:
    acls = [
        {
            "resource": {"type": rule.resource, "name": rule.name, "patternType": rule.pattern},
            "operations": list(rule.operations),
            "host": "*",
        }
        for rule in acls_for(component)
    ]
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaUser",
        "metadata": _meta(component.name, {"strimzi.io/cluster": CLUSTER, PART_OF: "lienthong"}),
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def _container(component: Component) -> dict[str, Any]:
    env: list[dict[str, Any]] = []
    if component.kafka:
        plain = bus_env(
            component,
            f"{CLUSTER}-kafka-bootstrap:{CLIENT_PORT}",
            "/etc/lienthong/kafka-ca/ca.crt",
            K8S_REPLICATION,
        )
        env += [{"name": k, "value": v} for k, v in plain.items()]
        # The user operator generates the password into a Secret named like the KafkaUser.
        env.append(
            {
                "name": "LIENTHONG_KAFKA__SASL_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": component.name, "key": "password"}},
            }
        )
    env.append({"name": "LIENTHONG_RUN_DIR", "value": "/var/lib/lienthong"})
    env.append({"name": env_name(component.host_setting), "value": "0.0.0.0"})
    if component.documents:
        # Shared by every replica, so never the pod's own disk: s3://bucket/prefix. Required:
        # a pod without it does not start (CreateContainerConfigError names the key).
        ref = {"name": "lienthong-site", "key": "documents-store"}
        env.append({"name": "LIENTHONG_DOCUMENTS__STORE", "valueFrom": {"configMapKeyRef": ref}})
    # The root filesystem is read-only: the run dir and /tmp are the pod's scratch space.
    mounts = [
        {"name": "run", "mountPath": "/var/lib/lienthong"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if component.kafka:
        mounts.append(
            {"name": "kafka-ca", "mountPath": "/etc/lienthong/kafka-ca", "readOnly": True}
        )
    for ref in component.secret:
        if ref.file:
            env.append({"name": ref.env, "value": f"/etc/lienthong/secrets/{ref.name}/{ref.name}"})
            mounts.append(
                {
                    "name": ref.name,
                    "mountPath": f"/etc/lienthong/secrets/{ref.name}",
                    "readOnly": True,
                }
            )
        else:
            env.append(
                {
                    "name": ref.env,
                    "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.name}},
                }
            )
    url = f"http://127.0.0.1:{component.port}{component.health_path}"
    http: dict[str, Any] = {"httpGet": {"path": component.health_path, "port": "http"}}
    ready: dict[str, Any] = {"exec": {"command": ["python", "-c", HEALTH_PROBE, url]}}
    if component.probe == "tcp":
        http = ready = {"tcpSocket": {"port": "http"}}
    container: dict[str, Any] = {
        "name": component.name,
        "image": BUS_IMAGE,
        "command": list(component.command),
        "ports": [{"name": "http", "containerPort": component.port, "protocol": "TCP"}],
        "env": env,
        # Site settings (portal URL, central endpoints, documents store URL and its S3 keys).
        "envFrom": [
            {"configMapRef": {"name": "lienthong-site", "optional": True}},
            *(
                [{"secretRef": {"name": "documents-s3", "optional": True}}]
                if component.documents
                else []
            ),
        ],
        "startupProbe": {**http, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {
            **ready,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {**http, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": component.cpu, "memory": component.memory},
            "limits": {"memory": component.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    return container


def deployment(component: Component) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "run", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if component.kafka:
        volumes.append(
            {
                "name": "kafka-ca",
                "secret": {
                    "secretName": f"{CLUSTER}-cluster-ca-cert",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
    for ref in component.secret:
        if ref.file:
            volumes.append({"name": ref.name, "secret": {"secretName": ref.name}})
    selector = {"app.kubernetes.io/name": component.name, PART_OF: "lienthong"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(component.name, _labels(component)),
        "spec": {
            "replicas": component.replicas,
            "selector": {"matchLabels": selector},
            # One pod at a time: each worker leaving or joining rebalances the group.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "template": {
                "metadata": {"labels": _labels(component)},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                    },
                    "terminationGracePeriodSeconds": 60,
                    "containers": [_container(component)],
                    "volumes": volumes,
                },
            },
        },
    }


def service(component: Component) -> dict[str, Any]:
    labels = _labels(component)
    if component.metrics_job:
        labels[JOB_LABEL] = component.metrics_job
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(component.name, labels),
        "spec": {
            "selector": {"app.kubernetes.io/name": component.name, PART_OF: "lienthong"},
            "ports": [
                {"name": "http", "port": component.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def pod_disruption_budget(component: Component) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(component.name, _labels(component)),
        "spec": {
            # Drains take one pod at a time (a single-replica connector may be moved).
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": component.name, PART_OF: "lienthong"}
            },
        },
    }


def service_monitor(components: Components) -> dict[str, Any]:
    """Scrapes the /metrics of deploy/prometheus/prometheus.yml, with the same job names."""
    paths = sorted({c.metrics_path for c in components.component if c.metrics_job})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta("lienthong", {PART_OF: "lienthong"}),
        "spec": {
            "jobLabel": JOB_LABEL,
            "selector": {
                "matchLabels": {PART_OF: "lienthong"},
                "matchExpressions": [{"key": JOB_LABEL, "operator": "Exists"}],
            },
            "namespaceSelector": {"matchNames": [NAMESPACE]},
            "endpoints": [
                {"port": "http", "path": path, "interval": "15s", "scheme": "http"}
                for path in paths
            ],
        },
    }


def render_k8s(components: Components, topics: Catalogue) -> dict[str, str]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    bus: list[dict[str, Any]] = []
    for component in components.component:
        bus += [deployment(component), service(component), pod_disruption_budget(component)]
    return {
        "namespace.yaml": _yaml([namespace], "k8s"),
        "kafka.yaml": _yaml(strimzi_cluster(), "k8s"),
        "topics.yaml": _yaml([kafka_topic(t) for t in topics.topics], "k8s"),
        "users.yaml": _yaml([kafka_user(c) for c in components.component if c.kafka], "k8s"),
        "bus.yaml": _yaml(bus, "k8s"),
        "monitoring.yaml": _yaml([service_monitor(components)], "k8s"),
        "kustomization.yaml": _yaml([KUSTOMIZATION], "k8s"),
    }


KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.config.k8s.io/v1beta1",
    "kind": "Kustomization",
    "resources": [
        "namespace.yaml",
        "kafka.yaml",
        "topics.yaml",
        "users.yaml",
        "bus.yaml",
        "monitoring.yaml",
    ],
    # Point at your registry in an overlay: images: [{name: lienthong, newName: ..., newTag: ...}]
    "images": [{"name": BUS_IMAGE.split(":")[0], "newTag": BUS_IMAGE.split(":")[1]}],
}


RENDERERS = {"compose": render_compose, "systemd": render_systemd, "k8s": render_k8s}


def render(target: Target, components: Components, topics: Catalogue) -> dict[str, str]:
    """``{relative path: content}`` of one target's files."""
    return RENDERERS[target](components, topics)


EXECUTABLE_SUFFIXES = (".sh",)


def write(files: dict[str, str], out: Path) -> list[str]:
    """Write rendered files under ``out`` (scripts executable); returns the paths written."""
    written = []
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644)
        written.append(rel)
    return written


def drift(files: dict[str, str], out: Path, target: Target) -> list[str]:
    """What differs between a fresh render and ``out``: missing, changed, stale files."""
    problems = []
    for rel, text in sorted(files.items()):
        path = out / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {rel}")
    # A file carrying our header that no longer renders is stale (e.g. a removed component).
    marker = f"lienthong deploy render --target {target}`"
    if out.is_dir():
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = path.relative_to(out).as_posix()
            if rel in files or rel.startswith("secrets/"):
                continue
            try:
                head = path.read_text(encoding="utf-8")[:400]
            except (UnicodeDecodeError, OSError):
                continue
            if marker in head:
                problems.append(f"stale: {rel}")
    return problems
