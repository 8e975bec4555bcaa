"""Decisions of the document stream agent, without Kafka (issue 7, stream part).

The Faust agent (``lienthong.streams.documents``) is glue: it decodes an event, calls one of the
functions here in an executor (they hash stored bytes and check signatures, which would stall
the event loop for a large document), and publishes what the :class:`Verdict` says. Keeping the
decisions pure makes every rejection reason unit-testable with real keys and a real store.

Per-dossier state (one table value per dossier id, JSON-friendly)::

    {"applied": <highest source offset applied>,
     "documents": {document_id: {"sha256", "size", "publisher", "status", "reason", ...,
                                 "acks": [{"agency", "received_at", "receipt_sha256", ...}]}},
     "quarantined": [{"kind", "document_id", "event_id", "reason", "detail", ...}],
     "chain": {"length": n, "head": <link hex>}}

Receipt events (``DocumentReceipt``) carry the digest the agency received and, since schema
v2, where its signed receipt is (``receipt_ref``, ``receipt_signature_ref``: store references).
v1 producers named them in two record headers, :data:`RECEIPT_REF_HEADER` and
:data:`RECEIPT_SIGNATURE_REF_HEADER`, which are still read when the fields are absent.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lienthong.documents.canonical import canonical_json
from lienthong.documents.chain import GENESIS, next_link
from lienthong.documents.pki import TrustAnchors
from lienthong.documents.receipts import (
    DOCUMENT_PUBLISHED,
    DOCUMENT_RECEIVED,
    format_time,
    verify_receipt,
)
from lienthong.documents.store import (
    DocumentCorrupted,
    DocumentNotFound,
    DocumentStore,
    InvalidReference,
    hash_chunks,
    make_reference,
    parse_reference,
)
from lienthong.documents.verify import (
    DocumentClaim,
    Reason,
    VerificationResult,
    verify_document,
)

RECEIPT_REF_HEADER = "lienthong.receipt.ref"
RECEIPT_SIGNATURE_REF_HEADER = "lienthong.receipt.signature_ref"

VERIFIED = "verified"
QUARANTINED = "quarantined"
PUBLISHED = "published"


def new_state() -> dict[str, Any]:
    return {
        "applied": -1,
        "documents": {},
        "quarantined": [],
        "chain": {"length": 0, "head": GENESIS},
    }


@dataclass(slots=True)
class Verdict:
    """What to publish for one event: a verified-view record + chain record, or a rejection."""

    kind: str  # "document" | "receipt"
    ok: bool
    dossier_id: str
    document_id: str
    event_id: str
    agency: str
    reason: str | None = None
    detail: str = ""
    chain_record: dict[str, Any] | None = None
    verified: dict[str, Any] = field(default_factory=dict)
    result: VerificationResult | None = None

    def quarantine_value(self, *, partition: int, offset: int, now: dt.datetime) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dossier_id": self.dossier_id,
            "document_id": self.document_id,
            "event_id": self.event_id,
            "agency": self.agency,
            "reason": self.reason,
            "detail": self.detail,
            "signer_agency": self.result.signer_agency if self.result else None,
            "signer_certificate_sha256": (
                self.result.signer_certificate_sha256 if self.result else None
            ),
            "quarantined_at": format_time(now),
            "source": {"partition": partition, "offset": offset},
        }

    def alert_value(self, *, partition: int, offset: int, now: dt.datetime) -> dict[str, Any]:
        return {
            "alert_type": "document_quarantined" if self.kind == "document" else "receipt_rejected",
            "alert_id": f"documents:{partition}:{offset}",
            "raised_at": format_time(now),
            "dossier_id": self.dossier_id,
            "document_id": self.document_id,
            "event_id": self.event_id,
            "agency": self.agency,
            "reason": self.reason,
            "detail": self.detail,
        }


class TrustCache:
    """Trust anchors from a directory, reloaded when a file there changes.

    Why: an operator revokes a certificate by dropping a fresh CRL into the trust directory; a
    long-running worker must use it without a restart. One ``stat`` per file per event is cheap.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._stamp: tuple[tuple[str, float, int], ...] | None = None
        self._trust: TrustAnchors | None = None

    def _current_stamp(self) -> tuple[tuple[str, float, int], ...]:
        assert self.directory is not None
        stamp = []
        for entry in sorted(os.scandir(self.directory), key=lambda e: e.name):
            if entry.is_file():
                info = entry.stat()
                stamp.append((entry.name, info.st_mtime, info.st_size))
        return tuple(stamp)

    def get(self) -> TrustAnchors | None:
        if self.directory is None or not self.directory.is_dir():
            return None
        stamp = self._current_stamp()
        if stamp != self._stamp or self._trust is None:
            self._trust = TrustAnchors.from_dir(self.directory)
            self._stamp = stamp
        return self._trust


def _iso(when: dt.datetime) -> str:
    return format_time(when)


def record_published(state: dict[str, Any], event: Any) -> None:
    """Remember what the publishing agency claims; nothing is forwarded before the signature."""
    docs = state.setdefault("documents", {})
    previous = docs.get(event.document_id, {})
    docs[event.document_id] = {
        **previous,
        "document_id": event.document_id,
        "sha256": event.content_sha256,
        "size": event.size_bytes,
        "media_type": event.media_type,
        "storage_ref": event.storage_ref,
        "title": event.title,
        "publisher": event.envelope.producer_agency,
        "published_event_id": str(event.envelope.event_id),
        "published_at": _iso(event.envelope.occurred_at),
        "status": previous.get("status", PUBLISHED),
        "acks": previous.get("acks", []),
    }


def _load_signature(store: DocumentStore, ref: str) -> tuple[bytes | None, str | None, str]:
    """(signature bytes, its digest, problem) — a missing signature is the signer's fault."""
    try:
        digest = parse_reference(ref)
    except (InvalidReference, ValueError) as exc:
        return None, None, f"signature_ref {ref!r} is not a content reference: {exc}"
    try:
        return store.get_bytes(digest), digest, ""
    except DocumentNotFound:
        return None, digest, f"no signature stored under sha256:{digest}"
    except DocumentCorrupted as exc:
        return None, digest, f"stored signature is corrupted: {exc}"


def check_signed(
    state: dict[str, Any],
    event: Any,
    store: DocumentStore,
    trust: TrustAnchors | None,
    *,
    require_crl: bool = True,
) -> Verdict:
    """Verify a ``DocumentSigned`` event against the store and the trust anchors.

    The expected signer is the agency that *published* the document (its ``document_published``
    event), else the producer of this event. The event time used for certificate validity is the
    event's ``occurred_at``, as the evidence bundle check does, so both give the same answer.
    """
    env = event.envelope
    dossier = str(env.dossier_id)
    known = state.get("documents", {}).get(event.document_id, {})
    publisher = known.get("publisher") or env.producer_agency
    verdict = Verdict("document", False, dossier, event.document_id, str(env.event_id), publisher)

    def fail(reason: Reason, detail: str, result: VerificationResult | None = None) -> Verdict:
        verdict.reason, verdict.detail, verdict.result = reason.value, detail, result
        return verdict

    if known.get("sha256") and known["sha256"] != event.content_sha256:
        return fail(
            Reason.HASH_MISMATCH,
            f"document_published states sha256:{known['sha256']}, "
            f"document_signed states sha256:{event.content_sha256}",
        )
    if trust is None:
        return fail(Reason.UNTRUSTED_CHAIN, "no trust anchors configured (documents.trust_dir)")
    signature, sig_digest, problem = _load_signature(store, event.signature_ref)
    claim = DocumentClaim(event.content_sha256, known.get("size"), publisher, env.occurred_at)
    result = verify_document(claim, store, signature or b"", trust, require_crl=require_crl)
    if not result.ok:
        assert result.reason is not None
        detail = result.detail
        if signature is None and result.reason == Reason.SIGNATURE_INVALID:
            detail = problem
        return fail(result.reason, detail, result)
    if result.signer_certificate_sha256 != event.signer_cert_sha256:
        return fail(
            Reason.SIGNATURE_INVALID,
            f"event names signer certificate {event.signer_cert_sha256}, the signature carries "
            f"{result.signer_certificate_sha256}",
            result,
        )
    assert signature is not None and sig_digest is not None
    size = known.get("size")
    if size is None:
        size = store.size(event.content_sha256)
    verdict.ok = True
    verdict.result = result
    verdict.chain_record = {
        "type": DOCUMENT_PUBLISHED,
        "event_id": str(env.event_id),
        "dossier_id": dossier,
        "agency": publisher,
        "occurred_at": _iso(env.occurred_at),
        "document": {
            "ref": make_reference(event.content_sha256),
            "sha256": event.content_sha256,
            "size": size,
            "signature_ref": make_reference(sig_digest),
            "signature_sha256": sig_digest,
            "signer_agency": result.signer_agency,
            "signer_certificate_sha256": result.signer_certificate_sha256,
        },
    }
    verdict.verified = {
        "kind": "document",
        "dossier_id": dossier,
        "document_id": event.document_id,
        "event_id": str(env.event_id),
        "published_event_id": known.get("published_event_id"),
        "sha256": event.content_sha256,
        "size": size,
        "media_type": known.get("media_type"),
        "title": known.get("title"),
        "storage_ref": make_reference(event.content_sha256),
        "signature_ref": make_reference(sig_digest),
        "signer_agency": result.signer_agency,
        "signer_certificate_sha256": result.signer_certificate_sha256,
        "signing_time": _iso(result.signing_time) if result.signing_time else None,
        "chain": list(result.chain),
    }
    return verdict


def _header(headers: Mapping[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check_receipt(
    state: dict[str, Any],
    event: Any,
    headers: Mapping[str, bytes],
    store: DocumentStore,
    trust: TrustAnchors | None,
    *,
    require_crl: bool = True,
) -> Verdict:
    """Verify a ``DocumentReceipt`` event: the document it names, the digest, the signed receipt."""
    env = event.envelope
    dossier = str(env.dossier_id)
    verdict = Verdict(
        "receipt", False, dossier, event.document_id, str(env.event_id), event.receiving_agency
    )

    def fail(reason: Reason, detail: str, result: VerificationResult | None = None) -> Verdict:
        verdict.reason, verdict.detail, verdict.result = reason.value, detail, result
        return verdict

    doc = state.get("documents", {}).get(event.document_id)
    if not doc or doc.get("status") != VERIFIED:
        status = doc.get("status") if doc else "unknown"
        return fail(
            Reason.DOCUMENT_NOT_VERIFIED,
            f"document {event.document_id!r} of dossier {dossier} is {status}, not verified",
        )
    if event.received_sha256 != doc["sha256"]:
        return fail(
            Reason.RECEIPT_DIGEST_MISMATCH,
            f"agency received sha256:{event.received_sha256}, document is sha256:{doc['sha256']}",
        )
    # v2 receipts carry the references as fields; v1 producers put them in headers.
    ref = event.receipt_ref or _header(headers, RECEIPT_REF_HEADER)
    sig_ref = event.receipt_signature_ref or _header(headers, RECEIPT_SIGNATURE_REF_HEADER)
    if not ref or not sig_ref:
        return fail(
            Reason.RECEIPT_MALFORMED,
            "no signed receipt: fields receipt_ref and receipt_signature_ref (or, from v1 "
            f"producers, headers {RECEIPT_REF_HEADER} and {RECEIPT_SIGNATURE_REF_HEADER}) "
            "are required",
        )
    if trust is None:
        return fail(Reason.UNTRUSTED_CHAIN, "no trust anchors configured (documents.trust_dir)")
    try:
        receipt_digest = parse_reference(ref)
        receipt_bytes = store.get_bytes(receipt_digest)
    except (InvalidReference, ValueError, DocumentNotFound, DocumentCorrupted) as exc:
        return fail(Reason.RECEIPT_MALFORMED, f"signed receipt {ref!r} unreadable: {exc}")
    signature, sig_digest, problem = _load_signature(store, sig_ref)
    if signature is None or sig_digest is None:
        return fail(Reason.SIGNATURE_INVALID, problem)
    result = verify_receipt(
        receipt_bytes,
        signature,
        trust,
        document_sha256=doc["sha256"],
        receiving_agency=event.receiving_agency,
        dossier_id=dossier,
        event_time=env.occurred_at,
        require_crl=require_crl,
    )
    if not result.ok:
        assert result.reason is not None
        return fail(result.reason, result.detail, result)
    _, receipt_size = hash_chunks([receipt_bytes])
    verdict.ok = True
    verdict.result = result
    verdict.chain_record = {
        "type": DOCUMENT_RECEIVED,
        "event_id": str(env.event_id),
        "dossier_id": dossier,
        "agency": event.receiving_agency,
        "occurred_at": _iso(env.occurred_at),
        "receipt": {
            "sha256": receipt_digest,
            "size": receipt_size,
            "signature_sha256": sig_digest,
            "document_sha256": doc["sha256"],
        },
    }
    verdict.verified = {
        "kind": "receipt",
        "dossier_id": dossier,
        "document_id": event.document_id,
        "event_id": str(env.event_id),
        "sha256": doc["sha256"],
        "receiving_agency": event.receiving_agency,
        "received_at": _iso(event.received_at),
        "receipt_ref": make_reference(receipt_digest),
        "receipt_signature_ref": make_reference(sig_digest),
    }
    return verdict


def apply_verdict(
    state: dict[str, Any], verdict: Verdict, now: dt.datetime
) -> tuple[int, str] | None:
    """Fold a verdict into the dossier state; returns (index, link) of a new chain link."""
    docs = state.setdefault("documents", {})
    doc = docs.setdefault(
        verdict.document_id, {"document_id": verdict.document_id, "status": PUBLISHED, "acks": []}
    )
    if not verdict.ok:
        state.setdefault("quarantined", []).append(
            {
                "kind": verdict.kind,
                "document_id": verdict.document_id,
                "event_id": verdict.event_id,
                "agency": verdict.agency,
                "reason": verdict.reason,
                "detail": verdict.detail,
                "at": format_time(now),
            }
        )
        if verdict.kind == "document":
            doc.update(status=QUARANTINED, reason=verdict.reason, detail=verdict.detail)
        return None
    if verdict.kind == "document":
        doc.update(
            status=VERIFIED,
            reason=None,
            detail="",
            sha256=verdict.verified["sha256"],
            size=verdict.verified["size"],
            signer_agency=verdict.verified["signer_agency"],
            signer_certificate_sha256=verdict.verified["signer_certificate_sha256"],
            signing_time=verdict.verified["signing_time"],
            signed_event_id=verdict.event_id,
            verified_at=format_time(now),
        )
        doc.setdefault("publisher", verdict.agency)
    else:
        doc.setdefault("acks", []).append(
            {
                "agency": verdict.agency,
                "received_at": verdict.verified["received_at"],
                "event_id": verdict.event_id,
                "receipt_sha256": verdict.chain_record["receipt"]["sha256"]
                if verdict.chain_record
                else None,
            }
        )
    assert verdict.chain_record is not None
    chain = state.setdefault("chain", {"length": 0, "head": GENESIS})
    link = next_link(chain["head"], canonical_json(verdict.chain_record))
    index = chain["length"]
    chain.update(length=index + 1, head=link)
    return index, link


def dossier_view(dossier_id: str, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The HTTP/CLI view of a dossier: its documents, who acknowledged them, and its flags."""
    state = state or new_state()
    quarantined = list(state.get("quarantined", []))
    return {
        "dossier_id": dossier_id,
        "flagged": bool(quarantined),
        "documents": [dict(d) for d in state.get("documents", {}).values()],
        "quarantined": quarantined,
        "chain": dict(state.get("chain", {"length": 0, "head": GENESIS})),
    }
