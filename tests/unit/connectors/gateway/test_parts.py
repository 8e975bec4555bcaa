"""Roles, credentials, token buckets and the idempotency table on their own."""

from __future__ import annotations

import asyncio
import json

import pytest

from lienthong.connectors.gateway.auth import (
    Authenticator,
    ClientsFileError,
    parse_clients,
    presented_key,
)
from lienthong.connectors.gateway.idempotency import (
    IdempotencyStore,
    encode_value,
    request_digest,
)
from lienthong.connectors.gateway.ratelimit import TokenBuckets
from lienthong.domain.agencies import AgencyLevel
from lienthong.domain.roles import (
    BUS_ONLY,
    EXTERNAL_EVENT_TYPES,
    Role,
    allowed_event_types,
    check_publish,
    roles_for_level,
)
from lienthong.schemas.models import MODELS_BY_EVENT_TYPE
from tests.unit.connectors.gateway.support import CENTER, KEYS, LAND_OFFICE, TAX, sha

# --- roles ---------------------------------------------------------------------------------


def test_every_event_kind_is_either_bus_only_or_publishable_by_someone():
    assert set(MODELS_BY_EVENT_TYPE) == BUS_ONLY | EXTERNAL_EVENT_TYPES
    assert not BUS_ONLY & EXTERNAL_EVENT_TYPES


@pytest.mark.parametrize("level", list(AgencyLevel))
def test_no_level_may_publish_bus_only_or_postal_tracking(level):
    allowed = allowed_event_types(roles_for_level(level))
    assert not allowed & BUS_ONLY
    assert "postal_tracking" not in allowed


def test_service_center_and_processing_rules():
    center = roles_for_level(AgencyLevel.PROVINCE_CENTER)
    dept = roles_for_level(AgencyLevel.DEPARTMENT)
    central = roles_for_level(AgencyLevel.CENTRAL)
    for kind in (
        "dossier_received",
        "intake_refused",
        "supplement_received",
        "result_returned",
        "dossier_withdrawn",
        "postal_order_requested",
        "handoff_sent",
    ):
        assert kind in allowed_event_types(center)
        assert check_publish(center, CENTER, kind) is None
    for kind in (
        "supplement_requested",
        "fee_requested",
        "processing_finished",
        "processing_stopped",
        "handoff_accepted",
        "handoff_returned",
    ):
        assert kind in allowed_event_types(dept)
        assert kind in allowed_event_types(central)
        if not kind.startswith(("handoff_", "supplement_")):  # center: handoffs, supplements
            assert kind not in allowed_event_types(center)
    assert "dossier_received" not in allowed_event_types(dept)
    assert "dossier_received" not in allowed_event_types(central)
    assert roles_for_level("district") == {Role.SERVICE_CENTER, Role.PROCESSING}
    assert allowed_event_types({Role.POSTAL}) == {"postal_tracking"}


def test_denials_name_the_kind_and_the_reason():
    denial = check_publish(roles_for_level("central"), TAX, "apology_issued")
    assert denial is not None and denial.event_type == "apology_issued"
    assert "bus" in denial.reason
    denial = check_publish(roles_for_level("department"), LAND_OFFICE, "dossier_received")
    assert denial is not None and "dossier_received" in denial.reason
    accept = {"from_agency": CENTER, "to_agency": TAX}
    assert check_publish(roles_for_level("central"), TAX, "handoff_accepted", accept) is None
    denial = check_publish(roles_for_level("department"), LAND_OFFICE, "handoff_accepted", accept)
    assert denial is not None and "to_agency" in denial.reason


# --- credentials ---------------------------------------------------------------------------


def clients_toml(**extra: str) -> str:
    lines = ["[[client]]", f'agency = "{CENTER}"', f'api_key_sha256 = "{sha(KEYS[CENTER])}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def test_clients_file_maps_keys_and_certs_to_agencies():
    clients = parse_clients(clients_toml(cert_sha256=f'"{"AB:" * 31}AB"'), "c.toml")
    auth = Authenticator(clients)
    assert auth.by_api_key(KEYS[CENTER]).agency == CENTER
    assert auth.by_api_key("wrong") is None
    assert auth.by_api_key(KEYS[CENTER] + " ") is None
    assert clients[0].cert_sha256 == "ab" * 32
    assert clients[0].roles == {Role.SERVICE_CENTER}


@pytest.mark.parametrize(
    "text,message",
    [
        ('[[client]]\nagency = "999.99.99.H10"\napi_key_sha256 = "' + "0" * 64 + '"', "registry"),
        ('[[client]]\nagency = "000.00.01.H10"', "needs api_key_sha256"),
        ('[[client]]\nagency = "000.00.01.H10"\napi_key_sha256 = "secret"', "64 hex"),
        (clients_toml(role='"mayor"'), "role"),
        (clients_toml(api_key='"plain"'), "unknown field"),
        ("[[client]\n", "not valid TOML"),
    ],
)
def test_bad_clients_file_names_the_problem(text, message):
    with pytest.raises(ClientsFileError, match=message):
        parse_clients(text, "c.toml")


def test_presented_key_forms():
    assert presented_key({"Authorization": "Bearer abc"}) == "abc"
    assert presented_key({"Authorization": "bearer  abc "}) == "abc"
    assert presented_key({"Authorization": "Basic abc"}) == ""
    assert presented_key({"X-API-Key": "k"}) == "k"
    assert presented_key({}) is None


# --- token buckets --------------------------------------------------------------------------


def test_token_bucket_allows_burst_then_rate():
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [None, None, None]
    wait = buckets.take("a")
    assert wait == pytest.approx(0.5)
    assert buckets.take("b") is None  # own bucket
    now[0] += 0.5
    assert buckets.take("a") is None
    assert buckets.take("a") is not None
    now[0] += 100
    assert [buckets.take("a") for _ in range(4)].count(None) == 3  # never more than burst
    assert TokenBuckets.retry_after_header(0.01) == "1"
    assert TokenBuckets.retry_after_header(2.2) == "3"


# --- idempotency table -------------------------------------------------------------------


def test_digest_ignores_key_order_but_not_values_or_type():
    a = request_digest("x", {"a": 1, "b": [1, 2]})
    assert a == request_digest("x", {"b": [1, 2], "a": 1})
    assert a != request_digest("x", {"a": 2, "b": [1, 2]})
    assert a != request_digest("y", {"a": 1, "b": [1, 2]})


def test_store_expires_and_reloads_from_records():
    now = [1000.0]
    store = IdempotencyStore(ttl_s=60, clock=lambda: now[0])
    entry = store.new_entry("d", {"event_id": "e"})
    old = IdempotencyStore(ttl_s=1, clock=lambda: now[0] - 10).new_entry("d", {"event_id": "o"})
    kept = store.load(
        [
            (b"A|k1", encode_value(entry)),
            (b"A|k2", encode_value(old)),  # expired
            (b"A|k3", b"not json"),
            (b"A|k4", encode_value(entry)),
            (b"A|k4", None),  # tombstone
        ]
    )
    assert kept == 1
    assert store.lookup("A|k1").answer == {"event_id": "e"}
    now[0] += 61
    assert store.lookup("A|k1") is None
    assert json.loads(encode_value(entry))["digest"] == "d"


def test_second_claim_waits_for_the_first():
    async def scenario():
        store = IdempotencyStore(ttl_s=60)
        assert await store.claim("k") is None
        waiter = asyncio.create_task(store.claim("k"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        store.release("k", store.new_entry("d", {"event_id": "1"}))
        return await waiter

    assert asyncio.run(scenario()).answer == {"event_id": "1"}


def test_failed_first_claim_lets_the_second_run():
    async def scenario():
        store = IdempotencyStore(ttl_s=60)
        await store.claim("k")
        waiter = asyncio.create_task(store.claim("k"))
        await asyncio.sleep(0.01)
        store.release("k")  # refused / broker failure: nothing remembered
        return await waiter

    assert asyncio.run(scenario()) is None


def test_journal_record_carries_several_keys_and_loads_back() -> None:
    from lienthong.connectors.gateway.idempotency import (
        Remembered,
        decode_journal,
        encode_journal,
        encode_value,
    )

    now = 1_000.0
    live = Remembered("ab" * 32, {"event_id": "e1", "offset": 3}, now + 60)
    expired = Remembered("cd" * 32, {"event_id": "e2"}, now - 1)
    record = encode_journal(
        [(f"{CENTER}|k-1", encode_value(live)), (f'{CENTER}|k "2"', encode_value(expired))]
    )
    assert json.loads(record)["entries"][1]["key"] == f'{CENTER}|k "2"'
    assert decode_journal("ignored", record) == [
        (f"{CENTER}|k-1", live),
        (f'{CENTER}|k "2"', expired),
    ]
    store = IdempotencyStore(3600, clock=lambda: now)
    # A journal record and a single-entry record (keyed by its own key) both load.
    single = Remembered("ef" * 32, {"event_id": "e3"}, now + 60)
    assert store.load([(b"x", record), (f"{LAND_OFFICE}|k-3".encode(), encode_value(single))]) == 2
    assert store.lookup(f"{CENTER}|k-1") == live
    assert store.lookup(f'{CENTER}|k "2"') is None  # expired entries are not remembered
    assert store.lookup(f"{LAND_OFFICE}|k-3") == single
