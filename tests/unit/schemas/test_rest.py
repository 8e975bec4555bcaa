"""The Confluent read API over the file registry, through aiohttp's in-process test server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lienthong.config import load_settings
from lienthong.runtime.supervisor import component_specs
from lienthong.schemas.catalogue import current_schema
from lienthong.schemas.registry import CONTENT_TYPE, FileSchemaRegistry
from lienthong.schemas.rest import create_app

RECEIVED = current_schema("dossier_received")
SUBMITTED = current_schema("dossier_submitted")


class Api:
    """Synchronous GETs against the app, answering (status, parsed JSON body, content type)."""

    def __init__(self, registry: FileSchemaRegistry) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = TestClient(TestServer(create_app(registry)), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def request(self, method: str, path: str) -> tuple[int, Any, str]:
        async def call() -> tuple[int, Any, str]:
            async with self.client.request(method, path) as response:
                return response.status, json.loads(await response.text()), response.content_type

        return self.loop.run_until_complete(call())

    def get(self, path: str) -> tuple[int, Any]:
        status, body, content_type = self.request("GET", path)
        assert content_type == CONTENT_TYPE, (path, content_type)
        return status, body

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture
def registry(tmp_path) -> FileSchemaRegistry:
    return FileSchemaRegistry(tmp_path / "schema-registry.json")


@pytest.fixture
def api(registry) -> Iterator[Api]:
    client = Api(registry)
    yield client
    client.close()


def _evolved(schema: dict[str, Any]) -> str:
    """A second version of a schema (a different text under the same subject)."""
    return json.dumps({**schema, "doc": "second version"})


def test_schema_by_id_and_raw(api, registry):
    schema_id = registry.register(RECEIVED.full_name, RECEIVED.text)
    status, body = api.get(f"/schemas/ids/{schema_id}")
    assert status == 200
    assert body == {"schema": RECEIVED.text}
    assert api.get(f"/schemas/ids/{schema_id}/schema") == (200, RECEIVED.schema)
    assert api.get(f"/schemas/ids/{schema_id}/subjects") == (200, [RECEIVED.full_name])
    assert api.get(f"/schemas/ids/{schema_id}/versions") == (
        200,
        [{"subject": RECEIVED.full_name, "version": 1}],
    )


def test_unknown_schema_id_is_40403(api, registry):
    registry.register(RECEIVED.full_name, RECEIVED.text)
    for path in ("/schemas/ids/99", "/schemas/ids/abc", "/schemas/ids/99/schema"):
        status, body = api.get(path)
        assert status == 404
        assert body["error_code"] == 40403
        assert "not found" in body["message"]


def test_subjects_and_versions(api, registry):
    first = registry.register(RECEIVED.full_name, RECEIVED.text)
    other = registry.register(SUBMITTED.full_name, SUBMITTED.text)
    second = registry.register(RECEIVED.full_name, _evolved(RECEIVED.schema))
    assert api.get("/subjects") == (200, sorted([RECEIVED.full_name, SUBMITTED.full_name]))
    assert api.get(f"/subjects/{RECEIVED.full_name}/versions") == (200, [1, 2])
    status, v1 = api.get(f"/subjects/{RECEIVED.full_name}/versions/1")
    assert status == 200
    assert v1 == {"subject": RECEIVED.full_name, "version": 1, "id": first, "schema": RECEIVED.text}
    for latest in ("latest", "-1", "2"):
        status, body = api.get(f"/subjects/{RECEIVED.full_name}/versions/{latest}")
        assert (status, body["version"], body["id"]) == (200, 2, second)
    status, raw = api.get(f"/subjects/{SUBMITTED.full_name}/versions/latest/schema")
    assert (status, raw) == (200, SUBMITTED.schema)
    assert other not in (first, second)


def test_subject_and_version_errors(api, registry):
    registry.register(RECEIVED.full_name, RECEIVED.text)
    status, body = api.get("/subjects/lienthong.events.Nope/versions")
    assert (status, body["error_code"]) == (404, 40401)
    assert "lienthong.events.Nope" in body["message"]
    status, body = api.get(f"/subjects/{RECEIVED.full_name}/versions/2")
    assert (status, body["error_code"]) == (404, 40402)
    for bad in ("0", "x", "-2"):
        status, body = api.get(f"/subjects/{RECEIVED.full_name}/versions/{bad}")
        assert (status, body["error_code"]) == (422, 42202), bad
        assert f"'{bad}'" in body["message"]


def test_rereads_the_file_when_another_process_registers(api, registry, tmp_path):
    assert api.get("/subjects") == (200, [])
    # Another process: its own registry object on the same file.
    schema_id = FileSchemaRegistry(tmp_path / "schema-registry.json").register(
        SUBMITTED.full_name, SUBMITTED.text
    )
    assert api.get("/subjects") == (200, [SUBMITTED.full_name])
    assert api.get(f"/schemas/ids/{schema_id}")[1] == {"schema": SUBMITTED.text}
    status, health = api.get("/health")
    assert (status, health["status"], health["schemas"], health["subjects"]) == (200, "ok", 1, 1)


def test_corrupt_file_is_a_50001_naming_the_file(api, registry):
    registry.path.write_text("{not json")
    status, body = api.get("/subjects")
    assert (status, body["error_code"]) == (500, 50001)
    assert str(registry.path) in body["message"]


def test_config_mode_and_types(api, registry):
    registry.register(RECEIVED.full_name, RECEIVED.text)
    assert api.get("/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert api.get(f"/config/{RECEIVED.full_name}") == (
        200,
        {"compatibilityLevel": RECEIVED.compatibility},
    )
    assert api.get("/mode") == (200, {"mode": "READONLY"})
    assert api.get("/schemas/types") == (200, ["AVRO"])


def test_writes_and_unknown_paths_answer_in_confluent_shape(api):
    status, body, content_type = api.request("POST", "/subjects/x/versions")
    assert (status, body["error_code"], content_type) == (405, 405, CONTENT_TYPE)
    assert "read-only" in body["message"]
    status, body = api.get("/nowhere")
    assert (status, body["error_code"]) == (404, 404)


def test_up_serves_the_registry_only_when_it_is_the_embedded_file():
    embedded = {s.name: s for s in component_specs(load_settings(environ={}))}
    spec = embedded["schema-registry"]
    assert spec.port == 6094
    assert spec.command[-2:] == ["run", "schema-registry"]
    external = load_settings(environ={"LIENTHONG_SCHEMA_REGISTRY_URL": "http://registry:8081"})
    assert "schema-registry" not in {s.name for s in component_specs(external)}
