"""`lienthong deploy render`: committed output is the render, and each target is well formed.

Nothing here runs Docker, Kubernetes or Kafka (none is available on CI): the Kubernetes core
objects are validated against the offline schemas of ``kubernetes-validate``, the Strimzi and
Prometheus-operator resources against the fields their documentation lists (written below),
the Compose file and the systemd units are parsed and checked field by field.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lienthong.cli.main import main
from lienthong.deploy import render
from lienthong.deploy.catalogue import Component, Components, load_both
from lienthong.runtime.topics import Catalogue

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|SALT|KEY$", re.IGNORECASE)


@pytest.fixture(scope="module")
def catalogues() -> tuple[Components, Catalogue]:
    return load_both()


@pytest.fixture(scope="module")
def components(catalogues: tuple[Components, Catalogue]) -> Components:
    return catalogues[0]


def _docs(target: str, name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / target / name).read_text()) if d]


def _k8s() -> list[dict[str, Any]]:
    return [d for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in _docs("k8s", path.name)]


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _k8s() if d["kind"] == kind]


def _kafka(components: Components) -> list[Component]:
    return [c for c in components.component if c.kafka]


# -- committed output == render --------------------------------------------------------------


@pytest.mark.parametrize("target", render.TARGETS)
def test_committed_files_are_the_render(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", "render", "--target", target, "--out", str(DEPLOY / target), "--check"])
    assert code == 0, capsys.readouterr().out


def test_check_reports_an_edited_a_missing_and_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k8s"
    assert main(["deploy", "render", "--target", "k8s", "--out", str(out)]) == 0
    (out / "topics.yaml").write_text((out / "topics.yaml").read_text().replace("6", "7"))
    (out / "users.yaml").unlink()
    shutil.copy(out / "bus.yaml", out / "old.yaml")
    capsys.readouterr()
    assert main(["deploy", "render", "--target", "k8s", "--out", str(out), "--check"]) == 1
    report = capsys.readouterr().out
    assert "differs: topics.yaml" in report
    assert "missing: users.yaml" in report
    assert "stale: old.yaml" in report


def test_scripts_are_rendered_executable(tmp_path: Path) -> None:
    assert main(["deploy", "render", "--target", "systemd", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "kafka" / "kafka-format.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "kafka.service").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "script", sorted(p.relative_to(DEPLOY).as_posix() for p in DEPLOY.glob("*/**/*.sh"))
)
def test_shell_scripts_parse(script: str) -> None:
    result = subprocess.run(["sh", "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- ACLs: least privilege derived from the catalogue ----------------------------------------


def test_acls_grant_exactly_the_catalogued_rights(components: Components) -> None:
    for component in _kafka(components):
        rules = render.acls_for(component)
        wildcard = [r for r in rules if r.name == "*"]
        if component.monitors:  # the broker probe: Describe everything, nothing more
            assert {(r.resource, r.operations) for r in wildcard} == {
                ("topic", ("Describe",)),
                ("group", ("Describe",)),
            }
        else:
            assert wildcard == [], component.name
        rules = [r for r in rules if r.name != "*"]
        topics = {r.name: set(r.operations) for r in rules if r.resource == "topic"}
        literal = {r.name for r in rules if r.resource == "topic" and r.pattern == "literal"}
        assert literal == component.topics, component.name
        for name in component.produces:
            assert "Write" in topics[name]
        for name in {*component.consumes, *component.reads}:
            assert "Read" in topics[name]
        for name in literal - set(component.produces):
            assert "Write" not in topics[name], (component.name, name)
        groups = [r for r in rules if r.resource == "group"]
        assert [g.name for g in groups] == ([component.group] if component.group else [])
        create = [r for r in rules if "Create" in r.operations]
        assert all(r.pattern == "prefix" and r.name == component.internal_prefix for r in create)


# -- Kubernetes core objects: offline schemas --------------------------------------------------

CORE_API = re.compile(r"^(v1|apps/v1|policy/v1)$")


def test_core_objects_validate_against_the_kubernetes_schemas() -> None:
    core = [d for d in _k8s() if CORE_API.match(d["apiVersion"])]
    assert {d["kind"] for d in core} == {
        "Namespace",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for doc in core:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_an_unknown_field() -> None:
    deployment = _kind("Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_deployments_probe_health_request_resources_and_have_a_budget(
    components: Components,
) -> None:
    deployments = {d["metadata"]["name"]: d for d in _kind("Deployment")}
    budgets = {d["metadata"]["name"]: d for d in _kind("PodDisruptionBudget")}
    assert set(deployments) == {c.name for c in components.component} == set(budgets)
    for component in components.component:
        spec = deployments[component.name]["spec"]
        assert spec["replicas"] == component.replicas
        (container,) = spec["template"]["spec"]["containers"]
        assert container["command"] == component.command
        assert container["ports"] == [
            {"name": "http", "containerPort": component.port, "protocol": "TCP"}
        ]
        if component.probe == "tcp":  # the console: nothing answers without a credential
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["tcpSocket"] == {"port": "http"}, component.name
        else:
            assert container["livenessProbe"]["httpGet"]["path"] == component.health_path
            readiness = container["readinessProbe"]["exec"]["command"]
            assert readiness[-1] == f"http://127.0.0.1:{component.port}{component.health_path}"
        requests = container["resources"]["requests"]
        assert requests == {"cpu": component.cpu, "memory": component.memory}
        labels = spec["template"]["metadata"]["labels"]
        selector = budgets[component.name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert budgets[component.name]["spec"]["maxUnavailable"] == 1
    assert deployments["worker"]["spec"]["replicas"] > 1


def test_pods_take_broker_passwords_from_the_user_operators_secrets(
    components: Components,
) -> None:
    users = {u["metadata"]["name"] for u in _kind("KafkaUser")}
    for deployment in _kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        for name, entry in env.items():
            if SECRET_WORDS.search(name):  # a reference or a mounted file, never the value
                path = entry.get("value", "/etc/lienthong/secrets/")
                assert path.startswith("/etc/lienthong/secrets/"), (name, entry)
        name = deployment["metadata"]["name"]
        if components.get(name).kafka:
            ref = env["LIENTHONG_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": name, "key": "password"} and name in users
            assert env["LIENTHONG_KAFKA__SASL_USERNAME"]["value"] == name
            assert env["LIENTHONG_KAFKA__SECURITY_PROTOCOL"]["value"] == "SASL_SSL"


# -- Strimzi resources: the fields Strimzi documents (kafka.strimzi.io/v1, Strimzi 1.x) -------

STRIMZI_API = "kafka.strimzi.io/v1"
STRIMZI_KAFKA_SPEC = {"kafka", "entityOperator", "clusterCa", "clientsCa", "cruiseControl",
                      "kafkaExporter", "maintenanceTimeWindows"}  # fmt: skip
STRIMZI_KAFKA_CLUSTER = {"version", "metadataVersion", "listeners", "config", "authorization",
                         "rack", "brokerRackInitImage", "logging", "metricsConfig", "template",
                         "jmxOptions", "jvmOptions", "livenessProbe", "readinessProbe", "image",
                         "quotas", "tieredStorage"}  # fmt: skip
STRIMZI_LISTENER = {"name", "port", "type", "tls", "authentication", "configuration",
                    "networkPolicyPeers"}  # fmt: skip
STRIMZI_LISTENER_TYPES = {"internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip",
                          "tlsroute"}  # fmt: skip
STRIMZI_RACK = {"type", "topologyKey", "envVarName"}
STRIMZI_POOL_SPEC = {"replicas", "roles", "storage", "resources", "jvmOptions", "template"}
STRIMZI_POOL_POD = {"affinity", "tolerations", "topologySpreadConstraints", "metadata",
                    "securityContext", "priorityClassName", "terminationGracePeriodSeconds",
                    "imagePullSecrets", "volumes", "tmpDirSizeLimit"}  # fmt: skip
STRIMZI_VOLUME = {"id", "type", "size", "class", "selector", "deleteClaim", "kraftMetadata",
                  "volumeAttributesClass"}  # fmt: skip
STRIMZI_TOPIC_SPEC = {"topicName", "partitions", "replicas", "config"}
STRIMZI_USER_SPEC = {"authentication", "authorization", "quotas", "template"}
STRIMZI_ACL = {"resource", "operations", "host", "type"}
STRIMZI_ACL_RESOURCE = {"type", "name", "patternType"}
STRIMZI_ACL_OPERATIONS = {"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
                          "AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All"}  # fmt: skip
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def test_strimzi_resources_use_the_v1_api() -> None:
    strimzi = [d for d in _k8s() if d["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {d["kind"] for d in strimzi} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    assert {d["apiVersion"] for d in strimzi} == {STRIMZI_API}
    assert all(d["spec"] for d in strimzi)  # v1 requires .spec


def test_strimzi_kafka_is_kraft_with_scram_tls_and_racks() -> None:
    (kafka,) = _kind("Kafka")
    assert "annotations" not in kafka["metadata"]  # v1: KRaft and node pools are not optional
    assert set(kafka["spec"]) <= STRIMZI_KAFKA_SPEC
    cluster = kafka["spec"]["kafka"]
    assert set(cluster) <= STRIMZI_KAFKA_CLUSTER
    assert (
        "zookeeper" not in kafka["spec"] and "replicas" not in cluster and "storage" not in cluster
    )
    for listener in cluster["listeners"]:
        assert set(listener) <= STRIMZI_LISTENER
        assert listener["type"] in STRIMZI_LISTENER_TYPES
        assert listener["tls"] is True
        assert listener["authentication"] == {"type": "scram-sha-512"}
    assert cluster["authorization"] == {"type": "simple"}
    assert set(cluster["rack"]) <= STRIMZI_RACK
    assert cluster["rack"] == {
        "type": "topology-label",
        "topologyKey": "topology.kubernetes.io/zone",
    }
    assert cluster["version"] == render.KAFKA_VERSION
    assert cluster["config"]["min.insync.replicas"] == 2
    assert set(kafka["spec"]["entityOperator"]) == {"topicOperator", "userOperator"}


def test_strimzi_node_pool_has_three_combined_nodes_on_persistent_storage() -> None:
    (pool,) = _kind("KafkaNodePool")
    (kafka,) = _kind("Kafka")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert set(pool["spec"]) <= STRIMZI_POOL_SPEC
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    storage = pool["spec"]["storage"]
    assert storage["type"] == "jbod"
    for volume in storage["volumes"]:
        assert set(volume) <= STRIMZI_VOLUME
        assert volume["type"] == "persistent-claim" and volume["deleteClaim"] is False
    pod = pool["spec"]["template"]["pod"]
    assert set(pod) <= STRIMZI_POOL_POD
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert (
        spread["labelSelector"]["matchLabels"]["strimzi.io/pool-name"] == pool["metadata"]["name"]
    )


def test_kafka_topics_are_generated_from_the_catalogue(
    catalogues: tuple[Components, Catalogue],
) -> None:
    _, topics = catalogues
    resources = {t["spec"]["topicName"]: t for t in _kind("KafkaTopic")}
    assert list(resources) == [t.name for t in topics.topics]
    for spec in topics.topics:
        resource = resources[spec.name]
        assert DNS_1123.match(resource["metadata"]["name"])
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "lienthong"
        assert set(resource["spec"]) <= STRIMZI_TOPIC_SPEC
        assert resource["spec"]["partitions"] == spec.partitions
        assert resource["spec"]["replicas"] == 3
        config = resource["spec"]["config"]
        assert all(isinstance(v, str) for v in config.values())
        assert spec.kafka_configs().items() <= config.items()


def test_kafka_users_are_scram_with_the_catalogues_acls(components: Components) -> None:
    users = {u["metadata"]["name"]: u for u in _kind("KafkaUser")}
    assert set(users) == {c.name for c in _kafka(components)}
    for component in _kafka(components):
        spec = users[component.name]["spec"]
        assert set(spec) <= STRIMZI_USER_SPEC
        assert spec["authentication"] == {"type": "scram-sha-512"}
        assert spec["authorization"]["type"] == "simple"
        acls = spec["authorization"]["acls"]
        for acl in acls:
            assert set(acl) <= STRIMZI_ACL
            assert set(acl["resource"]) <= STRIMZI_ACL_RESOURCE
            assert acl["resource"]["type"] in {"topic", "group", "cluster", "transactionalId"}
            assert acl["resource"]["patternType"] in {"literal", "prefix"}
            assert set(acl["operations"]) <= STRIMZI_ACL_OPERATIONS
        expected = [
            (a.resource, a.name, a.pattern, list(a.operations)) for a in render.acls_for(component)
        ]
        got = [
            (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"],
             a["operations"])
            for a in acls
        ]  # fmt: skip
        assert got == expected


def test_service_monitor_scrapes_what_prometheus_yml_scrapes() -> None:
    (monitor,) = _kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"jobLabel", "selector", "namespaceSelector", "endpoints",
                                    "targetLabels", "podTargetLabels", "sampleLimit"}  # fmt: skip
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    paths = {job["metrics_path"] for job in scrape}
    assert {(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]} == {
        ("http", p) for p in paths
    }
    wanted = {
        job["job_name"]: {int(t.rsplit(":", 1)[1]) for s in job["static_configs"] for t in s["targets"]}
        for job in scrape
    }  # fmt: skip
    selector = monitor["spec"]["selector"]["matchLabels"]
    job_label = monitor["spec"]["jobLabel"]
    scraped = {}
    for svc in _kind("Service"):
        labels = svc["metadata"]["labels"]
        if selector.items() <= labels.items() and job_label in labels:
            scraped[labels[job_label]] = {
                p["port"] for p in svc["spec"]["ports"] if p["name"] == "http"
            }
    assert scraped == wanted


# -- Compose -------------------------------------------------------------------------------


def test_compose_runs_kafka_kraft_and_every_component_with_its_own_user(
    components: Components,
) -> None:
    (compose,) = _docs("compose", "compose.yaml")
    services = compose["services"]
    assert {c.name for c in components.component} | {"kafka", "kafka-acls", "topics"} == set(
        services
    )
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    volume = kafka["volumes"][0].split(":")
    assert volume[1] == "/var/lib/kafka/data" and volume[0] in compose["volumes"]
    properties = (DEPLOY / "compose" / "kafka" / "server.properties").read_text()
    assert "process.roles=broker,controller" in properties
    assert "listeners=SASL_SSL://0.0.0.0:9093,CONTROLLER://localhost:9094" in properties
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in properties
    assert "allow.everyone.if.no.acl.found=false" in properties
    assert "ANONYMOUS" not in properties and "CONTROLLER:SASL_PLAINTEXT" in properties
    assert "kafka-password-controller" in kafka["secrets"]
    users = set()
    for component in components.component:
        service = services[component.name]
        assert service["command"] == component.command
        env = service["environment"]
        if component.kafka:
            users.add(env["LIENTHONG_KAFKA__SASL_USERNAME"])
            assert env["LIENTHONG_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
            assert env["LIENTHONG_BOOTSTRAP"] == "kafka:9093"
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
            pair = f"LIENTHONG_KAFKA__SASL_PASSWORD=/run/secrets/kafka-password-{component.name}"
            assert pair in env["SECRET_ENV_FILES"].split()
        probe = service["healthcheck"]["test"][-1]
        assert probe == (str(component.port) if component.probe == "tcp" else probe)
        assert component.probe == "tcp" or "/health" in probe
    assert users == {c.name for c in _kafka(components)}
    assert services["worker"]["deploy"]["replicas"] == components.get("worker").local_replicas


def test_compose_carries_no_secrets_only_secret_files(components: Components) -> None:
    (compose,) = _docs("compose", "compose.yaml")
    declared = compose["secrets"]
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            assert declared[secret] == {"file": f"./secrets/{secret}"}, (name, secret)
        for var, value in service.get("environment", {}).items():
            if var == "SECRET_ENV_FILES":
                for pair in value.split():
                    secret = pair.split("=", 1)[1].removeprefix("/run/secrets/")
                    assert secret in service["secrets"], (name, pair)
            elif SECRET_WORDS.search(var):
                assert str(value).startswith("/run/secrets/"), (name, var)
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    assert not re.search(r"password\s*[:=]\s*[^/\s]", text, re.IGNORECASE)
    gitignore = (DEPLOY / "compose" / ".gitignore").read_text().split()
    assert "secrets/" in gitignore and "site.env" in gitignore


def test_format_script_creates_every_user_and_the_acl_script_covers_them(
    components: Components,
) -> None:
    for target in ("compose", "systemd"):
        format_script = (DEPLOY / target / "kafka" / "kafka-format.sh").read_text()
        loop = re.search(r"^for user in (.*); do$", format_script, re.MULTILINE)
        assert loop and loop.group(1).split() == render.kafka_users(components)
        acls = (DEPLOY / target / "kafka" / "kafka-acls.sh").read_text()
        principals = set(re.findall(r"--allow-principal User:(\S+)", acls))
        assert principals == {c.name for c in _kafka(components)}


# -- systemd -------------------------------------------------------------------------------


class _MultiDict(dict):
    """configparser storage keeping repeated keys (Environment=, EnvironmentFile=)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(dict_type=_MultiDict, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def _values(unit: configparser.RawConfigParser, section: str, key: str) -> list[str]:
    """Every value of a repeated key (configparser joins them with newlines)."""
    return unit.get(section, key, fallback="").split("\n")


def test_systemd_units_for_every_component(components: Components) -> None:
    target = _unit("lienthong.target")
    wants = target.get("Unit", "Wants").split()
    for component in components.component:
        worker = component.kind == "worker"
        name = f"lienthong-{component.name}" + ("@.service" if worker else ".service")
        unit = _unit(name)
        service = "Service"
        assert unit.get(service, "Restart") == "on-failure"
        assert unit.get(service, "MemoryMax") == component.memory_limit.replace("i", "")
        assert unit.get(service, "CPUQuota").endswith("%")
        assert unit.get(service, "StandardOutput") == "journal"
        assert unit.get(service, "User") == "lienthong"
        assert unit.get("Install", "WantedBy") == "lienthong.target"
        exec_start = unit.get(service, "ExecStart").split()
        assert exec_start[0].endswith("/" + component.command[0])
        assert exec_start[1 : len(component.command)] == component.command[1:]
        files = _values(unit, service, "EnvironmentFile")
        assert f"/etc/lienthong/secrets/{component.name}.env" in files
        env = dict(e.strip('"').split("=", 1) for e in _values(unit, service, "Environment"))
        for var, value in env.items():
            if SECRET_WORDS.search(var):
                assert value.startswith("/etc/lienthong/secrets/"), (name, var)
        if component.kafka:
            assert env["LIENTHONG_KAFKA__SASL_USERNAME"] == component.name
        expected_host = "0.0.0.0" if component.exposed else "127.0.0.1"
        assert env[render.env_name(component.host_setting)] == expected_host
        if worker:
            ports = [component.port + i for i in range(component.local_replicas)]
            assert {f"lienthong-worker@{p}.service" for p in ports} <= set(wants)
        else:
            assert name in wants


def test_systemd_broker_unit_formats_then_starts_kafka() -> None:
    unit = _unit("kafka.service")
    assert unit.get("Service", "ExecStartPre").endswith("/kafka-format.sh")
    assert unit.get("Service", "ExecStart").endswith("server.properties")
    assert unit.get("Service", "User") == "kafka"
    topics = _unit("lienthong-topics.service")
    assert topics.get("Service", "Type") == "oneshot"
    assert "kafka-acls.service" in topics.get("Unit", "After")


# -- the rendered settings are settings the bus accepts -------------------------------------


def _environments() -> list[tuple[str, dict[str, str]]]:
    """(where, LIENTHONG_* variables) of every rendered bus process; secrets as placeholders."""
    found = []
    (compose,) = _docs("compose", "compose.yaml")
    for name, service in compose["services"].items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        for pair in env.pop("SECRET_ENV_FILES", "").split():
            env[pair.split("=", 1)[0]] = "placeholder"
        found.append((f"compose {name}", env))
    for deployment in _kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", "placeholder") for e in container["env"]}
        found.append((f"k8s {deployment['metadata']['name']}", env))
    for path in sorted((DEPLOY / "systemd").glob("lienthong-*.service")):
        unit = _unit(path.name)
        pairs = [e.strip('"').split("=", 1) for e in _values(unit, "Service", "Environment")]
        env = {k: v.replace("%i", "6066") for k, v in pairs}
        found.append((f"systemd {path.name}", env | {"LIENTHONG_KAFKA__SASL_PASSWORD": "x"}))
    return [(where, env) for where, env in found if any(k.startswith("LIENTHONG_") for k in env)]


def test_rendered_environments_load_as_valid_settings() -> None:
    from lienthong.config import load_settings

    environments = _environments()
    assert len(environments) >= 3 * 6
    for where, env in environments:
        settings = load_settings(path=None, environ={"LIENTHONG_CONFIG": "", **env})
        if "LIENTHONG_BOOTSTRAP" in env:
            assert not settings.uses_embedded_broker, where
            assert settings.kafka.security_protocol == "SASL_SSL", where
            assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512", where
