"""The stream agent's decisions with real keys and a real store (no Kafka): reasons, state, chain."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from lienthong.cli.documents import dossier_listing
from lienthong.documents.canonical import canonical_json
from lienthong.documents.chain import build_chain, sign_checkpoint, verify_chain
from lienthong.documents.pipeline import (
    QUARANTINED,
    RECEIPT_REF_HEADER,
    RECEIPT_SIGNATURE_REF_HEADER,
    VERIFIED,
    TrustCache,
    apply_verdict,
    check_receipt,
    check_signed,
    dossier_view,
    new_state,
    record_published,
)
from lienthong.documents.pki import DevPKI
from lienthong.documents.receipts import Receipt, sign_receipt
from lienthong.documents.sign import SignedDocument, store_and_sign
from lienthong.documents.store import FilesystemStore
from lienthong.documents.trail import checkpoint_value, collect_trail, link_value
from lienthong.schemas import DocumentPublished, DocumentReceipt, DocumentSigned
from tests.unit.documents.helpers import AGENCY_A, AGENCY_B

DOSSIER = "H10-UNIT-0001"
NOW = dt.datetime.now(dt.UTC)


def _sign(store: FilesystemStore, pki: DevPKI, agency: str = AGENCY_A) -> SignedDocument:
    return store_and_sign(store, [b"%PDF " + uuid.uuid4().bytes * 64], pki.signer(agency))


def _events(
    signed: SignedDocument, agency: str = AGENCY_A
) -> tuple[DocumentPublished, DocumentSigned]:
    common = {"dossier_id": DOSSIER, "producer_agency": agency, "occurred_at": NOW}
    published = DocumentPublished.create(
        **common,
        document_id="D1",
        content_sha256=signed.document.digest,
        size_bytes=signed.document.size,
        media_type="application/pdf",
        storage_ref=signed.document.ref,
    )
    signed_event = DocumentSigned.create(
        **common,
        document_id="D1",
        content_sha256=signed.document.digest,
        signature_ref=signed.signature.ref,
        signer_cert_sha256=signed.signer_certificate_sha256,
        signed_at=signed.signed_at,
    )
    return published, signed_event


def _accepted(store: FilesystemStore, pki: DevPKI) -> tuple[dict, SignedDocument]:
    signed = _sign(store, pki)
    published, signed_event = _events(signed)
    state = new_state()
    record_published(state, published)
    verdict = check_signed(state, signed_event, store, pki.trust())
    assert verdict.ok, verdict
    apply_verdict(state, verdict, NOW)
    state["first_record"] = verdict.chain_record
    return state, signed


def _receipt_event(
    signed: SignedDocument, pki: DevPKI, store: FilesystemStore, *, acknowledged: str | None = None
) -> tuple[DocumentReceipt, dict[str, bytes]]:
    receipt = sign_receipt(
        Receipt(
            DOSSIER, acknowledged or signed.document.digest, signed.document.size, AGENCY_B, NOW
        ),
        pki.signer(AGENCY_B),
        store,
    )
    assert receipt.receipt_object and receipt.signature_object
    event = DocumentReceipt.create(
        dossier_id=DOSSIER,
        producer_agency=AGENCY_B,
        occurred_at=NOW,
        document_id="D1",
        receiving_agency=AGENCY_B,
        received_sha256=signed.document.digest,
        received_at=NOW,
    )
    headers = {
        RECEIPT_REF_HEADER: receipt.receipt_object.ref.encode(),
        RECEIPT_SIGNATURE_REF_HEADER: receipt.signature_object.ref.encode(),
    }
    return event, headers


def test_valid_document_chains_like_build_chain(pki: DevPKI, store: FilesystemStore) -> None:
    state, signed = _accepted(store, pki)
    doc = state["documents"]["D1"]
    assert doc["status"] == VERIFIED and doc["signer_agency"] == AGENCY_A
    event, headers = _receipt_event(signed, pki, store)
    verdict = check_receipt(state, event, headers, store, pki.trust())
    assert verdict.ok, verdict
    index, link = apply_verdict(state, verdict, NOW) or (None, None)
    assert index == 1
    assert [a["agency"] for a in state["documents"]["D1"]["acks"]] == [AGENCY_B]
    assert state["chain"]["head"] == link
    # The stream's incremental links are the library's chain formula.
    assert verdict.chain_record is not None
    expected = build_chain([state["first_record"], verdict.chain_record])
    assert [e.link for e in expected][-1] == link
    assert dossier_view(DOSSIER, state)["flagged"] is False


def test_v2_receipt_carries_its_references_as_fields(pki: DevPKI, store: FilesystemStore) -> None:
    """Schema v2 moved the signed-receipt references from headers into the event."""
    state, signed = _accepted(store, pki)
    event, headers = _receipt_event(signed, pki, store)
    v2 = event.model_copy(
        update={
            "receipt_ref": headers[RECEIPT_REF_HEADER].decode(),
            "receipt_signature_ref": headers[RECEIPT_SIGNATURE_REF_HEADER].decode(),
        }
    )
    assert check_receipt(state, v2, {}, store, pki.trust()).ok
    missing = check_receipt(state, event, {}, store, pki.trust())
    assert (missing.ok, missing.reason) == (False, "receipt_malformed")
    assert "receipt_ref" in missing.detail and RECEIPT_REF_HEADER in missing.detail


def test_tampered_store_is_hash_mismatch(pki: DevPKI, store: FilesystemStore) -> None:
    signed = _sign(store, pki)
    path = store.path_of(signed.document.digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[7] ^= 0xFF
    path.write_bytes(bytes(data))
    published, signed_event = _events(signed)
    state = new_state()
    record_published(state, published)
    verdict = check_signed(state, signed_event, store, pki.trust())
    assert (verdict.ok, verdict.reason) == (False, "hash_mismatch")
    assert apply_verdict(state, verdict, NOW) is None
    view = dossier_view(DOSSIER, state)
    assert view["flagged"] and view["documents"][0]["status"] == QUARANTINED
    assert state["chain"]["length"] == 0


def test_other_agency_signature_is_signer_mismatch(pki: DevPKI, store: FilesystemStore) -> None:
    signed = _sign(store, pki, AGENCY_B)
    published, signed_event = _events(signed, AGENCY_A)
    state = new_state()
    record_published(state, published)
    assert check_signed(state, signed_event, store, pki.trust()).reason == "signer_mismatch"


def test_untrusted_root(other_pki: DevPKI, pki: DevPKI, store: FilesystemStore) -> None:
    signed = _sign(store, other_pki)
    _, signed_event = _events(signed)
    assert check_signed(new_state(), signed_event, store, pki.trust()).reason == "untrusted_chain"


def test_missing_signature_and_wrong_certificate_claim(pki: DevPKI, store: FilesystemStore) -> None:
    signed = _sign(store, pki)
    _, event = _events(signed)
    missing = event.model_copy(update={"signature_ref": "sha256:" + "cd" * 32})
    verdict = check_signed(new_state(), missing, store, pki.trust())
    assert verdict.reason == "signature_invalid" and "no signature stored" in verdict.detail
    other_cert = event.model_copy(update={"signer_cert_sha256": "ef" * 32})
    assert check_signed(new_state(), other_cert, store, pki.trust()).reason == "signature_invalid"
    assert check_signed(new_state(), event, store, None).reason == "untrusted_chain"


def test_revocation_picked_up_without_restart(fresh_pki: DevPKI, store: FilesystemStore) -> None:
    cache = TrustCache(fresh_pki.dir / "trust")
    signed = _sign(store, fresh_pki)
    _, event = _events(signed)
    assert check_signed(new_state(), event, store, cache.get()).ok
    fresh_pki.revoke(AGENCY_A, when=NOW - dt.timedelta(hours=1))
    assert check_signed(new_state(), event, store, cache.get()).reason == "certificate_revoked"


def test_receipt_rejections(pki: DevPKI, store: FilesystemStore) -> None:
    state, signed = _accepted(store, pki)
    event, headers = _receipt_event(signed, pki, store)
    wrong_event = event.model_copy(update={"received_sha256": "ab" * 32})
    assert check_receipt(state, wrong_event, headers, store, pki.trust()).reason == (
        "receipt_digest_mismatch"
    )
    lying, lying_headers = _receipt_event(signed, pki, store, acknowledged="ab" * 32)
    verdict = check_receipt(state, lying, lying_headers, store, pki.trust())
    assert verdict.reason == "receipt_digest_mismatch" and "receipt acknowledges" in verdict.detail
    assert check_receipt(state, event, {}, store, pki.trust()).reason == "receipt_malformed"
    unknown = event.model_copy(update={"document_id": "D2"})
    assert check_receipt(state, unknown, headers, store, pki.trust()).reason == (
        "document_not_verified"
    )


def test_trail_round_trip_dedup_and_listing(pki: DevPKI, store: FilesystemStore) -> None:
    state, signed = _accepted(store, pki)
    event, headers = _receipt_event(signed, pki, store)
    verdict = check_receipt(state, event, headers, store, pki.trust())
    assert verdict.ok and verdict.chain_record
    # Rebuild what the agent wrote: both chain records through link_value.
    first = check_signed(new_state(), _events(signed)[1], store, pki.trust()).chain_record
    assert first is not None
    chain = build_chain([first, verdict.chain_record])
    values = [json.loads(link_value(DOSSIER, e.index, e.link, e.record)) for e in chain]
    checkpoint = json.loads(checkpoint_value(sign_checkpoint(DOSSIER, chain[-1], pki.bus_signer())))
    trail = collect_trail(DOSSIER, [values[0], values[0], values[1], checkpoint, checkpoint])
    assert len(trail.entries) == 2 and len(trail.checkpoints) == 1  # redeliveries dropped
    assert verify_chain(DOSSIER, trail.entries, trail.checkpoint_pairs, pki.trust()).ok
    assert [canonical_json(r) for r in trail.records] == [e.record for e in chain]
    edited = dict(values[0], record=values[0]["record"].replace('"size":', '"size":1'))
    broken = collect_trail(DOSSIER, [edited, values[1]])
    result = verify_chain(DOSSIER, broken.entries, (), pki.trust())
    assert (result.ok, result.broken_index, result.problem) == (False, 0, "link_mismatch")
    listing = dossier_listing(
        DOSSIER,
        values,
        [
            {
                "kind": "document",
                "dossier_id": DOSSIER,
                "sha256": signed.document.digest,
                "document_id": "D1",
            }
        ],
        [
            {"dossier_id": DOSSIER, "kind": "receipt", "reason": "receipt_malformed"},
            {"dossier_id": "x"},
        ],
    )
    (doc,) = listing["documents"]
    assert doc["document_id"] == "D1" and [a["agency"] for a in doc["acknowledged_by"]] == [
        AGENCY_B
    ]
    assert len(listing["rejected"]) == 1


def test_published_then_status_kept(pki: DevPKI, store: FilesystemStore) -> None:
    state, signed = _accepted(store, pki)
    published, _ = _events(signed)
    record_published(state, published)  # a repeated publication does not un-verify
    assert state["documents"]["D1"]["status"] == VERIFIED
