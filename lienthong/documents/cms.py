"""Detached CMS SignedData in the CAdES-BES profile: build and parse.

Why asn1crypto: ``cryptography``'s ``PKCS7SignatureBuilder`` (50.0.2) produces detached DER
signatures but cannot add the ESS signing-certificate-v2 attribute that CAdES-BES requires, and
it needs the whole content in memory. So the *structure* is assembled with ``asn1crypto`` while
every cryptographic operation (SHA-256 over the signed attributes, RSA/ECDSA signing and
verification) is done by ``cryptography``; the content digest is computed by streaming
``hashlib`` — which is exactly how CMS works (RFC 5652 §5.4: the signature covers the DER of
the signed attributes, one of which is the content's message digest).

Profile (docs/documents.md, "Signature profile"):
  SignedData v1, digestAlgorithms {sha256}, encapContentInfo {id-data, no eContent}
  certificates: signer certificate + its intermediates; one SignerInfo v1 with
  issuerAndSerialNumber; signedAttrs = content-type (id-data), signing-time (UTCTime),
  message-digest, signing-certificate-v2 (ESSCertIDv2: SHA-256 cert hash + issuerSerial);
  signatureAlgorithm ecdsa-with-SHA256 or rsaEncryption (PKCS#1 v1.5, SHA-256).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from lienthong.documents.pki import Signer


class CMSFormatError(ValueError):
    """The bytes are not a detached CAdES-BES signature of the expected profile."""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _attr(kind: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": [value]})


@functools.lru_cache(maxsize=64)
def _certificate_set(ders: tuple[bytes, ...]) -> bytes:
    """DER of the ``certificates [0] IMPLICIT CertificateSet`` field, encoded once per signer.

    asn1crypto re-serialises every nested certificate when a structure is built; caching the
    encoded field keeps signing at hashing speed rather than ASN.1 speed.
    """
    return cms.CertificateSet([ax509.Certificate.load(d) for d in ders]).dump()


def build_signed_data(digest: bytes, signer: Signer, signing_time: dt.datetime) -> bytes:
    """DER ContentInfo(SignedData) over a content whose SHA-256 is ``digest``."""
    if len(digest) != 32:
        raise ValueError("digest must be the 32-byte SHA-256 of the content")
    cert_der = _der(signer.certificate)
    acert = ax509.Certificate.load(cert_der)
    ess = tsp.SigningCertificateV2(
        {
            # hashAlgorithm DEFAULT sha256 is omitted (DER forbids encoding defaults).
            "certs": [
                tsp.ESSCertIDv2(
                    {
                        "cert_hash": hashlib.sha256(cert_der).digest(),
                        "issuer_serial": {
                            "issuer": [
                                ax509.GeneralName(name="directory_name", value=acert.issuer)
                            ],
                            "serial_number": acert.serial_number,
                        },
                    }
                )
            ]
        }
    )
    when = signing_time.astimezone(dt.UTC).replace(microsecond=0)
    attrs = [
        _attr("content_type", "data"),
        _attr("signing_time", cms.Time({"utc_time": core.UTCTime(when)})),
        _attr("message_digest", digest),
        _attr("signing_certificate_v2", ess),
    ]
    # DER SET OF: elements sorted by their encodings (verifiers re-encode before checking).
    attrs.sort(key=lambda a: a.dump())
    signed_attrs = cms.CMSAttributes(attrs)
    to_be_signed = signed_attrs.dump()  # universal SET tag (0x31), as RFC 5652 §5.4 requires

    key = signer.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_be_signed, ec.ECDSA(hashes.SHA256()))
        sig_alg = {"algorithm": "sha256_ecdsa"}
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_be_signed, padding.PKCS1v15(), hashes.SHA256())
        sig_alg = {"algorithm": "rsassa_pkcs1v15"}
    else:  # pragma: no cover - Signer only admits RSA/EC
        raise TypeError("only RSA and ECDSA keys are supported")

    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": acert.issuer,
                        "serial_number": acert.serial_number,
                    }
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm(sig_alg),
            "signature": signature,
        }
    )
    certificates = cms.CertificateSet.load(
        _certificate_set((cert_der, *(_der(c) for c in signer.chain)))
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "data"},
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    """What a verifier needs from a detached signature, extracted without trusting it yet."""

    message_digest: bytes
    signing_time: dt.datetime
    signed_attrs_der: bytes  # re-tagged as SET: the exact bytes the signature covers
    signature: bytes
    signature_algorithm: str
    signer_certificate: x509.Certificate
    other_certificates: tuple[x509.Certificate, ...]
    ess_cert_hash: bytes


def parse_signed_data(data: bytes) -> ParsedSignature:
    """Parse and profile-check a detached CAdES-BES signature; raise CMSFormatError."""
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise CMSFormatError("not a CMS SignedData")
        sd = info["content"]
        if sd["encap_content_info"]["content_type"].native != "data":
            raise CMSFormatError("encapsulated content type is not id-data")
        if sd["encap_content_info"]["content"].native is not None:
            raise CMSFormatError("signature is not detached (content is embedded)")
        signer_infos = sd["signer_infos"]
        if len(signer_infos) != 1:
            raise CMSFormatError(f"expected exactly one SignerInfo, found {len(signer_infos)}")
        si = signer_infos[0]
        if si["digest_algorithm"]["algorithm"].native != "sha256":
            raise CMSFormatError("digest algorithm is not SHA-256")
        signed_attrs = si["signed_attrs"]
        if not signed_attrs or signed_attrs.native is None:
            raise CMSFormatError("no signed attributes")
        values: dict[str, list[object]] = {}
        for attr in signed_attrs:
            name = attr["type"].native
            if name in values:
                raise CMSFormatError(f"signed attribute {name} appears twice")
            values[name] = list(attr["values"])
        for required in (
            "content_type",
            "message_digest",
            "signing_time",
            "signing_certificate_v2",
        ):
            if len(values.get(required, [])) != 1:
                raise CMSFormatError(f"signed attribute {required} missing or multi-valued")
        if values["content_type"][0].native != "data":  # type: ignore[attr-defined]
            raise CMSFormatError("content-type attribute is not id-data")
        digest = values["message_digest"][0].native  # type: ignore[attr-defined]
        signing_time = values["signing_time"][0].native  # type: ignore[attr-defined]
        ess = values["signing_certificate_v2"][0]
        ess_first = ess["certs"][0]  # type: ignore[index]
        if ess_first["hash_algorithm"]["algorithm"].native != "sha256":
            raise CMSFormatError("signing-certificate-v2 hash is not SHA-256")
        ess_hash = ess_first["cert_hash"].native

        sid = si["sid"]
        if sid.name != "issuer_and_serial_number":
            raise CMSFormatError("signer is not identified by issuer and serial number")
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        certs: list[x509.Certificate] = []
        signer_cert: x509.Certificate | None = None
        for choice in sd["certificates"] or []:
            if choice.name != "certificate":
                continue
            acert = choice.chosen
            cert = x509.load_der_x509_certificate(acert.dump())
            if signer_cert is None and acert.serial_number == serial and acert.issuer == issuer:
                signer_cert = cert
            else:
                certs.append(cert)
        if signer_cert is None:
            raise CMSFormatError("signer certificate is not included in the signature")
        raw = signed_attrs.dump()
        # The signature covers the attributes with the universal SET tag, not [0] IMPLICIT.
        tbs = b"\x31" + raw[1:]
        return ParsedSignature(
            message_digest=bytes(digest),
            signing_time=signing_time.astimezone(dt.UTC),
            signed_attrs_der=tbs,
            signature=bytes(si["signature"].native),
            signature_algorithm=si["signature_algorithm"].signature_algo,
            signer_certificate=signer_cert,
            other_certificates=tuple(certs),
            ess_cert_hash=bytes(ess_hash),
        )
    except CMSFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CMSFormatError(f"malformed CMS signature: {type(exc).__name__}: {exc}") from None
