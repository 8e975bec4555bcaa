"""Agency certificates, trust anchors and a development PKI (hạ tầng khóa công khai thử nghiệm).

Every agency signs with its own X.509 certificate. **The agency code (mã định danh cơ quan,
national format such as ``000.00.12.H10``) is the certificate subject's commonName (CN)**; the
agency's name is in organizationName (O) and the province in stateOrProvinceName (ST). The bus's
own certificate (used for checkpoints) has CN ``lienthong-bus`` and OU ``bus``.

Production: load real certificates, keys and the CA chain with :func:`load_signer` and
:meth:`TrustAnchors.from_dir` / :meth:`TrustAnchors.from_files`. Development and tests:
:func:`init_dev_pki` makes a root CA, one intermediate per province, one certificate per agency,
CRLs and a bus certificate, plus helpers for expired, revoked and untrusted certificates.

Private keys stay in the process that loaded them: :class:`Signer` never prints its key, and no
function here logs or returns key bytes except writing the development key files (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lienthong.logs import get_logger

log = get_logger("lienthong.documents.pki")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Same national format as lienthong.domain.agencies (level4.level3.level2.level1).
AGENCY_CODE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$")
BUS_CN = "lienthong-bus"
# id-kp-documentSigning (RFC 9336): what an agency certificate is for.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

UTC = dt.UTC


class PKIError(Exception):
    """A certificate/key/CRL file is missing or unusable; message is one line."""


def agency_code_of(cert: x509.Certificate) -> str | None:
    """The agency code a certificate speaks for: its subject CN (see module docstring)."""
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True, slots=True)
class Signer:
    """A certificate with its in-process private key and the intermediates to ship with it.

    The key object never leaves this process; ``repr`` omits it so it cannot reach a log.
    """

    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        pub = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        cert_pub = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if pub != cert_pub:
            raise PKIError("private key does not match the certificate's public key")

    @property
    def agency(self) -> str | None:
        return agency_code_of(self.certificate)

    def __repr__(self) -> str:
        return f"Signer(agency={self.agency!r}, certificate_sha256={fingerprint(self.certificate)})"


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """What a verifier trusts: roots; intermediates and CRLs it may use to build/check chains."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    @classmethod
    def from_files(
        cls,
        roots: Iterable[str | os.PathLike[str]],
        intermediates: Iterable[str | os.PathLike[str]] = (),
        crls: Iterable[str | os.PathLike[str]] = (),
    ) -> TrustAnchors:
        return cls(
            roots=tuple(c for p in roots for c in load_certificates(p)),
            intermediates=tuple(c for p in intermediates for c in load_certificates(p)),
            crls=tuple(c for p in crls for c in load_crls(p)),
        )

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> TrustAnchors:
        """A trust directory: ``roots.pem``, optional ``intermediates.pem`` and ``crls.pem``
        (each may hold several PEM blocks), or any ``*.crl`` / ``*.crl.pem`` files."""
        base = Path(directory)
        roots = base / "roots.pem"
        if not roots.is_file():
            raise PKIError(f"trust directory {base} has no roots.pem")
        inter = [p for p in [base / "intermediates.pem"] if p.is_file()]
        crl_files = sorted(
            {p for pattern in ("crls.pem", "*.crl", "*.crl.pem") for p in base.glob(pattern)}
        )
        return cls.from_files([roots], inter, crl_files)

    def write_dir(self, directory: str | os.PathLike[str]) -> None:
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        (base / "roots.pem").write_bytes(_pem_certs(self.roots))
        (base / "intermediates.pem").write_bytes(_pem_certs(self.intermediates))
        (base / "crls.pem").write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.crls)
        )


def _pem_certs(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise PKIError(f"{path}: not an X.509 certificate file: {exc}") from None


def load_crls(path: str | os.PathLike[str]) -> list[x509.CertificateRevocationList]:
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            blocks = re.findall(
                rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", data, flags=re.S
            )
            return [x509.load_pem_x509_crl(b) for b in blocks]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise PKIError(f"{path}: not a CRL file: {exc}") from None


def load_private_key(path: str | os.PathLike[str], password: bytes | None = None) -> PrivateKey:
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        # The exception text never contains key bytes, but keep the message generic anyway.
        raise PKIError(f"{path}: cannot load private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PKIError(f"{path}: only RSA and ECDSA keys are supported")
    return key


def load_signer(
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
    chain: str | os.PathLike[str] | None = None,
    password: bytes | None = None,
) -> Signer:
    """Load an agency's signing credential in-process (production entry point)."""
    certs = load_certificates(cert)
    extra = tuple(load_certificates(chain)) if chain else tuple(certs[1:])
    signer = Signer(certs[0], load_private_key(key, password), extra)
    log.info("signer_loaded", agency=signer.agency, certificate_sha256=fingerprint(certs[0]))
    return signer


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise PKIError(f"{path}: {exc.strerror}") from None


# --------------------------------------------------------------------------- development PKI


def slugify(name: str) -> str:
    """ASCII file-name slug of a Vietnamese name: "Bến Tre" -> "ben-tre"."""
    text = name.replace("Đ", "D").replace("đ", "d")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "province"


DEFAULT_AGENCIES: tuple[tuple[str, str], ...] = (
    ("000.00.01.H10", "Trung tâm Phục vụ hành chính công tỉnh"),
    ("000.00.12.H10", "Sở Tài nguyên và Môi trường"),
    ("000.00.15.H10", "Sở Xây dựng"),
    ("000.00.20.H10", "Chi cục Thuế khu vực"),
    ("000.00.30.H10", "Bưu điện tỉnh"),
)


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise PKIError(f"unknown key type {key_type!r} (expected 'ec' or 'rsa')")


def _write_key(path: Path, key: PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _write_pem(
    path: Path, items: Sequence[x509.Certificate | x509.CertificateRevocationList]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items))


def _ca_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    path_length: int | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _ee_cert(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: the agency stands behind it
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _crl(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Iterable[tuple[int, dt.datetime]],
    now: dt.datetime,
    number: int,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=30))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False,
        )
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


class DevPKI:
    """A development PKI on disk. Layout (see docs/documents.md)::

        DIR/pki.json                       manifest (no key material)
        DIR/root/ca.pem, ca.key            root CA
        DIR/intermediate/<slug>.pem, .key  the province's issuing CA
        DIR/crl/root.crl.pem, <slug>.crl.pem, <slug>.crl (DER)
        DIR/agencies/<code>/cert.pem, key.pem, chain.pem
        DIR/bus/cert.pem, key.pem, chain.pem
        DIR/trust/roots.pem, intermediates.pem, crls.pem, openssl-ca.pem (roots + CRLs)

    Keys are written 0600 and never logged.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        manifest = self.dir / "pki.json"
        if not manifest.is_file():
            raise PKIError(f"{self.dir} is not a development PKI (no pki.json); run `pki init`")
        self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        self.slug: str = self.manifest["slug"]
        self.province: str = self.manifest["province"]
        self.key_type: str = self.manifest["key_type"]

    # -- paths
    @property
    def root_cert_path(self) -> Path:
        return self.dir / "root" / "ca.pem"

    @property
    def intermediate_cert_path(self) -> Path:
        return self.dir / "intermediate" / f"{self.slug}.pem"

    def agency_dir(self, code: str) -> Path:
        return self.dir / "agencies" / code

    # -- loaded objects
    def root(self) -> x509.Certificate:
        return load_certificates(self.root_cert_path)[0]

    def intermediate(self) -> x509.Certificate:
        return load_certificates(self.intermediate_cert_path)[0]

    def trust(self) -> TrustAnchors:
        return TrustAnchors.from_dir(self.dir / "trust")

    def signer(self, code: str) -> Signer:
        base = self.agency_dir(code)
        if not base.is_dir():
            raise PKIError(f"no agency {code} in {self.dir}")
        return load_signer(base / "cert.pem", base / "key.pem", base / "chain.pem")

    def bus_signer(self) -> Signer:
        base = self.dir / "bus"
        return load_signer(base / "cert.pem", base / "key.pem", base / "chain.pem")

    def agencies(self) -> list[dict[str, str]]:
        return list(self.manifest["agencies"])

    # -- issuing
    def issue_agency(
        self,
        code: str,
        name: str,
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key_type: str | None = None,
    ) -> Path:
        """Issue (or re-issue) an agency certificate; ``not_after`` in the past = expired."""
        if not AGENCY_CODE.match(code):
            raise PKIError(f"agency code {code!r} is not in the national format 000.00.00.H00")
        now = dt.datetime.now(UTC)
        start = not_before or now - dt.timedelta(hours=1)
        end = not_after or now + dt.timedelta(days=730)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.province),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COMMON_NAME, code),
            ]
        )
        self._issue_ee(self.agency_dir(code), subject, start, end, key_type or self.key_type)
        entries = [a for a in self.manifest["agencies"] if a["code"] != code]
        entries.append({"code": code, "name": name})
        self.manifest["agencies"] = sorted(entries, key=lambda a: a["code"])
        self._save_manifest()
        log.info("agency_certificate_issued", agency=code, not_after=end.isoformat())
        return self.agency_dir(code)

    def issue_bus(self) -> Path:
        now = dt.datetime.now(UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.province),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lienthong integration bus"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "bus"),
                x509.NameAttribute(NameOID.COMMON_NAME, BUS_CN),
            ]
        )
        target = self.dir / "bus"
        self._issue_ee(
            target,
            subject,
            now - dt.timedelta(hours=1),
            now + dt.timedelta(days=730),
            self.key_type,
        )
        return target

    def _issue_ee(
        self,
        target: Path,
        subject: x509.Name,
        start: dt.datetime,
        end: dt.datetime,
        key_type: str,
    ) -> None:
        ca_key = load_private_key(self.dir / "intermediate" / f"{self.slug}.key")
        ca_cert = self.intermediate()
        key = _new_key(key_type)
        cert = _ee_cert(subject, key.public_key(), ca_cert, ca_key, start, end)
        _write_key(target / "key.pem", key)
        _write_pem(target / "cert.pem", [cert])
        _write_pem(target / "chain.pem", [ca_cert])

    def revoke(self, code: str, when: dt.datetime | None = None) -> int:
        """Put an agency's current certificate on the province CRL; returns its serial."""
        cert = load_certificates(self.agency_dir(code) / "cert.pem")[0]
        revoked = self.manifest.setdefault("revoked", [])
        at = when or dt.datetime.now(UTC) - dt.timedelta(minutes=1)
        revoked.append({"serial": str(cert.serial_number), "agency": code, "at": at.isoformat()})
        self._save_manifest()
        self.write_crls()
        log.info("agency_certificate_revoked", agency=code, serial=str(cert.serial_number))
        return cert.serial_number

    def write_crls(self) -> None:
        now = dt.datetime.now(UTC)
        number = int(self.manifest.get("crl_number", 0)) + 1
        self.manifest["crl_number"] = number
        self._save_manifest()
        root_key = load_private_key(self.dir / "root" / "ca.key")
        inter_key = load_private_key(self.dir / "intermediate" / f"{self.slug}.key")
        root_crl = _crl(self.root(), root_key, [], now, number)
        revoked = [
            (int(r["serial"]), dt.datetime.fromisoformat(r["at"]))
            for r in self.manifest.get("revoked", [])
        ]
        inter_crl = _crl(self.intermediate(), inter_key, revoked, now, number)
        crl_dir = self.dir / "crl"
        _write_pem(crl_dir / "root.crl.pem", [root_crl])
        _write_pem(crl_dir / f"{self.slug}.crl.pem", [inter_crl])
        (crl_dir / f"{self.slug}.crl").write_bytes(
            inter_crl.public_bytes(serialization.Encoding.DER)
        )
        trust = self.dir / "trust"
        TrustAnchors((self.root(),), (self.intermediate(),), (root_crl, inter_crl)).write_dir(trust)
        _write_pem(trust / "openssl-ca.pem", [self.root(), root_crl, inter_crl])

    def _save_manifest(self) -> None:
        (self.dir / "pki.json").write_text(
            json.dumps(self.manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )


def init_dev_pki(
    out: str | os.PathLike[str],
    province: str,
    agencies: Iterable[tuple[str, str]] = DEFAULT_AGENCIES,
    *,
    key_type: str = "ec",
    root_name: str = "lienthong DEV Root CA",
) -> DevPKI:
    """Create a fresh development PKI in ``out`` (must be empty or absent).

    A second call with another ``out`` gives an independent root: that is the "untrusted
    root" of the tests.
    """
    base = Path(out)
    if base.exists() and any(base.iterdir()):
        raise PKIError(f"{base} is not empty; refusing to overwrite a PKI")
    base.mkdir(parents=True, exist_ok=True)
    slug = slugify(province)
    now = dt.datetime.now(UTC)
    root_key = _new_key(key_type)
    root_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "lienthong development PKI - NOT FOR PRODUCTION"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, root_name),
        ]
    )
    # CAs start a year back so tests can issue agency certificates that already expired.
    root = _ca_cert(
        root_subject,
        root_key,
        None,
        root_key,
        1,
        now - dt.timedelta(days=366),
        now + dt.timedelta(days=3650),
    )
    inter_key = _new_key(key_type)
    inter_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "lienthong development PKI - NOT FOR PRODUCTION"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, f"lienthong DEV CA {province}"),
        ]
    )
    inter = _ca_cert(
        inter_subject,
        inter_key,
        root,
        root_key,
        0,
        now - dt.timedelta(days=365),
        now + dt.timedelta(days=1825),
    )
    _write_key(base / "root" / "ca.key", root_key)
    _write_pem(base / "root" / "ca.pem", [root])
    _write_key(base / "intermediate" / f"{slug}.key", inter_key)
    _write_pem(base / "intermediate" / f"{slug}.pem", [inter])
    manifest = {
        "format": "lienthong-dev-pki/1",
        "province": province,
        "slug": slug,
        "key_type": key_type,
        "agencies": [],
        "revoked": [],
        "crl_number": 0,
    }
    (base / "pki.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    pki = DevPKI(base)
    pki.write_crls()
    for code, name in agencies:
        pki.issue_agency(code, name)
    pki.issue_bus()
    log.info(
        "dev_pki_created", directory=str(base), province=province, agencies=len(pki.agencies())
    )
    return pki


def read_agencies_file(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Agencies from JSON (``[{"code": ..., "name": ...}]``) or TOML (``[[agency]]`` tables)."""
    import tomllib

    text = Path(path).read_text(encoding="utf-8")
    try:
        if str(path).endswith(".toml"):
            rows = tomllib.loads(text).get("agency", [])
        else:
            rows = json.loads(text)
            if isinstance(rows, dict):
                rows = rows.get("agencies", [])
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PKIError(f"{path}: cannot parse agencies file: {exc}") from None
    result: list[tuple[str, str]] = []
    for row in rows:
        if not isinstance(row, dict) or "code" not in row:
            raise PKIError(f"{path}: each agency needs a 'code' (and a 'name')")
        code = str(row["code"])
        if not AGENCY_CODE.match(code):
            raise PKIError(f"{path}: agency code {code!r} is not in the format 000.00.00.H00")
        result.append((code, str(row.get("name", code))))
    return result
