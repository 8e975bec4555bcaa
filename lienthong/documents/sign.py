"""Signing SDK for an issuing agency: store a document, sign it, get the event fields.

The agency's key object is passed in (loaded in its own process with
:func:`lienthong.documents.pki.load_signer`); nothing here logs or returns key material. The
document is hashed while it streams into the store, and only its 32-byte digest is signed
(inside the CMS signed attributes), so a 50 MB scan costs one pass and constant memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lienthong.documents.cms import build_signed_data
from lienthong.documents.pki import Signer, fingerprint
from lienthong.documents.store import DocumentStore, StoredObject, iter_file
from lienthong.logs import get_logger

log = get_logger("lienthong.documents.sign")


def sign_digest(digest: bytes, signer: Signer, *, signing_time: dt.datetime | None = None) -> bytes:
    """Detached CAdES-BES signature (DER) over a content whose SHA-256 is ``digest``."""
    when = signing_time or dt.datetime.now(dt.UTC)
    return build_signed_data(digest, signer, when)


def sign_chunks(
    chunks: Iterable[bytes], signer: Signer, *, signing_time: dt.datetime | None = None
) -> bytes:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return sign_digest(hasher.digest(), signer, signing_time=signing_time)


def sign_bytes(data: bytes, signer: Signer, *, signing_time: dt.datetime | None = None) -> bytes:
    return sign_digest(hashlib.sha256(data).digest(), signer, signing_time=signing_time)


def sign_file(
    path: str | os.PathLike[str], signer: Signer, *, signing_time: dt.datetime | None = None
) -> bytes:
    return sign_chunks(iter_file(path), signer, signing_time=signing_time)


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A stored document and its stored detached signature: what a document event carries."""

    document: StoredObject
    signature: StoredObject
    signer_agency: str
    signer_certificate_sha256: str
    signed_at: dt.datetime

    def event_fields(self) -> dict[str, Any]:
        """The ``document`` object of a ``document.published`` record (docs/documents.md)."""
        return {
            "ref": self.document.ref,
            "sha256": self.document.digest,
            "size": self.document.size,
            "signature_ref": self.signature.ref,
            "signature_sha256": self.signature.digest,
            "signer_agency": self.signer_agency,
            "signer_certificate_sha256": self.signer_certificate_sha256,
        }


def store_and_sign(
    store: DocumentStore,
    source: str | os.PathLike[str] | Iterable[bytes],
    signer: Signer,
    *,
    signing_time: dt.datetime | None = None,
) -> SignedDocument:
    """Put a document (file path or chunk iterator) and its signature into the store."""
    if isinstance(source, str | os.PathLike):
        document = store.put_file(source)
    else:
        document = store.put_chunks(source)
    when = signing_time or dt.datetime.now(dt.UTC)
    signature = store.put_bytes(
        sign_digest(bytes.fromhex(document.digest), signer, signing_time=when)
    )
    agency = signer.agency or ""
    log.info(
        "document_signed",
        agency=agency,
        document=document.ref,
        size=document.size,
        signature=signature.ref,
    )
    return SignedDocument(
        document, signature, agency, fingerprint(signer.certificate), when.replace(microsecond=0)
    )
