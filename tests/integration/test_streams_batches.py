"""Outputs in real batches, changelogs one record per batch where the broker needs it.

Why: Tansu 0.6 answers ListOffsets with the last batch's base offset + 1 for a batch of several
records, and Faust's table recovery reads a changelog up to that answer; only changelog topics
need single-record batches there (streams.app). Checked on the stored batches themselves, and
by restarting a worker: it must restore every dossier from the single-record changelog.
"""

from __future__ import annotations

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.registry import registry_from_settings
from tests.integration.test_streams_replay import generate_month
from tests.integration.test_streams_scenarios import REPLAY, publish
from tests.support.batches import batch_footprint
from tests.support.waiting import wait_for


def test_outputs_are_batched_and_changelogs_restore_after_a_restart(
    kafka_bootstrap, catalogue_topics, bus_env, bus_settings, start_worker
):
    codec = AvroCodec(registry_from_settings(bus_settings))
    script = generate_month(120, seed=5)
    events = script.ordered()
    publish(kafka_bootstrap, catalogue_topics, codec, events)
    worker = start_worker(REPLAY)
    portal = catalogue_topics["portal-status"]
    wait_for(
        lambda: batch_footprint(kafka_bootstrap, portal)[0] >= len(events),
        180,
        "a portal record per event",
        worker.log_tail,
        1.0,
    )
    worker.wait_caught_up(120)
    records, batches, _ = batch_footprint(kafka_bootstrap, portal)
    assert records == len(events)
    assert batches < records / 2, (records, batches)  # outputs go in real batches
    changelog = f"{bus_env['LIENTHONG_WORKER__APP_ID']}-dossiers-changelog"
    saved, saved_batches, _ = batch_footprint(kafka_bootstrap, changelog)
    assert saved >= len({e.envelope.dossier_id for e, _ in events})
    if bus_env["LIENTHONG_WORKER__SINGLE_RECORD_BATCHES"] == "true":
        assert saved_batches == saved  # the embedded broker's workaround, changelogs only
    dossier = events[-1][0].envelope.dossier_id
    before = worker.get_json(f"/dossiers/slip?id={dossier}")
    totals = worker.get_json("/stats?period=month:2025-03")["totals"]
    worker.kill()

    # A new worker restores the tables from the changelogs and answers the same.
    again = start_worker(REPLAY)
    wait_for(
        lambda: again.get_json(f"/dossiers/slip?id={dossier}") == before,
        120,
        "the restored dossier's slip",
        again.log_tail,
    )
    wait_for(
        lambda: again.get_json("/stats?period=month:2025-03")["totals"] == totals,
        120,
        "the restarted worker's counts",
        again.log_tail,
    )
