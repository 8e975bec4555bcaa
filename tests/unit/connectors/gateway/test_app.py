"""The gateway's HTTP contract against a fake publisher (what would reach Kafka is recorded)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from lienthong.connectors.gateway.openapi import SPEC_FILE
from tests.unit.connectors.gateway.support import (
    CENTER,
    DISTRICT,
    LAND_OFFICE,
    TAX,
    UNREGISTERED,
    FakePublisher,
    Harness,
    auth,
    finished_body,
    make_gateway,
    make_settings,
    now_iso,
    received_body,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def h(settings):
    harness = Harness(make_gateway(settings))
    yield harness
    harness.close()


def assert_problem(status, headers, body, expected_status, kind):
    assert status == expected_status, body
    assert headers["Content-Type"].startswith(PROBLEM)
    assert body["status"] == expected_status
    assert body["type"].endswith("/" + kind)
    assert body["title"]


def test_accepts_an_event_and_answers_where_it_went(h):
    status, headers, body = h.post("dossier_received", received_body())
    assert status == 202, body
    assert set(body) == {"event_id", "topic", "partition", "offset"}
    [event] = h.published
    assert str(event.envelope.event_id) == body["event_id"]
    assert event.envelope.producer_agency == CENTER
    assert event.envelope.dossier_id == "HS-GW-0001"
    assert event.envelope.event_type == "dossier_received"
    assert body["topic"] == "dossier-events"


def test_client_event_id_trace_and_causation_are_kept(h):
    eid, cause = "6b0f5c1e-1d3c-4c1a-9a57-1f6a7c1b2d3e", "0c1b2a39-4d5e-4f60-8a1b-2c3d4e5f6a7b"
    body = received_body(event_id=eid, trace_id="trace-7", causation_id=cause)
    body["producer_agency"] = CENTER  # naming yourself is fine
    status, _, answer = h.post("dossier_received", body)
    assert status == 202, answer
    env = h.published[0].envelope
    assert (str(env.event_id), env.trace_id, str(env.causation_id)) == (eid, "trace-7", cause)


def test_api_key_header_alternative(h):
    status, _, body = h.call(
        "POST",
        "/v1/events/processing_finished",
        json=finished_body(),
        headers={"X-API-Key": "land-office-secret-0002"},
    )
    assert status == 202, body
    assert h.published[0].envelope.producer_agency == LAND_OFFICE


@pytest.mark.parametrize(
    "headers,challenge_error",
    [
        ({}, False),
        ({"Authorization": "Bearer not-a-key"}, True),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, True),
        ({"X-API-Key": ""}, True),
    ],
)
def test_missing_or_wrong_credential_is_401_with_challenge(h, headers, challenge_error):
    status, rh, body = h.post("dossier_received", received_body(), agency=None, headers=headers)
    assert_problem(status, rh, body, 401, "unauthenticated")
    assert rh["WWW-Authenticate"].startswith("Bearer")
    assert ('error="invalid_token"' in rh["WWW-Authenticate"]) is challenge_error
    assert h.published == []


def test_body_naming_another_producer_is_403(h):
    body = received_body(producer_agency=LAND_OFFICE)
    status, rh, problem = h.post("dossier_received", body)
    assert_problem(status, rh, problem, 403, "forbidden-producer")
    assert LAND_OFFICE in problem["detail"]
    assert h.published == []


@pytest.mark.parametrize(
    "agency,event_type",
    [
        (LAND_OFFICE, "dossier_received"),  # departments do not receive dossiers
        (CENTER, "processing_finished"),  # the center does not decide
        (TAX, "result_returned"),
        (CENTER, "deadline_overdue"),  # bus-produced
        (CENTER, "live_stats_snapshot"),
        (CENTER, "postal_tracking"),  # only the postal client
    ],
)
def test_role_refusal_is_403_naming_the_event_kind(h, agency, event_type):
    status, rh, problem = h.post(event_type, {"dossier_id": "x"}, agency=agency)
    assert_problem(status, rh, problem, 403, "forbidden-event")
    assert problem["event_type"] == event_type
    assert event_type in problem["detail"]
    assert h.published == []


def test_district_plays_both_roles_and_postal_client_only_tracks(h):
    body = received_body(receiving_agency=DISTRICT)
    assert h.post("dossier_received", body, agency=DISTRICT)[0] == 202
    assert h.post("processing_finished", finished_body(agency=DISTRICT), agency=DISTRICT)[0] == 202
    tracking = {
        "dossier_id": "HS-GW-0001",
        "occurred_at": now_iso(-1),
        "tracking_code": "EP123456789VN",
        "kind": "collected",
        "place": "Phường 1",
        "scanned_at": now_iso(-1),
    }
    assert h.post("postal_tracking", tracking, agency="postal")[0] == 202
    assert h.post("dossier_received", received_body(), agency="postal")[0] == 403


def test_handoff_must_be_sent_by_its_from_agency(h):
    handoff = {
        "dossier_id": "HS-GW-0001",
        "occurred_at": now_iso(-1),
        "handoff_id": "HO-1",
        "from_agency": LAND_OFFICE,
        "to_agency": TAX,
        "step": 1,
        "step_due_at": now_iso(86400),
    }
    status, rh, problem = h.post("handoff_sent", handoff, agency=CENTER)
    assert_problem(status, rh, problem, 403, "forbidden-event")
    assert h.post("handoff_sent", handoff, agency=LAND_OFFICE)[0] == 202


def test_unknown_event_type_and_unknown_path_are_404_problems(h):
    status, rh, problem = h.post("dossier_teleported", received_body())
    assert_problem(status, rh, problem, 404, "unknown-event-type")
    status, rh, problem = h.call("GET", "/nowhere")
    assert_problem(status, rh, problem, 404, "not-found")
    status, rh, problem = h.call("GET", "/v1/events/dossier_received", headers=auth(CENTER))
    assert_problem(status, rh, problem, 405, "method-not-allowed")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""]
)
def test_non_json_content_type_is_415(h, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, rh, problem = h.post(
        "dossier_received", None, data=json.dumps(received_body()).encode(), headers=headers
    )
    assert_problem(status, rh, problem, 415, "unsupported-media-type")
    assert h.published == []


def test_json_subtypes_are_fine(h):
    status, _, _ = h.post(
        "dossier_received",
        None,
        data=json.dumps(received_body()).encode(),
        headers={"Content-Type": "application/vnd.lienthong+json; charset=utf-8"},
    )
    assert status == 202


@pytest.mark.parametrize("data", [b"{", b"not json", b"\xff\xfe{}", b"", b'{"a": NaN'])
def test_invalid_json_is_400(h, data):
    status, rh, problem = h.post(
        "dossier_received", None, data=data, headers={"Content-Type": "application/json"}
    )
    assert_problem(status, rh, problem, 400, "bad-json")
    assert h.published == []


def test_body_over_the_limit_is_413_by_length_and_by_stream(tmp_path):
    h = Harness(make_gateway(make_settings(tmp_path, max_body_bytes=4096)))
    try:
        big = json.dumps(received_body(note="x" * 10_000)).encode()
        status, rh, problem = h.post(
            "dossier_received", None, data=big, headers={"Content-Type": "application/json"}
        )
        assert_problem(status, rh, problem, 413, "too-large")

        async def chunks():
            for _ in range(10):
                yield b" " * 1000

        status, rh, problem = h.post(
            "dossier_received", None, data=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_problem(status, rh, problem, 413, "too-large")
        assert h.published == []
    finally:
        h.close()


def test_schema_violations_are_422_with_pointers_and_rules(h):
    body = received_body(channel="fax", unexpected=1)
    del body["occurred_at"]
    body["subject"] = {"kind": "citizen", "identifier_hash": "nothex"}
    body["appointment_at"] = "2026-03-01T08:00:00"  # naive
    status, rh, problem = h.post("dossier_received", body)
    assert_problem(status, rh, problem, 422, "validation")
    found = {(e["pointer"], e["rule"]) for e in problem["errors"]}
    assert ("/occurred_at", "missing") in found
    assert ("/channel", "enum") in found
    assert ("/unexpected", "extra_forbidden") in found
    assert ("/subject/identifier_hash", "string_pattern_mismatch") in found
    assert ("/appointment_at", "value_error") in found
    assert all(e["detail"] for e in problem["errors"])
    assert h.published == []


def test_missing_dossier_id_and_non_object_body(h):
    body = received_body()
    del body["dossier_id"]
    status, rh, problem = h.post("dossier_received", body)
    assert_problem(status, rh, problem, 422, "validation")
    assert {"pointer": "/dossier_id", "rule": "missing", "detail": "Field required"} in problem[
        "errors"
    ]
    status, rh, problem = h.post("dossier_received", [1, 2])
    assert_problem(status, rh, problem, 422, "validation")
    assert problem["errors"][0]["pointer"] == ""


def test_policy_unknown_agency_and_future_skew_are_422(h):
    status, rh, problem = h.post("dossier_received", received_body(receiving_agency=UNREGISTERED))
    assert_problem(status, rh, problem, 422, "validation")
    assert problem["errors"][0]["pointer"] == "/receiving_agency"
    assert problem["errors"][0]["rule"] == "unknown_agency"
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    status, rh, problem = h.post("dossier_received", received_body(occurred_at=ahead))
    assert_problem(status, rh, problem, 422, "validation")
    assert problem["errors"][0] == {
        "pointer": "/occurred_at",
        "rule": "future_event",
        "detail": problem["errors"][0]["detail"],
    }
    assert h.published == []


def test_same_key_same_body_replays_and_publishes_once(h):
    body = received_body()
    first = h.post("dossier_received", body, headers={"Idempotency-Key": "k-1"})
    second = h.post(
        "dossier_received", dict(reversed(body.items())), headers={"Idempotency-Key": "k-1"}
    )
    assert first[0] == second[0] == 202
    assert first[2] == second[2]
    assert "Idempotency-Replayed" not in first[1]
    assert second[1]["Idempotency-Replayed"] == "true"
    assert len(h.published) == 1
    # remembered on the compacted topic under agency|key, with the digest and the answer
    [(key, value)] = h.gateway.publisher.remembered
    assert key == f"{CENTER}|k-1"
    assert json.loads(value)["answer"] == first[2]


def test_same_key_different_body_is_409(h):
    h.post("dossier_received", received_body(), headers={"Idempotency-Key": "k-2"})
    status, rh, problem = h.post(
        "dossier_received",
        received_body(procedure_code="2.000001"),
        headers={"Idempotency-Key": "k-2"},
    )
    assert_problem(status, rh, problem, 409, "idempotency-conflict")
    assert len(h.published) == 1


def test_keys_are_scoped_per_agency(h):
    h.post("dossier_received", received_body(), headers={"Idempotency-Key": "shared"})
    status, _, _ = h.post(
        "processing_finished",
        finished_body(),
        agency=LAND_OFFICE,
        headers={"Idempotency-Key": "shared"},
    )
    assert status == 202
    assert len(h.published) == 2


def test_event_id_is_the_key_without_a_header(h):
    eid = "5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    body = received_body(event_id=eid)
    a = h.post("dossier_received", body)
    b = h.post("dossier_received", body)
    assert a[2] == b[2] and b[1]["Idempotency-Replayed"] == "true"
    assert len(h.published) == 1


def test_derived_event_id_is_stable_per_key(h):
    body = received_body()
    a = h.post("dossier_received", body, headers={"Idempotency-Key": "stable"})
    h.gateway.store._done.clear()  # forget the answer (e.g. lost record): same event id again
    b = h.post("dossier_received", body, headers={"Idempotency-Key": "stable"})
    assert a[2]["event_id"] == b[2]["event_id"]


def test_concurrent_duplicates_publish_once(settings):
    publisher = FakePublisher()
    publisher.delay = 0.2
    h = Harness(make_gateway(settings, publisher))
    try:
        body = received_body()
        call = (
            "POST",
            "/v1/events/dossier_received",
            {"json": body, "headers": {**auth(CENTER), "Idempotency-Key": "race"}},
        )
        results = h.gather(call, call, call)
        assert sorted(r[0] for r in results) == [202, 202, 202]
        assert len({r[2]["event_id"] for r in results}) == 1
        assert sum(r[1].get("Idempotency-Replayed") == "true" for r in results) == 2
        assert len(publisher.events) == 1
    finally:
        h.close()


def test_broker_failure_is_503_and_nothing_is_remembered(settings):
    publisher = FakePublisher()
    publisher.fail = True
    h = Harness(make_gateway(settings, publisher))
    try:
        status, rh, problem = h.post(
            "dossier_received", received_body(), headers={"Idempotency-Key": "b"}
        )
        assert_problem(status, rh, problem, 503, "unavailable")
        assert publisher.remembered == []
        publisher.fail = False  # the retry with the same key goes through
        status, rh, body = h.post(
            "dossier_received", received_body(), headers={"Idempotency-Key": "b"}
        )
        assert status == 202 and "Idempotency-Replayed" not in rh
        assert len(publisher.events) == 1
    finally:
        h.close()


def test_flood_is_429_with_retry_after(tmp_path):
    h = Harness(make_gateway(make_settings(tmp_path, rate_per_s=1, burst=3)))
    try:
        statuses = [h.post("dossier_received", received_body(f"HS-{i}"))[0] for i in range(3)]
        assert statuses == [202, 202, 202]
        status, rh, problem = h.post("dossier_received", received_body("HS-9"))
        assert_problem(status, rh, problem, 429, "rate-limited")
        assert int(rh["Retry-After"]) >= 1
        # another agency has its own bucket
        assert h.post("processing_finished", finished_body(), agency=LAND_OFFICE)[0] == 202
        assert len(h.published) == 4
    finally:
        h.close()


def test_health_counts_accepted_replayed_and_rejected(h):
    h.post("dossier_received", received_body(), headers={"Idempotency-Key": "h"})
    h.post("dossier_received", received_body(), headers={"Idempotency-Key": "h"})
    h.post("dossier_received", received_body(), agency=None)
    h.post("dossier_received", {"dossier_id": "x"})
    status, _, health = h.call("GET", "/health")
    assert status == 200
    assert health["status"] == "ok"
    assert health["accepted"] == 1 and health["replayed"] == 1
    assert health["rejected"] == {"401": 1, "422": 1}


def test_openapi_is_served_and_matches_the_committed_file(h):
    status, rh, spec = h.call("GET", "/openapi.json")
    assert status == 200
    assert spec["openapi"] == "3.1.0"
    assert spec == json.loads(SPEC_FILE.read_text(encoding="utf-8"))


def test_every_request_logs_one_line(settings):
    stream = io.StringIO()
    gateway = make_gateway(settings, access_log=stream)
    h = Harness(gateway)
    access = logging.getLogger("lienthong.connectors.gateway.access")
    access.setLevel(logging.INFO)  # as LIENTHONG_LOG_LEVEL=INFO does
    try:
        h.post("dossier_received", received_body("HS-LOG"))
        h.post("dossier_received", received_body(), agency=None)
    finally:
        access.setLevel(logging.NOTSET)
        h.close()
    gateway.access_stream.drain()  # lines are written in batches, at the latest on stop
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == len(lines) == 2
    ok, refused = requests
    assert ok["agency"] == CENTER and ok["event_type"] == "dossier_received"
    assert ok["dossier_id"] == "HS-LOG" and ok["status"] == 202 and ok["event_id"]
    assert ok["component"] == "gateway" and ok["level"] == "info" and ok["timestamp"]
    assert isinstance(ok["latency_ms"], float)
    assert refused["status"] == 401 and refused["agency"] is None
