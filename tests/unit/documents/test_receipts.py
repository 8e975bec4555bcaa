"""Signed receipts: digest binding, signer, openssl, and the acknowledgement listing."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

from lienthong.documents.pki import DevPKI
from lienthong.documents.receipts import Receipt, acknowledgements, sign_receipt, verify_receipt
from lienthong.documents.store import FilesystemStore
from lienthong.documents.verify import Reason
from tests.unit.documents.helpers import AGENCY_A, AGENCY_B
from tests.unit.documents.records import DOSSIER, dossier_records

DOC = hashlib.sha256(b"the document").hexdigest()
NOW = dt.datetime.now(dt.UTC)


def _receipt(digest: str = DOC, agency: str = AGENCY_B) -> Receipt:
    return Receipt(DOSSIER, digest, 12, agency, NOW, "evt-1")


def test_valid_receipt_verifies_and_openssl_agrees(
    pki: DevPKI, store: FilesystemStore, assert_openssl_ok: Callable[..., None]
) -> None:
    signed = sign_receipt(_receipt(), pki.signer(AGENCY_B), store)
    assert store.get_bytes(signed.receipt_object.digest) == signed.receipt_bytes
    result = verify_receipt(
        signed.receipt_bytes,
        signed.signature,
        pki.trust(),
        document_sha256=DOC,
        receiving_agency=AGENCY_B,
        dossier_id=DOSSIER,
    )
    assert result.ok, result
    assert Receipt.from_bytes(signed.receipt_bytes).received_at == NOW.replace(microsecond=0)
    assert_openssl_ok(signed.receipt_bytes, signed.signature)


def test_receipt_with_wrong_digest_is_rejected(pki: DevPKI) -> None:
    other = hashlib.sha256(b"some other document").hexdigest()
    signed = sign_receipt(_receipt(other), pki.signer(AGENCY_B))
    result = verify_receipt(
        signed.receipt_bytes,
        signed.signature,
        pki.trust(),
        document_sha256=DOC,
        receiving_agency=AGENCY_B,
    )
    assert result.reason is Reason.RECEIPT_DIGEST_MISMATCH
    assert other in result.detail and DOC in result.detail


def test_receipt_for_another_dossier_is_rejected(pki: DevPKI) -> None:
    signed = sign_receipt(_receipt(), pki.signer(AGENCY_B))
    result = verify_receipt(
        signed.receipt_bytes,
        signed.signature,
        pki.trust(),
        document_sha256=DOC,
        receiving_agency=AGENCY_B,
        dossier_id="OTHER",
    )
    assert result.reason is Reason.RECEIPT_DIGEST_MISMATCH


def test_receipt_signed_by_another_agency_is_signer_mismatch(pki: DevPKI) -> None:
    signed = sign_receipt(_receipt(agency=AGENCY_B), pki.signer(AGENCY_A))
    result = verify_receipt(
        signed.receipt_bytes,
        signed.signature,
        pki.trust(),
        document_sha256=DOC,
        receiving_agency=AGENCY_B,
    )
    assert result.reason is Reason.SIGNER_MISMATCH


def test_edited_receipt_breaks_signature_or_form(pki: DevPKI) -> None:
    signed = sign_receipt(_receipt(), pki.signer(AGENCY_B))
    edited = signed.receipt_bytes.replace(b'"document_size":12', b'"document_size":13')
    result = verify_receipt(
        edited, signed.signature, pki.trust(), document_sha256=DOC, receiving_agency=AGENCY_B
    )
    assert result.reason is Reason.SIGNATURE_INVALID
    pretty = signed.receipt_bytes.replace(b",", b", ")
    result = verify_receipt(
        pretty, signed.signature, pki.trust(), document_sha256=DOC, receiving_agency=AGENCY_B
    )
    assert result.reason is Reason.RECEIPT_MALFORMED


def test_acknowledgement_listing(pki: DevPKI, store: FilesystemStore, tmp_path: Path) -> None:
    records = dossier_records(pki, store, tmp_path)
    listing = acknowledgements(records + [{"type": "dossier.received", "dossier_id": "X"}])
    docs = listing[DOSSIER]
    assert [d.published_by for d in docs] == [AGENCY_A, AGENCY_B]
    assert [[a.agency for a in d.acknowledgements] for d in docs] == [[AGENCY_B], [AGENCY_A]]
    assert all(d.acknowledgements[0].received_at for d in docs)
    assert "X" not in listing
