"""Signing and verification with real keys and the real filesystem store.

Every rejection reason is produced by a real condition, and openssl must accept every
signature the code produces.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from asn1crypto import cms

from lienthong.documents.cms import parse_signed_data
from lienthong.documents.pki import DevPKI, Signer, TrustAnchors, init_dev_pki
from lienthong.documents.sign import sign_bytes, sign_file, store_and_sign
from lienthong.documents.store import FilesystemStore
from lienthong.documents.verify import (
    DocumentClaim,
    Reason,
    check_document,
    verify_detached,
    verify_document,
)
from tests.unit.documents.helpers import AGENCIES, AGENCY_A, AGENCY_B, openssl_verify

NOW = dt.datetime.now(dt.UTC)


def _claim(signed, agency: str = AGENCY_A, event_time: dt.datetime | None = None) -> DocumentClaim:
    return DocumentClaim(signed.document.digest, signed.document.size, agency, event_time)


def _publish(store: FilesystemStore, doc_file: Path, signer: Signer, **kw):
    signed = store_and_sign(store, doc_file, signer, **kw)
    return signed, store.get_bytes(signed.signature.digest)


def test_valid_document_is_accepted_and_openssl_agrees(
    pki: DevPKI, store: FilesystemStore, doc_file: Path, assert_openssl_ok: Callable[..., None]
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    result = verify_document(_claim(signed, event_time=NOW), store, signature, pki.trust())
    assert result.ok, result
    assert result.reason is None
    assert result.signer_agency == AGENCY_A
    assert len(result.chain) == 3
    fields = signed.event_fields()
    assert fields["sha256"] == hashlib.sha256(doc_file.read_bytes()).hexdigest()
    assert fields["signature_ref"] == f"sha256:{signed.signature.digest}"
    assert_openssl_ok(doc_file, signature)


def test_signature_profile_is_cades_bes(pki: DevPKI, doc_file: Path) -> None:
    signature = sign_file(doc_file, pki.signer(AGENCY_A))
    info = cms.ContentInfo.load(signature)
    signer_info = info["content"]["signer_infos"][0]
    names = {a["type"].native for a in signer_info["signed_attrs"]}
    assert names == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    assert info["content"]["encap_content_info"]["content"].native is None  # detached
    parsed = parse_signed_data(signature)
    assert parsed.message_digest == hashlib.sha256(doc_file.read_bytes()).digest()


def test_rsa_keys_work_too(
    tmp_path: Path, doc_file: Path, store: FilesystemStore, assert_openssl_ok: Callable[..., None]
) -> None:
    rsa_pki = init_dev_pki(tmp_path / "rsa", "Bến Tre", AGENCIES[:1], key_type="rsa")
    signed, signature = _publish(store, doc_file, rsa_pki.signer(AGENCY_A))
    assert verify_document(_claim(signed), store, signature, rsa_pki.trust()).ok
    assert_openssl_ok(doc_file, signature, rsa_pki)


def test_one_byte_changed_in_store_is_hash_mismatch(
    pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    path = store.path_of(signed.document.digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    result = verify_document(_claim(signed), store, signature, pki.trust())
    assert result.reason is Reason.HASH_MISMATCH
    assert signed.document.digest in result.detail
    assert hashlib.sha256(bytes(data)).hexdigest() in result.detail


def test_claimed_size_or_hash_wrong(pki: DevPKI, store: FilesystemStore, doc_file: Path) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    wrong_size = dataclasses.replace(_claim(signed), size=signed.document.size + 1)
    assert verify_document(wrong_size, store, signature, pki.trust()).reason is Reason.HASH_MISMATCH
    pure = check_document(
        _claim(signed), hashlib.sha256(b"other").hexdigest(), 5, signature, pki.trust()
    )
    assert pure.reason is Reason.HASH_MISMATCH
    missing = dataclasses.replace(_claim(signed), sha256=hashlib.sha256(b"nope").hexdigest())
    assert verify_document(missing, store, signature, pki.trust()).reason is Reason.DOCUMENT_MISSING


def test_other_agency_signing_with_its_own_certificate_is_signer_mismatch(
    pki: DevPKI, store: FilesystemStore, doc_file: Path, assert_openssl_ok: Callable[..., None]
) -> None:
    # B signs correctly with B's key and certificate, but the event says A published it.
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_B))
    result = verify_document(_claim(signed, AGENCY_A), store, signature, pki.trust())
    assert result.reason is Reason.SIGNER_MISMATCH
    assert result.signer_agency == AGENCY_B
    assert_openssl_ok(doc_file, signature)  # the signature itself is fine: it is B's


def test_other_agency_key_with_this_agency_certificate_is_signature_invalid(
    pki: DevPKI, store: FilesystemStore, doc_file: Path, tmp_path: Path
) -> None:
    # A forger holds B's key but attaches A's certificate: the math does not verify.
    a, b = pki.signer(AGENCY_A), pki.signer(AGENCY_B)
    forged = object.__new__(Signer)
    object.__setattr__(forged, "certificate", a.certificate)
    object.__setattr__(forged, "private_key", b.private_key)
    object.__setattr__(forged, "chain", a.chain)
    signed, signature = _publish(store, doc_file, forged)
    result = verify_document(_claim(signed, AGENCY_A), store, signature, pki.trust())
    assert result.reason is Reason.SIGNATURE_INVALID
    assert "public key" in result.detail
    bad = openssl_verify(doc_file, signature, pki.dir / "trust" / "roots.pem", tmp_path)
    assert bad.returncode != 0  # openssl agrees


def test_signature_over_another_document_is_signature_invalid(
    pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed = store_and_sign(store, doc_file, pki.signer(AGENCY_A))
    other_sig = sign_bytes(b"a different document", pki.signer(AGENCY_A))
    result = verify_document(_claim(signed), store, other_sig, pki.trust())
    assert result.reason is Reason.SIGNATURE_INVALID
    assert "message-digest" in result.detail


def test_garbage_or_flipped_signature_is_signature_invalid(
    pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    assert verify_document(_claim(signed), store, b"not cms", pki.trust()).reason is (
        Reason.SIGNATURE_INVALID
    )
    flipped = bytearray(signature)
    flipped[-5] ^= 0x01  # inside the signature value (last field of the SignerInfo)
    result = verify_document(_claim(signed), store, bytes(flipped), pki.trust())
    assert result.reason is Reason.SIGNATURE_INVALID


def test_untrusted_root(
    other_pki: DevPKI,
    pki: DevPKI,
    store: FilesystemStore,
    doc_file: Path,
    assert_openssl_ok: Callable[..., None],
    tmp_path: Path,
) -> None:
    signed, signature = _publish(store, doc_file, other_pki.signer(AGENCY_A))
    result = verify_document(_claim(signed), store, signature, pki.trust())
    assert result.reason is Reason.UNTRUSTED_CHAIN
    assert_openssl_ok(doc_file, signature, other_pki)  # valid under its own root…
    bad = openssl_verify(doc_file, signature, pki.dir / "trust" / "roots.pem", tmp_path)
    assert bad.returncode != 0  # …not under ours


def test_expired_certificate(fresh_pki: DevPKI, store: FilesystemStore, doc_file: Path) -> None:
    fresh_pki.issue_agency(
        AGENCY_A,
        "Sở TNMT",
        not_before=NOW - dt.timedelta(days=60),
        not_after=NOW - dt.timedelta(days=1),
    )
    signed, signature = _publish(store, doc_file, fresh_pki.signer(AGENCY_A))
    result = verify_document(_claim(signed), store, signature, fresh_pki.trust())
    assert result.reason is Reason.CERTIFICATE_EXPIRED


def test_backdated_signature_with_expired_certificate_caught_by_event_time(
    fresh_pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    fresh_pki.issue_agency(
        AGENCY_A,
        "Sở TNMT",
        not_before=NOW - dt.timedelta(days=60),
        not_after=NOW - dt.timedelta(days=1),
    )
    signed, signature = _publish(
        store, doc_file, fresh_pki.signer(AGENCY_A), signing_time=NOW - dt.timedelta(days=10)
    )
    # Without the event time, the self-asserted signing time looks fine…
    assert verify_document(_claim(signed), store, signature, fresh_pki.trust()).ok
    # …the bus's own time of the event is not.
    result = verify_document(_claim(signed, event_time=NOW), store, signature, fresh_pki.trust())
    assert result.reason is Reason.CERTIFICATE_EXPIRED


def test_not_yet_valid_certificate(
    fresh_pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    fresh_pki.issue_agency(AGENCY_A, "Sở TNMT", not_before=NOW + dt.timedelta(days=1))
    signed, signature = _publish(store, doc_file, fresh_pki.signer(AGENCY_A))
    result = verify_document(_claim(signed), store, signature, fresh_pki.trust())
    assert result.reason is Reason.NOT_YET_VALID


def test_revoked_certificate(
    fresh_pki: DevPKI, store: FilesystemStore, doc_file: Path, tmp_path: Path
) -> None:
    signed, signature = _publish(store, doc_file, fresh_pki.signer(AGENCY_A))
    assert verify_document(_claim(signed), store, signature, fresh_pki.trust()).ok
    fresh_pki.revoke(AGENCY_A)
    result = verify_document(_claim(signed), store, signature, fresh_pki.trust())
    assert result.reason is Reason.CERTIFICATE_REVOKED
    # openssl with the new CRL agrees
    bad = openssl_verify(
        doc_file, signature, fresh_pki.dir / "trust" / "openssl-ca.pem", tmp_path, "-crl_check_all"
    )
    assert bad.returncode != 0 and "revoked" in bad.stderr


def test_missing_crl_fails_closed_unless_allowed(
    pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    no_crls = TrustAnchors(pki.trust().roots, pki.trust().intermediates, ())
    result = verify_document(_claim(signed), store, signature, no_crls)
    assert result.reason is Reason.REVOCATION_UNKNOWN
    assert verify_document(_claim(signed), store, signature, no_crls, require_crl=False).ok


def test_crl_signed_by_someone_else_is_ignored(
    pki: DevPKI, other_pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_A))
    trust = pki.trust()
    # CRLs with the right issuer *name* but another key must not count.
    forged = TrustAnchors(trust.roots, trust.intermediates, other_pki.trust().crls)
    assert verify_document(_claim(signed), store, signature, forged).reason is (
        Reason.REVOCATION_UNKNOWN
    )


def test_reason_order_hash_before_signer(
    pki: DevPKI, store: FilesystemStore, doc_file: Path
) -> None:
    signed, signature = _publish(store, doc_file, pki.signer(AGENCY_B))
    path = store.path_of(signed.document.digest)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"x")
    result = verify_document(_claim(signed, AGENCY_A), store, signature, pki.trust())
    assert result.reason is Reason.HASH_MISMATCH  # first failed check wins


def test_pure_core_is_deterministic(pki: DevPKI) -> None:
    digest = hashlib.sha256(b"doc").digest()
    signature = sign_bytes(b"doc", pki.signer(AGENCY_A))
    one = verify_detached(digest, signature, pki.trust(), expected_signer=AGENCY_A)
    two = verify_detached(digest, signature, pki.trust(), expected_signer=AGENCY_A)
    assert one == two and one.ok
    assert one.as_dict()["reason"] is None
