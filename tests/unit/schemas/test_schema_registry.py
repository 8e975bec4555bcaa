"""Registries: the embedded file registry under concurrency, the Confluent REST client over HTTP."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lienthong.schemas import (
    AvroCodec,
    FileSchemaRegistry,
    HttpSchemaRegistry,
    RegistryUnavailable,
    SchemaNotFound,
    UnknownSchemaId,
)
from lienthong.schemas.examples import example_event
from lienthong.schemas.registry import CONTENT_TYPE, registry_from_settings


def _schema(n: int) -> str:
    return json.dumps({"type": "record", "name": f"R{n}", "fields": []})


def test_file_registry_ids_are_stable_and_idempotent(tmp_path: Path) -> None:
    reg = FileSchemaRegistry(tmp_path / "r.json")
    a = reg.register("s.A", _schema(1))
    b = reg.register("s.B", _schema(2))
    assert (a, b) == (1, 2)
    assert reg.register("s.A", _schema(1)) == a
    # a second process view of the same file agrees
    other = FileSchemaRegistry(tmp_path / "r.json")
    assert other.register("s.B", json.dumps(json.loads(_schema(2)), indent=4)) == b
    assert json.loads(other.get_schema(a)) == json.loads(_schema(1))
    with pytest.raises(SchemaNotFound):
        other.get_schema(99)
    assert reg.subjects() == {"s.A": [1], "s.B": [2]}


def _register_many(path: str, start: int, queue: Any) -> None:
    reg = FileSchemaRegistry(path)
    queue.put([(n, reg.register(f"s.R{n}", _schema(n))) for n in range(start, start + 15)])


def test_file_registry_is_safe_for_several_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "r.json")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # overlapping ranges: processes race to register the same schemas
    procs = [ctx.Process(target=_register_many, args=(path, i * 10, queue)) for i in range(4)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    by_schema: dict[int, set[int]] = {}
    for result in results:
        for n, schema_id in result:
            by_schema.setdefault(n, set()).add(schema_id)
    assert all(len(ids) == 1 for ids in by_schema.values()), by_schema
    ids = [next(iter(v)) for v in by_schema.values()]
    assert sorted(ids) == list(range(1, len(by_schema) + 1))
    reg = FileSchemaRegistry(path)
    for n, found in by_schema.items():
        assert json.loads(reg.get_schema(next(iter(found))))["name"] == f"R{n}"


class _FakeConfluent(BaseHTTPRequestHandler):
    """Just enough of the Confluent Schema Registry REST API, served over real HTTP."""

    schemas: dict[int, str] = {}
    subjects: dict[str, list[int]] = {}
    content_types: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
            self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            return
        self.content_types.append(self.headers.get("Content-Type", ""))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        schema = body["schema"]
        known = {text: sid for sid, text in self.schemas.items()}
        schema_id = known.get(schema) or len(self.schemas) + 1
        self.schemas[schema_id] = schema
        self.subjects.setdefault(parts[1], []).append(schema_id)
        self._reply(200, {"id": schema_id})

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            schema = self.schemas.get(int(parts[2]))
            if schema is None:
                self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            else:
                self._reply(200, {"schema": schema})
            return
        self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})


@pytest.fixture
def confluent_url() -> Iterator[str]:
    _FakeConfluent.schemas = {}
    _FakeConfluent.subjects = {}
    _FakeConfluent.content_types = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeConfluent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_registry_against_a_real_http_server(confluent_url: str) -> None:
    reg = HttpSchemaRegistry(confluent_url)
    codec = AvroCodec(reg)
    event = example_event("dossier_received")
    data = codec.encode(event)
    assert int.from_bytes(data[1:5], "big") == 1
    assert _FakeConfluent.subjects == {"lienthong.events.DossierReceived": [1]}
    assert _FakeConfluent.content_types == [CONTENT_TYPE]
    # a fresh codec (another process) resolves the id over HTTP
    assert AvroCodec(HttpSchemaRegistry(confluent_url)).decode(data) == event
    # cached: encoding again does not call the registry
    codec.encode(event)
    assert len(_FakeConfluent.content_types) == 1
    with pytest.raises(SchemaNotFound):
        reg.get_schema(77)
    with pytest.raises(UnknownSchemaId):
        AvroCodec(reg).decode(b"\x00\x00\x00\x00\x4d")


def test_http_registry_unreachable_is_not_a_decode_error() -> None:
    reg = HttpSchemaRegistry("http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        reg.get_schema(1)


def test_registry_from_settings(tmp_path: Path) -> None:
    class S:
        run_dir = tmp_path
        schema_registry_url = None

    assert isinstance(registry_from_settings(S()), FileSchemaRegistry)
    S.schema_registry_url = "http://registry:8081"
    assert isinstance(registry_from_settings(S()), HttpSchemaRegistry)
