"""Signed receipts (biên nhận điện tử) and the per-dossier acknowledgement listing.

Non-repudiation of receipt, as in eDelivery/AS4: when the receiving agency takes a document it
signs a small receipt that carries the digest of what it received. The receipt is canonical
JSON (:mod:`lienthong.documents.canonical`) with a detached CMS signature in the same
CAdES-BES profile as documents, both kept in the document store under their own hashes.

Record contract (plain mappings, whatever their transport; the Avro schemas map onto it):

``document.published``::

    {"type": "document.published", "event_id": str, "dossier_id": str, "agency": str,
     "occurred_at": ISO-8601 UTC, "document": {"sha256", "size", "signature_sha256",
     "signer_agency", ...}}

``document.received``::

    {"type": "document.received", "event_id": str, "dossier_id": str, "agency": str,
     "occurred_at": ISO-8601 UTC, "receipt": {"sha256", "size", "signature_sha256",
     "document_sha256"}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lienthong.documents.canonical import canonical_json
from lienthong.documents.pki import Signer, TrustAnchors
from lienthong.documents.sign import sign_bytes
from lienthong.documents.store import (
    DocumentStore,
    InvalidReference,
    StoredObject,
    hash_chunks,
    normalize_digest,
)
from lienthong.documents.verify import Reason, VerificationResult, verify_detached

RECEIPT_TYPE = "lienthong.receipt"
RECEIPT_VERSION = 1
DOCUMENT_PUBLISHED = "document.published"
DOCUMENT_RECEIVED = "document.received"

_RECEIPT_FIELDS = {
    "type",
    "version",
    "dossier_id",
    "document_sha256",
    "document_size",
    "receiving_agency",
    "received_at",
    "event_id",
}


def format_time(when: dt.datetime) -> str:
    """UTC, second precision, ``Z`` suffix: one text form per instant."""
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return value.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Receipt:
    """The statement "agency X received the document with this SHA-256 for dossier D at T"."""

    dossier_id: str
    document_sha256: str
    document_size: int
    receiving_agency: str
    received_at: dt.datetime
    event_id: str = ""  # the document.published event being acknowledged

    def to_json(self) -> dict[str, Any]:
        return {
            "type": RECEIPT_TYPE,
            "version": RECEIPT_VERSION,
            "dossier_id": self.dossier_id,
            "document_sha256": normalize_digest(self.document_sha256),
            "document_size": self.document_size,
            "receiving_agency": self.receiving_agency,
            "received_at": format_time(self.received_at),
            "event_id": self.event_id,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Strict parse: canonical bytes only, known fields only (raises ValueError)."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"receipt is not JSON: {exc}") from None
        if not isinstance(obj, dict) or set(obj) != _RECEIPT_FIELDS:
            raise ValueError("receipt fields are not exactly " + ", ".join(sorted(_RECEIPT_FIELDS)))
        if obj["type"] != RECEIPT_TYPE or obj["version"] != RECEIPT_VERSION:
            raise ValueError(f"not a {RECEIPT_TYPE} v{RECEIPT_VERSION}")
        if canonical_json(obj) != data:
            raise ValueError("receipt bytes are not in canonical form")
        try:
            return cls(
                dossier_id=str(obj["dossier_id"]),
                document_sha256=normalize_digest(str(obj["document_sha256"])),
                document_size=int(obj["document_size"]),
                receiving_agency=str(obj["receiving_agency"]),
                received_at=parse_time(str(obj["received_at"])),
                event_id=str(obj["event_id"]),
            )
        except (InvalidReference, ValueError) as exc:
            raise ValueError(f"receipt field invalid: {exc}") from None


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    receipt: Receipt
    receipt_object: StoredObject | None
    signature_object: StoredObject | None
    receipt_bytes: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def event_fields(self) -> dict[str, Any]:
        """The ``receipt`` object of a ``document.received`` record."""
        receipt_digest, size = hash_chunks([self.receipt_bytes])
        signature_digest, _ = hash_chunks([self.signature])
        return {
            "sha256": receipt_digest,
            "size": size,
            "signature_sha256": signature_digest,
            "document_sha256": self.receipt.document_sha256,
        }


def sign_receipt(
    receipt: Receipt, signer: Signer, store: DocumentStore | None = None
) -> SignedReceipt:
    """Sign a receipt with the receiving agency's key; store both when a store is given."""
    data = receipt.to_bytes()
    signature = sign_bytes(data, signer, signing_time=receipt.received_at)
    receipt_obj = store.put_bytes(data) if store is not None else None
    signature_obj = store.put_bytes(signature) if store is not None else None
    return SignedReceipt(receipt, receipt_obj, signature_obj, data, signature)


def verify_receipt(
    receipt_bytes: bytes,
    signature: bytes,
    trust: TrustAnchors,
    *,
    document_sha256: str,
    receiving_agency: str,
    dossier_id: str | None = None,
    event_time: dt.datetime | None = None,
    require_crl: bool = True,
) -> VerificationResult:
    """Check a receipt against the document it acknowledges, then its signature.

    Order: ``receipt_malformed`` -> ``receipt_digest_mismatch`` (the receipt's document hash is
    not the document's, or it names another dossier) -> the signature checks of
    :func:`verify_detached`, with ``signer_mismatch`` when the key is not the receiving agency's.
    """
    try:
        receipt = Receipt.from_bytes(receipt_bytes)
    except ValueError as exc:
        return VerificationResult(False, Reason.RECEIPT_MALFORMED, str(exc))
    expected = normalize_digest(document_sha256)
    if receipt.document_sha256 != expected:
        return VerificationResult(
            False,
            Reason.RECEIPT_DIGEST_MISMATCH,
            f"receipt acknowledges sha256:{receipt.document_sha256}, document is sha256:{expected}",
        )
    if dossier_id is not None and receipt.dossier_id != dossier_id:
        return VerificationResult(
            False,
            Reason.RECEIPT_DIGEST_MISMATCH,
            f"receipt is for dossier {receipt.dossier_id!r}, not {dossier_id!r}",
        )
    if receipt.receiving_agency != receiving_agency:
        return VerificationResult(
            False,
            Reason.SIGNER_MISMATCH,
            f"receipt names {receipt.receiving_agency!r}, event is from {receiving_agency!r}",
        )
    return verify_detached(
        hashlib.sha256(receipt_bytes).digest(),
        signature,
        trust,
        expected_signer=receiving_agency,
        event_time=event_time,
        require_crl=require_crl,
    )


# ----------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    agency: str
    received_at: str
    event_id: str
    receipt_sha256: str


@dataclass(slots=True)
class DocumentAcks:
    """One document of a dossier, who published it, and who acknowledged it when."""

    document_sha256: str
    size: int | None
    published_by: str
    published_at: str
    event_id: str
    acknowledgements: list[Acknowledgement] = field(default_factory=list)


def acknowledgements(records: Iterable[Mapping[str, Any]]) -> dict[str, list[DocumentAcks]]:
    """Per dossier, every document (in publication order) with its acknowledgements.

    ``records`` is any iterable of record mappings (a test list today, a Kafka reader later);
    records of other types are ignored. A receipt whose document was never published in the
    dossier is listed under a placeholder entry with ``published_by == ""`` so it stays visible.
    """
    result: dict[str, list[DocumentAcks]] = {}
    index: dict[tuple[str, str], DocumentAcks] = {}
    for record in records:
        kind = record.get("type")
        dossier = str(record.get("dossier_id", ""))
        if kind == DOCUMENT_PUBLISHED:
            doc = record.get("document") or {}
            key = (dossier, str(doc.get("sha256", "")))
            if key in index:
                continue
            entry = DocumentAcks(
                document_sha256=key[1],
                size=doc.get("size"),
                published_by=str(record.get("agency", "")),
                published_at=str(record.get("occurred_at", "")),
                event_id=str(record.get("event_id", "")),
            )
            index[key] = entry
            result.setdefault(dossier, []).append(entry)
        elif kind == DOCUMENT_RECEIVED:
            rec = record.get("receipt") or {}
            key = (dossier, str(rec.get("document_sha256", "")))
            entry = index.get(key)
            if entry is None:
                entry = DocumentAcks(key[1], None, "", "", "")
                index[key] = entry
                result.setdefault(dossier, []).append(entry)
            entry.acknowledgements.append(
                Acknowledgement(
                    agency=str(record.get("agency", "")),
                    received_at=str(record.get("occurred_at", "")),
                    event_id=str(record.get("event_id", "")),
                    receipt_sha256=str(rec.get("sha256", "")),
                )
            )
    return result
