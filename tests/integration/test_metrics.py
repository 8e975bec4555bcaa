"""``GET /metrics`` of a real worker and the gateway after a small scenario on the real broker.

Requests go through the gateway (accepted, refused, and one the tracker must reject), a worker
applies them; both are scraped and their documented families checked for plausible values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lienthong.config import load_settings
from lienthong.connectors.gateway.app import ThreadedGateway, build_gateway
from tests.support.metrics import Samples, scrape, total
from tests.support.waiting import wait_for
from tests.unit.connectors.gateway.support import (
    CENTER,
    LAND_OFFICE,
    finished_body,
    received_body,
    write_clients,
)

pytestmark = pytest.mark.integration


def test_worker_and_gateway_metrics_after_a_scenario(
    bus_env: dict[str, str], catalogue_topics, tmp_path: Path, start_worker
) -> None:
    from tests.integration.test_gateway import post

    env = {
        **bus_env,
        "LIENTHONG_CONNECTORS__GATEWAY__CLIENTS_FILE": str(write_clients(tmp_path / "c.toml")),
    }
    worker = start_worker()
    gateway = ThreadedGateway(build_gateway(load_settings(environ=env))).start()
    try:
        sent = 5
        for n in range(sent):
            status, _, answer = post(gateway, "dossier_received", received_body(f"HS-MX-{n}"))
            assert status == 202, answer
        status, _, _ = post(gateway, "dossier_received", received_body("HS-MX-X"), agency=None)
        assert status == 401
        # Finished before received: the tracker rejects it (UnknownDossier) and dead-letters it.
        status, _, answer = post(
            gateway, "processing_finished", finished_body("HS-MX-GHOST"), agency=LAND_OFFICE
        )
        assert status == 202, answer

        ctype, gw = scrape(gateway.url)
        assert ctype.startswith("text/plain")
        assert total(gw, "lienthong_gateway_requests_total", status="202", agency=CENTER) == sent
        assert total(gw, "lienthong_gateway_requests_total", status="202") == sent + 1
        assert total(gw, "lienthong_gateway_requests_total", status="401", agency="none") == 1
        assert total(gw, "lienthong_gateway_accept_seconds_count") == sent + 1
        assert total(gw, "lienthong_gateway_accept_seconds_sum") > 0
        assert total(gw, "process_resident_memory_bytes") > 10_000_000

        def worker_done() -> Samples | None:
            _, samples = scrape(worker.url)
            processed = total(samples, "lienthong_events_processed_total")
            rejected = total(samples, "lienthong_dead_letters_total")
            return samples if processed >= sent and rejected >= 1 else None

        wk = wait_for(worker_done, 90, "worker counting the scenario")
        assert total(wk, "lienthong_events_processed_total", event_type="dossier_received") == sent
        assert total(wk, "lienthong_events_rejected_total", reason="UnknownDossier") == 1, (
            "the ghost finish is rejected by the rules"
        )
        assert (
            total(
                wk,
                "lienthong_dead_letters_total",
                source="streams.tracker",
                error_class="UnknownDossier",
            )
            == 1
        )
        latency = total(wk, "lienthong_event_to_portal_record_seconds_count")
        assert latency == sent
        assert 0 < total(wk, "lienthong_event_to_portal_record_seconds_sum") < 60 * sent
        assert total(wk, "lienthong_component_info", component="worker") == 1
        assert total(wk, "process_cpu_seconds_total") > 0

        events_topic = catalogue_topics["dossier-events"]

        def lag_drained() -> Samples | None:
            _, samples = scrape(worker.url)
            rows = {
                ls: v
                for (n, ls), v in samples.items()
                if n == "lienthong_consumer_lag" and ("topic", events_topic) in ls
            }
            # Every partition reported (a partition shows once this worker committed on it,
            # or at once when empty) and none behind.
            return samples if len(rows) == 6 and sum(rows.values()) == 0 else None

        # Lag per partition of dossier-events reaches 0 once the worker has committed.
        lag = wait_for(lag_drained, 60, "dossier-events lag of 0")
        partitions = {
            dict(ls)["partition"]
            for (n, ls) in lag
            if n == "lienthong_consumer_lag" and ("topic", events_topic) in ls
        }
        assert len(partitions) == 6
    finally:
        gateway.stop()
