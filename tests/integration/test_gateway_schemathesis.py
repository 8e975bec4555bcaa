"""The gateway against its own ``/openapi.json``, fuzzed by schemathesis (issue 17 item 5).

Why: department systems are written from the published spec, not from our code. Every answer the
gateway gives must be one the spec lists (status, content type, body schema), and no request,
however odd, may get a 5xx. The gateway runs over real HTTP in front of the real broker, so a
202 is a record Kafka acknowledged.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from lienthong.config import load_settings
from lienthong.connectors.gateway.app import ThreadedGateway, build_gateway
from lienthong.connectors.gateway.auth import load_clients
from lienthong.connectors.gateway.openapi import SPEC_FILE
from tests.unit.connectors.gateway.support import CENTER, KEYS, sha, write_clients

pytestmark = pytest.mark.integration

# What "an answer outside the spec" means; the spec says nothing about which valid-looking
# bodies the bus policy accepts (agency registry, roles), so acceptance checks are not asked.
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def clients_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clients(tmp_path_factory.mktemp("schemathesis-clients") / "clients.toml")


@pytest.fixture(scope="module")
def gateway_url(kafka_bootstrap: str, clients_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """One gateway for the module, on its own topic prefix, over real HTTP."""
    from lienthong.runtime.topics import TopicAdmin

    tmp = tmp_path_factory.mktemp("schemathesis")
    env = {
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_TOPIC_PREFIX": f"st{uuid.uuid4().hex[:10]}.",
        "LIENTHONG_RUN_DIR": str(tmp / "run"),
        "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(clients_file),
        "LIENTHONG_CONNECTORS__GATEWAY__MAX_BODY_BYTES": "65536",
    }
    settings = load_settings(environ=env)
    with TopicAdmin(settings) as admin:
        admin.apply()
    with ThreadedGateway(build_gateway(settings)) as gw:
        yield gw.url


@pytest.fixture(scope="module")
def key_for(clients_file: Path):
    """The API key of a client whose role may publish the kind, so cases get past the 403."""
    by_hash = {sha(key): key for key in KEYS.values()}
    clients = load_clients(clients_file)

    def pick(event_type: str) -> str:
        allowed = (c for c in clients if event_type in c.allowed and c.api_key_sha256)
        client = next(allowed, None)
        return by_hash[client.api_key_sha256] if client else KEYS[CENTER]

    return pick


# The committed spec, checked below against what the running gateway serves: schemathesis's
# lazy loader (``from_fixture``) fails under pytest 9, so the cases are built at collection
# from the file, and the first test proves the file is the document the gateway serves.
schema = schemathesis.openapi.from_path(SPEC_FILE)


def test_the_fuzzed_spec_is_the_served_one(gateway_url: str) -> None:
    with urllib.request.urlopen(f"{gateway_url}/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == json.loads(SPEC_FILE.read_text(encoding="utf-8"))


@schema.parametrize()
@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_is_in_the_spec_and_none_is_a_5xx(case, gateway_url: str, key_for) -> None:
    key = key_for(case.operation.path.rsplit("/", 1)[-1])
    case.call_and_validate(
        base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
    )
