"""The ingest gateway against the real broker, served over real HTTP on a free port.

What reaches Kafka is read back from the topics: every refused request must leave no record,
every accepted one exactly one; idempotency must survive a gateway restart.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition

from lienthong.config import load_settings
from lienthong.connectors.gateway.app import ThreadedGateway, build_gateway
from lienthong.connectors.kafka import kafka_python_config
from lienthong.schemas import decode
from tests.unit.connectors.gateway.support import (
    CENTER,
    KEYS,
    LAND_OFFICE,
    finished_body,
    received_body,
    write_clients,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_env(bus_env: dict[str, str], catalogue_topics, tmp_path: Path) -> dict[str, str]:
    clients = write_clients(tmp_path / "clients.toml")
    return {
        **bus_env,
        "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(clients),
        "LIENTHONG_CONNECTORS__GATEWAY__MAX_BODY_BYTES": "65536",
    }


def start_gateway(env: dict[str, str], **gateway: Any) -> ThreadedGateway:
    env = dict(env)
    for key, value in gateway.items():
        env[f"LIENTHONG_CONNECTORS__GATEWAY__{key.upper()}"] = str(value)
    return ThreadedGateway(build_gateway(load_settings(environ=env))).start()


@pytest.fixture
def gateway(gw_env):
    gw = start_gateway(gw_env)
    yield gw
    gw.stop()


def call(
    gw: ThreadedGateway,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw
        return r.status, dict(r.getheaders()), data
    finally:
        conn.close()


def post(gw, event_type: str, body: Any, agency: str | None = CENTER, **headers: str):
    h = {"Content-Type": "application/json", **headers}
    if agency:
        h["Authorization"] = f"Bearer {KEYS[agency]}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(gw, "POST", f"/v1/events/{event_type}", data, h)


def read_topic(settings, topic: str) -> list[Any]:
    """All records of a catalogue topic, start to end (manual assignment, no group)."""
    consumer = KafkaConsumer(**kafka_python_config(settings), enable_auto_commit=False)
    try:
        full = settings.topic(topic)
        tps = [TopicPartition(full, p) for p in sorted(consumer.partitions_for_topic(full) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + 20
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def event_ids(settings, topic: str = "dossier-events") -> list[str]:
    return [str(decode(r.value).envelope.event_id) for r in read_topic(settings, topic)]


def test_posted_event_reaches_the_dossier_tracker(gateway, bus_settings, start_worker):
    worker = start_worker()
    status, _, answer = post(gateway, "dossier_received", received_body("HS-GW-TRACK"))
    assert status == 202, answer
    assert answer["topic"] == bus_settings.topic("dossier-events")
    slip = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            slip = worker.get_json("/dossiers/slip?id=HS-GW-TRACK")
            break
        except OSError:
            time.sleep(0.5)
    assert slip is not None, worker.log_tail()
    assert slip["dossier_id"] == "HS-GW-TRACK"
    assert slip["status"] == "received"


def test_refusals_get_their_status_and_nothing_reaches_kafka(gw_env, bus_settings):
    accepted: list[str] = []
    with start_gateway(gw_env) as gw:
        ok = post(gw, "dossier_received", received_body("HS-GW-A"), **{"Idempotency-Key": "a1"})
        assert ok[0] == 202, ok
        accepted.append(ok[2]["event_id"])

        cases: list[tuple[tuple[int, dict[str, str], Any], int, str]] = []
        cases.append(
            (post(gw, "dossier_received", received_body(), agency=None), 401, "unauthenticated")
        )
        wrong = {"Authorization": "Bearer nope"}
        cases.append((call(gw, "POST", "/v1/events/dossier_received", b"{}", wrong), 401, ""))
        cases.append(
            (
                post(gw, "dossier_received", received_body(producer_agency=LAND_OFFICE)),
                403,
                "forbidden-producer",
            )
        )
        cases.append((post(gw, "processing_finished", finished_body()), 403, "forbidden-event"))
        cases.append((post(gw, "dossier_received", b'{"dossier_id": '), 400, "bad-json"))
        cases.append(
            (post(gw, "dossier_received", received_body(channel="fax")), 422, "validation")
        )
        replay = post(gw, "dossier_received", received_body("HS-GW-A"), **{"Idempotency-Key": "a1"})
        assert replay[0] == 202 and replay[1]["Idempotency-Replayed"] == "true"
        assert replay[2] == ok[2]
        cases.append(
            (
                post(gw, "dossier_received", received_body("HS-GW-B"), **{"Idempotency-Key": "a1"}),
                409,
                "idempotency-conflict",
            )
        )
        huge = b'{"dossier_id": "' + b"x" * (20 * 1024 * 1024) + b'"}'
        cases.append((post(gw, "dossier_received", huge), 413, "too-large"))
        cases.append(
            (
                call(
                    gw,
                    "POST",
                    "/v1/events/dossier_received",
                    json.dumps(received_body()).encode(),
                    {"Content-Type": "text/plain", "X-API-Key": KEYS[CENTER]},
                ),
                415,
                "unsupported-media-type",
            )
        )
        cases.append((post(gw, "dossier_teleported", {}), 404, "unknown-event-type"))
        for (status, headers, problem), want, kind in cases:
            assert status == want, (want, problem)
            assert headers["Content-Type"].startswith("application/problem+json")
            assert problem["status"] == want
            assert problem["type"].endswith(kind)
        _, headers, _ = cases[0][0]
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert {e["pointer"] for e in cases[5][0][2]["errors"]} == {"/channel"}
        status, _, health = call(gw, "GET", "/health")
        assert health["accepted"] == 1 and health["replayed"] == 1

    with start_gateway(gw_env, rate_per_s=1, burst=5) as flood_gw:
        answers = [
            post(flood_gw, "dossier_received", received_body(f"HS-GW-F{i}")) for i in range(12)
        ]
        statuses = [a[0] for a in answers]
        assert statuses[:5] == [202] * 5 and set(statuses[5:]) == {429}, statuses
        limited = answers[-1]
        assert int(limited[1]["Retry-After"]) >= 1
        assert limited[2]["type"].endswith("rate-limited")
        accepted += [a[2]["event_id"] for a in answers if a[0] == 202]

    assert sorted(event_ids(bus_settings)) == sorted(accepted)  # exactly these, once each
    remembered = read_topic(bus_settings, "gateway-idempotency")
    assert [r.key for r in remembered] == [f"{CENTER}|a1".encode()]


def test_idempotency_survives_a_restart(gw_env, bus_settings):
    body = received_body("HS-GW-R")
    with start_gateway(gw_env) as gw:
        first = post(gw, "dossier_received", body, **{"Idempotency-Key": "restart-1"})
        assert first[0] == 202
    with start_gateway(gw_env) as gw:  # a new process state: loads the compacted topic
        again = post(gw, "dossier_received", body, **{"Idempotency-Key": "restart-1"})
        assert again[0] == 202 and again[1]["Idempotency-Replayed"] == "true"
        assert again[2] == first[2]
        other = post(
            gw, "dossier_received", received_body("HS-X"), **{"Idempotency-Key": "restart-1"}
        )
        assert other[0] == 409
    assert event_ids(bus_settings) == [first[2]["event_id"]]


# --- no 5xx whatever is thrown at the running gateway ------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def requests(draw) -> tuple[str, str, bytes, dict[str, str]]:
    event_type = draw(
        st.sampled_from(
            [
                "dossier_received",
                "processing_finished",
                "handoff_sent",
                "deadline_overdue",
                "postal_tracking",
                "x",
                "dossier_received/extra",
            ]
        )
        | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_%./", min_size=1, max_size=20)
    )
    path = draw(
        st.sampled_from(
            [
                f"/v1/events/{event_type}",
                "/health",
                "/openapi.json",
                "/v1/events/",
                "/",
                f"/v2/{event_type}",
            ]
        )
    )
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]))
    base = received_body("HS-GW-P") if event_type == "dossier_received" else finished_body()
    mutated = dict(base)
    for name in draw(
        st.lists(
            st.sampled_from(sorted(base) + ["producer_agency", "event_id", "envelope", "extra"]),
            max_size=3,
        )
    ):
        mutated[name] = draw(_json_values)
    body_kind = draw(st.sampled_from(["valid", "mutated", "junk", "text", "bytes"]))
    body = {
        "valid": json.dumps(base).encode(),
        "mutated": json.dumps(mutated).encode(),
        "junk": json.dumps(draw(_json_values)).encode(),
        "text": draw(st.text(max_size=60)).encode("utf-8", "surrogatepass"),
        "bytes": draw(st.binary(max_size=60)),
    }[body_kind]
    headers: dict[str, str] = {}
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "application/problem+json",
                "",
                "multipart/form-data",
            ]
        )
    )
    if ctype:
        headers["Content-Type"] = ctype
    cred = draw(st.sampled_from(["center", "land", "postal", "wrong", "none", "basic", "empty"]))
    headers.update(
        {
            "center": {"Authorization": f"Bearer {KEYS[CENTER]}"},
            "land": {"X-API-Key": KEYS[LAND_OFFICE]},
            "postal": {"Authorization": f"Bearer {KEYS['postal']}"},
            "wrong": {"Authorization": "Bearer x"},
            "none": {},
            "basic": {"Authorization": "Basic"},
            "empty": {"X-API-Key": ""},
        }[cred]
    )
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
        )
    return method, path, body, headers


def test_property_no_5xx_from_random_requests(gw_env):
    with start_gateway(gw_env) as gw:

        @hsettings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests())
        def check(req):
            method, path, body, headers = req
            try:
                status, rh, data = call(
                    gw, method, path, body if method != "GET" else None, headers
                )
            except http.client.InvalidURL:
                return  # the client refuses to send it at all
            assert status < 500, (status, data, req)
            if status >= 400:
                assert rh["Content-Type"].startswith("application/problem+json"), (status, data)

        check()
        status, _, health = call(gw, "GET", "/health")
        assert status == 200 and health["status"] == "ok"


def test_gateway_reads_nothing_into_memory_beyond_the_limit(gw_env):
    """A chunked 20 MB upload (no Content-Length) is cut off at the limit while streaming."""
    with start_gateway(gw_env) as gw:
        conn = http.client.HTTPConnection("127.0.0.1", gw.server.port, timeout=30)
        try:
            chunk = b"x" * 65536

            def body():
                for _ in range(320):  # 20 MB
                    yield chunk

            conn.request(
                "POST",
                "/v1/events/dossier_received",
                body=body(),
                headers={"Content-Type": "application/json", "X-API-Key": KEYS[CENTER]},
                encode_chunked=True,
            )
            r = conn.getresponse()
            assert r.status == 413
            assert json.loads(r.read())["type"].endswith("too-large")
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail("connection cut instead of a 413 problem")
        finally:
            conn.close()
        status, _, health = call(gw, "GET", "/health")
        assert status == 200 and health["rejected"] == {"413": 1}
