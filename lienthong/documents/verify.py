"""Verification of a signed document: a pure core plus a store adapter.

The stream agent that accepts ``document.published`` events calls :func:`verify_document`
(synchronous; run it in a thread executor from a Faust agent if documents are large). The pure
core :func:`verify_detached` / :func:`check_document` takes only bytes, digests and trust
anchors, so it is unit-testable and deterministic for a given ``now``.

Checks run in this order and the result names the FIRST that failed
(:class:`Reason`; the exact strings are part of the event contract):

1. ``document_missing``    – nothing stored under the claimed hash
2. ``hash_mismatch``       – stored bytes do not hash to the claimed SHA-256, or size differs
3. ``signature_invalid``   – not a detached CAdES-BES signature of our profile; its
   message-digest is not the document's hash; the signing-certificate-v2 hash does not match
   the embedded certificate; or the signature does not verify with that certificate's key
   (e.g. signed with agency B's key but carrying agency A's certificate)
4. ``untrusted_chain``     – no chain from the signer certificate to a trusted root (at any
   time), or the certificate is not a signing certificate (key usage)
5. ``certificate_expired`` / ``not_yet_valid`` – a certificate of the chain is outside its
   validity at the signing time (and at the event time, when given: signing-time is
   self-asserted, the event time is what the bus saw)
6. ``certificate_revoked`` – a CRL from the issuer lists a chain certificate (revoked before
   the signing time, or for key/CA compromise at any time)
   ``revocation_unknown`` – no valid CRL from an issuer in the chain (only when
   ``require_crl=True``, the default; fail closed)
7. ``signer_mismatch``     – a valid signature, but the certificate's agency code (subject CN)
   is not the agency that published the event (e.g. agency B signed with its own key and
   certificate, and the event claims agency A)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from lienthong.documents.cms import CMSFormatError, ParsedSignature, parse_signed_data
from lienthong.documents.pki import TrustAnchors, agency_code_of, fingerprint
from lienthong.documents.store import (
    DocumentCorrupted,
    DocumentNotFound,
    DocumentStore,
    InvalidReference,
    normalize_digest,
)


class Reason(StrEnum):
    """Why a document, signature or receipt was rejected (first failed check)."""

    DOCUMENT_MISSING = "document_missing"
    HASH_MISMATCH = "hash_mismatch"
    SIGNATURE_INVALID = "signature_invalid"
    UNTRUSTED_CHAIN = "untrusted_chain"
    CERTIFICATE_EXPIRED = "certificate_expired"
    NOT_YET_VALID = "not_yet_valid"
    CERTIFICATE_REVOKED = "certificate_revoked"
    REVOCATION_UNKNOWN = "revocation_unknown"
    SIGNER_MISMATCH = "signer_mismatch"
    RECEIPT_MALFORMED = "receipt_malformed"
    RECEIPT_DIGEST_MISMATCH = "receipt_digest_mismatch"
    # stream only: a receipt for a document the bus has not accepted (unknown or quarantined)
    DOCUMENT_NOT_VERIFIED = "document_not_verified"


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Outcome of a verification; ``reason`` is None when ``ok``."""

    ok: bool
    reason: Reason | None = None
    detail: str = ""
    signer_agency: str | None = None
    signer_certificate_sha256: str | None = None
    signing_time: dt.datetime | None = None
    chain: tuple[str, ...] = field(default=())  # subject strings, leaf first

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form for a verdict event or a log line."""
        return {
            "ok": self.ok,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "signer_agency": self.signer_agency,
            "signer_certificate_sha256": self.signer_certificate_sha256,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
        }


def _fail(reason: Reason, detail: str, parsed: ParsedSignature | None = None) -> VerificationResult:
    if parsed is None:
        return VerificationResult(False, reason, detail)
    cert = parsed.signer_certificate
    return VerificationResult(
        False, reason, detail, agency_code_of(cert), fingerprint(cert), parsed.signing_time
    )


@dataclass(frozen=True, slots=True)
class DocumentClaim:
    """What a ``document.published`` event says about its document."""

    sha256: str
    size: int | None
    signer_agency: str
    event_time: dt.datetime | None = None  # when the bus accepted the event, if known


# ----------------------------------------------------------------------------- pure core


def _check_signature_math(parsed: ParsedSignature, content_digest: bytes) -> str | None:
    """None if the signature is mathematically valid for ``content_digest``, else why not."""
    if parsed.message_digest != content_digest:
        return "message-digest attribute does not match the document's SHA-256"
    cert = parsed.signer_certificate
    if (
        hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        != parsed.ess_cert_hash
    ):
        return "signing-certificate-v2 does not name the embedded signer certificate"
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if parsed.signature_algorithm != "ecdsa":
                return f"algorithm {parsed.signature_algorithm} does not match an EC key"
            key.verify(parsed.signature, parsed.signed_attrs_der, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            if parsed.signature_algorithm != "rsassa_pkcs1v15":
                return f"algorithm {parsed.signature_algorithm} is not RSA PKCS#1 v1.5"
            key.verify(
                parsed.signature, parsed.signed_attrs_der, padding.PKCS1v15(), hashes.SHA256()
            )
        else:
            return f"unsupported key type {type(key).__name__}"
    except InvalidSignature:
        return "signature does not verify with the signer certificate's public key"
    return None


def _build_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    when: dt.datetime,
) -> list[x509.Certificate]:
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(when)
        .max_chain_depth(4)
        # Web-PKI rules for the CAs; the agency certificate is a document-signing certificate,
        # not a TLS client certificate, so its extensions are checked below instead.
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    return list(verifier.verify(leaf, intermediates).chain)


def _chain_at_any_time(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    signing_time: dt.datetime,
) -> list[x509.Certificate] | None:
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    candidates = [min(max(signing_time, start), end), start, end]
    for cert in [*intermediates, *roots]:
        candidates += [cert.not_valid_before_utc, cert.not_valid_after_utc]
    seen: set[dt.datetime] = set()
    for when in candidates:
        if not start <= when <= end or when in seen:
            continue
        seen.add(when)
        try:
            return _build_chain(leaf, intermediates, roots, when)
        except VerificationError:
            continue
    return None


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validity_problem(
    chain: Sequence[x509.Certificate], times: Sequence[dt.datetime]
) -> tuple[Reason, str] | None:
    for when in times:
        for cert in chain:
            if when > cert.not_valid_after_utc:
                return (
                    Reason.CERTIFICATE_EXPIRED,
                    f"{cert.subject.rfc4514_string()} expired {_iso(cert.not_valid_after_utc)}, "
                    f"before {_iso(when)}",
                )
            if when < cert.not_valid_before_utc:
                return (
                    Reason.NOT_YET_VALID,
                    f"{cert.subject.rfc4514_string()} valid only from "
                    f"{_iso(cert.not_valid_before_utc)}, used at {_iso(when)}",
                )
    return None


_ALWAYS_REVOKED = {x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise}


def _revocation_problem(
    chain: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    latest_use: dt.datetime,
    require_crl: bool,
) -> tuple[Reason, str] | None:
    for cert, issuer in zip(chain, chain[1:], strict=False):
        usable = [
            crl
            for crl in crls
            if crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        ]
        if not usable:
            if require_crl:
                return (
                    Reason.REVOCATION_UNKNOWN,
                    f"no valid CRL from {issuer.subject.rfc4514_string()}",
                )
            continue
        for crl in usable:
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is None:
                continue
            try:
                crl_reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                crl_reason = x509.ReasonFlags.unspecified
            revoked_at = entry.revocation_date_utc
            if revoked_at <= latest_use or crl_reason in _ALWAYS_REVOKED:
                return (
                    Reason.CERTIFICATE_REVOKED,
                    f"{cert.subject.rfc4514_string()} serial {cert.serial_number:x} revoked "
                    f"{revoked_at:%Y-%m-%dT%H:%M:%SZ} ({crl_reason.value})",
                )
    return None


def _key_usage_problem(cert: x509.Certificate) -> str | None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not (usage.digital_signature or usage.content_commitment):
        return "signer certificate's key usage allows neither digitalSignature nor nonRepudiation"
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    if basic.ca:
        return "signer certificate is a CA certificate"
    return None


def verify_detached(
    content_digest: bytes,
    signature: bytes,
    trust: TrustAnchors,
    *,
    expected_signer: str | None,
    event_time: dt.datetime | None = None,
    require_crl: bool = True,
) -> VerificationResult:
    """Checks 3–7 of the module docstring for a content whose SHA-256 is ``content_digest``."""
    try:
        parsed = parse_signed_data(signature)
    except CMSFormatError as exc:
        return _fail(Reason.SIGNATURE_INVALID, str(exc))
    problem = _check_signature_math(parsed, content_digest)
    if problem:
        return _fail(Reason.SIGNATURE_INVALID, problem, parsed)

    leaf = parsed.signer_certificate
    intermediates = list(parsed.other_certificates) + list(trust.intermediates)
    times = [parsed.signing_time] + ([event_time.astimezone(dt.UTC)] if event_time else [])
    if not trust.roots:
        return _fail(Reason.UNTRUSTED_CHAIN, "no trusted roots configured", parsed)
    try:
        chain = _build_chain(leaf, intermediates, trust.roots, parsed.signing_time)
        time_problem = _validity_problem(chain, times)
    except VerificationError as first_error:
        # It fails at the signing time: is it trust or time? Retry at instants inside the
        # leaf's validity; if a chain exists at any of them, the problem is time.
        found = _chain_at_any_time(leaf, intermediates, trust.roots, parsed.signing_time)
        if found is None:
            return _fail(
                Reason.UNTRUSTED_CHAIN, f"no path to a trusted root: {first_error}", parsed
            )
        chain = found
        time_problem = _validity_problem(chain, times) or (
            Reason.UNTRUSTED_CHAIN,
            f"chain rejected at signing time: {first_error}",
        )
    problem = _key_usage_problem(leaf)
    if problem:
        return _fail(Reason.UNTRUSTED_CHAIN, problem, parsed)
    if time_problem:
        return _fail(time_problem[0], time_problem[1], parsed)

    revocation = _revocation_problem(chain, trust.crls, max(times), require_crl)
    if revocation:
        return _fail(revocation[0], revocation[1], parsed)

    agency = agency_code_of(leaf)
    if expected_signer is not None and agency != expected_signer:
        return _fail(
            Reason.SIGNER_MISMATCH,
            f"signed by {agency!r}, but the event was published by {expected_signer!r}",
            parsed,
        )
    return VerificationResult(
        True,
        None,
        "",
        agency,
        fingerprint(leaf),
        parsed.signing_time,
        tuple(c.subject.rfc4514_string() for c in chain),
    )


def check_document(
    claim: DocumentClaim,
    actual_sha256: str,
    actual_size: int,
    signature: bytes,
    trust: TrustAnchors,
    *,
    require_crl: bool = True,
) -> VerificationResult:
    """Pure core: the claim against the stored bytes' actual digest/size, then the signature."""
    try:
        claimed = normalize_digest(claim.sha256)
    except InvalidReference as exc:
        return _fail(Reason.HASH_MISMATCH, str(exc))
    if actual_sha256 != claimed:
        return _fail(
            Reason.HASH_MISMATCH,
            f"expected sha256:{claimed}, stored bytes hash to sha256:{actual_sha256}",
        )
    if claim.size is not None and actual_size != claim.size:
        return _fail(Reason.HASH_MISMATCH, f"expected {claim.size} bytes, stored {actual_size}")
    return verify_detached(
        bytes.fromhex(actual_sha256),
        signature,
        trust,
        expected_signer=claim.signer_agency,
        event_time=claim.event_time,
        require_crl=require_crl,
    )


# ----------------------------------------------------------------------------- adapter


def verify_document(
    claim: DocumentClaim,
    store: DocumentStore,
    signature: bytes,
    trust: TrustAnchors,
    *,
    require_crl: bool = True,
) -> VerificationResult:
    """Stream the stored document, then run :func:`check_document` (constant memory)."""
    try:
        digest = normalize_digest(claim.sha256)
    except InvalidReference as exc:
        return _fail(Reason.HASH_MISMATCH, str(exc))
    hasher = hashlib.sha256()
    size = 0
    try:
        for chunk in store.iter_chunks(digest):
            hasher.update(chunk)
            size += len(chunk)
    except DocumentNotFound:
        return _fail(Reason.DOCUMENT_MISSING, f"no document stored under sha256:{digest}")
    except DocumentCorrupted as exc:
        return _fail(
            Reason.HASH_MISMATCH,
            f"expected sha256:{exc.expected}, stored bytes hash to sha256:{exc.actual}",
        )
    return check_document(
        claim, hasher.hexdigest(), size, signature, trust, require_crl=require_crl
    )
