"""A whole dossier life published through the typed SDK on a real broker, read back decoded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công tỉnh
LAND = "000.01.11.H10"  # Văn phòng Đăng ký đất đai
TAX = "000.00.60.H10"  # Cục Thuế tỉnh


def test_full_dossier_life_through_the_sdk(
    bus_env, bus_settings, catalogue_topics, tmp_path: Path
) -> None:
    from lienthong import schemas
    from lienthong.config import load_settings
    from lienthong.connectors.sdk import BusClient, BusProducer
    from lienthong.documents.pki import TrustAnchors, init_dev_pki
    from lienthong.documents.store import FilesystemStore, parse_reference
    from lienthong.documents.verify import verify_detached
    from lienthong.simulators.verify import read_topic

    settings = load_settings(environ={**bus_env, "LIENTHONG_IDENTIFIER_SALT": "sdk-test-salt-0123"})
    pki = init_dev_pki(tmp_path / "pki", "Bến Tre", [(CENTER, "Trung tâm"), (LAND, "VPĐK")])
    store = FilesystemStore(tmp_path / "store")
    dossier = "H10-SDK-0001"
    now = datetime.now(UTC)
    codec = schemas.AvroCodec(schemas.registry_from_settings(settings))  # the test's run dir
    producer = BusProducer(settings, codec=codec)
    try:
        center = BusClient(producer, agency=CENTER, store=store, signer=pki.signer(CENTER))
        land = BusClient(producer, agency=LAND, store=store, signer=pki.signer(LAND))
        tax = BusClient(producer, agency=TAX)
        pickup = center.order_postal_pickup(dossier, recipient_name="Trần Thị B", address="Ba Tri")
        received = center.publish_received(
            dossier, procedure_code="1.004227", subject_id="001234567890", channel="postal"
        )
        sent = center.hand_off(
            dossier,
            handoff_id=f"{dossier}/1",
            to_agency=LAND,
            step=1,
            step_due_at=now + timedelta(days=3),
            caused_by=received,
        )
        land.accept_handoff(
            dossier, handoff_id=f"{dossier}/1", from_agency=CENTER, step=1, caused_by=sent
        )
        land.request_supplement(dossier, reason="thiếu bản đồ", documents=["ban-do"])
        center.receive_supplement(dossier, documents=["ban-do"])
        tax.request_fee(dossier, obligation="tax", amount_vnd=1_200_000, description="LPTB")
        tax.fee_paid(dossier, obligation="tax", amount_vnd=1_200_000, payment_ref="KB-77")
        land.return_handoff(
            dossier, handoff_id=f"{dossier}/1", from_agency=CENTER, step=1, outcome="completed"
        )
        content = b"%PDF-1.7\nGiay chung nhan\n%%EOF\n"
        published = land.publish_document(
            dossier, document_id="GCN-1", content=content, media_type="application/pdf"
        )
        signed = land.sign_document(
            dossier, document_id="GCN-1", content_sha256=published.content_sha256
        )
        center.finish_processing(dossier, outcome="approved", result_document_id="GCN-1")
        pending = center.return_result(
            dossier, method="post", postal_tracking_code="EMS1", wait=False
        )
        center.order_postal_delivery(dossier, recipient_name="Trần Thị B", address="Ba Tri")
        pending.get(10)
    finally:
        producer.close()

    events = [codec.decode(r.value) for r in read_topic(settings, "dossier-events", 10.0)]
    assert [e.EVENT_TYPE for e in events] == [
        "dossier_received",
        "handoff_sent",
        "handoff_accepted",
        "supplement_requested",
        "supplement_received",
        "fee_requested",
        "fee_paid",
        "handoff_returned",
        "processing_finished",
        "result_returned",
    ]
    assert all(e.envelope.dossier_id == dossier for e in events)
    assert events[1].envelope.trace_id == received.envelope.trace_id
    assert events[2].envelope.causation_id == sent.envelope.event_id
    assert {e.envelope.producer_agency for e in events} == {CENTER, LAND, TAX}
    orders = [codec.decode(r.value) for r in read_topic(settings, "postal-orders", 10.0)]
    assert [(o.kind, o.order_id) for o in orders] == [
        ("pickup", f"{dossier}/pickup"),
        ("delivery", f"{dossier}/delivery"),
    ]
    assert orders[0] == pickup
    docs = [codec.decode(r.value) for r in read_topic(settings, "documents", 10.0)]
    assert docs == [published, signed]
    assert store.get_bytes(published.content_sha256) == content
    signature = store.get_bytes(parse_reference(signed.signature_ref))
    result = verify_detached(
        bytes.fromhex(published.content_sha256),
        signature,
        TrustAnchors.from_dir(pki.dir / "trust"),
        expected_signer=LAND,
        require_crl=False,
    )
    assert result.ok, result
